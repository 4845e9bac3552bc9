/**
 * BuildDefinition: *what* to build, independent of who asks. Its dag-cbor
 * hash is the buildId, so the same build asked for by anyone has the same id
 * and attestations for it are reusable across jobs.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { SchemaError } from './errors.ts'
import { CODEC_DAG_CBOR, UNIXFS_CODECS, cidOf, parseCid } from './cid.ts'
import { expectArray, expectObject, expectString, isRecord, join } from './schema.ts'

export type SandboxTier = 'namespaces' | 'namespaces+cgroups' | 'vm'
/** Ordered weakest → strongest. */
export const SANDBOX_TIERS: readonly SandboxTier[] = ['namespaces', 'namespaces+cgroups', 'vm']

export function isSandboxTier (x: unknown): x is SandboxTier {
  return typeof x === 'string' && (SANDBOX_TIERS as readonly string[]).includes(x)
}

export function tierAtLeast (tier: SandboxTier, min: SandboxTier): boolean {
  const t = SANDBOX_TIERS.indexOf(tier)
  const m = SANDBOX_TIERS.indexOf(min)
  return t >= 0 && m >= 0 && t >= m
}

export type Environment =
  | { kind: 'host', platform: string }
  | { kind: 'rootfs', rootfs: string, platform: string }

export interface BuildDefinition {
  version: 1
  source: string
  environment: Environment
  command: string[]
  env: Record<string, string>
  output: string
}

export const BUILD_DEFINITION_VERSION = 1
const MAX_ARGS = 256
const MAX_ARG_LENGTH = 4096
const MAX_ENV = 128
const MAX_ENV_NAME = 128
const MAX_ENV_VALUE = 4096
const MAX_OUTPUT_LENGTH = 1024
/** e.g. `linux/amd64`, `linux/arm64/v8`. */
/** how a BuildDefinition names a platform (e.g. linux-x64, linux/amd64) */
export const PLATFORM = /^[a-z0-9][a-z0-9._+-]*(\/[a-z0-9][a-z0-9._+-]*){0,2}$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** Decimal seconds since the epoch, no sign, no leading zeros (reproducible-builds.org spec). */
const SOURCE_DATE_EPOCH = /^(0|[1-9][0-9]{0,11})$/

export function validateEnvironment (x: unknown, path: string): Environment {
  if (!isRecord(x)) throw new SchemaError(path, 'expected an object')
  if (x.kind === 'host') {
    const o = expectObject(x, path, ['kind', 'platform'])
    return { kind: 'host', platform: expectString(o.platform, join(path, 'platform'), { min: 1, max: 64, pattern: PLATFORM }) }
  }
  if (x.kind === 'rootfs') {
    const o = expectObject(x, path, ['kind', 'rootfs', 'platform'])
    const rootfs = parseCid(o.rootfs, join(path, 'rootfs'), UNIXFS_CODECS).toString()
    return { kind: 'rootfs', rootfs, platform: expectString(o.platform, join(path, 'platform'), { min: 1, max: 64, pattern: PLATFORM }) }
  }
  throw new SchemaError(join(path, 'kind'), 'expected "host" or "rootfs"')
}

/** Returns a fresh, plain, validated copy (unknown fields refused: they would silently change the buildId). */
export function validateBuildDefinition (x: unknown, path = ''): BuildDefinition {
  const o = expectObject(x, path, ['version', 'source', 'environment', 'command', 'env', 'output'])
  if (o.version !== BUILD_DEFINITION_VERSION) throw new SchemaError(join(path, 'version'), 'expected 1')
  const source = parseCid(o.source, join(path, 'source'), UNIXFS_CODECS).toString()
  const environment = validateEnvironment(o.environment, join(path, 'environment'))
  const command = expectArray(o.command, join(path, 'command'), 1, MAX_ARGS)
    .map((a, i) => expectString(a, join(join(path, 'command'), i), { max: MAX_ARG_LENGTH }))
  if (command[0] === '') throw new SchemaError(join(path, 'command[0]'), 'the program name must not be empty')
  if (!isRecord(o.env)) throw new SchemaError(join(path, 'env'), 'expected an object')
  const names = Object.keys(o.env)
  if (names.length > MAX_ENV) throw new SchemaError(join(path, 'env'), `more than ${MAX_ENV} variables`)
  const entries: Array<[string, string]> = []
  for (const name of names) {
    const p = join(join(path, 'env'), name)
    expectString(name, p, { min: 1, max: MAX_ENV_NAME, pattern: ENV_NAME })
    entries.push([name, expectString(o.env[name], p, { max: MAX_ENV_VALUE })])
  }
  entries.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
  // Object.fromEntries defines own properties, so a variable named __proto__ stays data.
  const env = Object.fromEntries(entries) as Record<string, string>
  const sde = Object.hasOwn(env, 'SOURCE_DATE_EPOCH') ? env.SOURCE_DATE_EPOCH : undefined
  if (sde === undefined) throw new SchemaError(join(path, 'env.SOURCE_DATE_EPOCH'), 'missing field (reproducible builds need a fixed timestamp)')
  if (!SOURCE_DATE_EPOCH.test(sde)) throw new SchemaError(join(path, 'env.SOURCE_DATE_EPOCH'), 'expected decimal seconds since the epoch')
  const output = validateOutputPath(o.output, join(path, 'output'))
  return { version: 1, source, environment, command, env, output }
}

/** A relative path inside the build dir: no absolute path, no '..', '.', empty segments or backslashes. */
function validateOutputPath (x: unknown, path: string): string {
  const s = expectString(x, path, { min: 1, max: MAX_OUTPUT_LENGTH })
  if (s.startsWith('/')) throw new SchemaError(path, 'must be relative')
  if (s.includes('\\')) throw new SchemaError(path, 'must not contain a backslash')
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new SchemaError(path, 'segments must not be empty, "." or ".."')
  }
  return s
}

/** CIDv1 (dag-cbor, sha2-256) of the dag-cbor encoding of the validated definition, base32. */
export function buildIdOf (def: BuildDefinition): string {
  const clean = validateBuildDefinition(def)
  return cidOf(CODEC_DAG_CBOR, dagCbor.encode(clean)).toString()
}
