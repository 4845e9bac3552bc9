/**
 * The manifest inside a build environment made by `concur env create`:
 * what it was made from (suite, variant, the packages asked for) and exactly
 * what is in it (every installed package with its version), at
 * ENV_MANIFEST_PATH in the tree, so the environment's CID names it too. A
 * requester reads it with `concur env show CID` before naming the
 * environment in a job: it is the toolchain its artifact is built with.
 *
 * Read from a DAG a stranger made: bounded (MAX_MANIFEST_BYTES) and checked
 * field by field, so a hostile manifest can neither exhaust memory nor put
 * anything but strings it declared on a person's terminal (renderers still
 * escape them).
 */
import { BadManifestError } from './errors.ts'

/** where the manifest is in an environment's tree (not under a top-level name the sandbox provides itself) */
export const ENV_MANIFEST_PATH = 'etc/concur-environment.json'
export const ENV_MANIFEST_TYPE = 'https://concur.dev/Environment/v1'
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** more than any Debian build root holds (a buildd root: ~100; a desktop: ~2,000) */
export const MAX_PACKAGES = 20_000

export interface InstalledPackage { package: string, version: string, architecture: string }

export interface EnvManifest {
  _type: typeof ENV_MANIFEST_TYPE
  suite: string
  variant: string
  /** the packages asked for beyond the variant's own, sorted */
  include: string[]
  architecture: string
  /** the SOURCE_DATE_EPOCH it was made with (mmdebstrap is reproducible with it set) */
  sourceDateEpoch: number
  /** every installed package, sorted by name */
  installed: InstalledPackage[]
}

/** a Debian package name (Policy §5.6.1), as the manifest and `env create --packages` take them */
export const PACKAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9+.-]{0,127}$/
const VERSION = /^[A-Za-z0-9.+~:-]{1,128}$/
const WORD = /^[A-Za-z0-9][A-Za-z0-9._+:/@-]{0,255}$/

function str (o: Record<string, unknown>, key: string, pattern: RegExp): string {
  const v = o[key]
  if (typeof v !== 'string' || !pattern.test(v)) throw new BadManifestError(`"${key}" is missing or not of the form ${String(pattern)}`)
  return v
}

/** parse and check a manifest's bytes (from a DAG anyone could have made) */
export function parseManifest (bytes: Uint8Array): EnvManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new BadManifestError(`larger than ${MAX_MANIFEST_BYTES} bytes`)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new BadManifestError(`not UTF-8 JSON: ${(err as Error).message}`)
  }
  if (typeof json !== 'object' || json == null || Array.isArray(json)) throw new BadManifestError('not a JSON object')
  const o = json as Record<string, unknown>
  // not the mirror nor the tool's version: the same package versions must give the same tree (and CID)
  if (o._type !== ENV_MANIFEST_TYPE) throw new BadManifestError(`"_type" is not ${ENV_MANIFEST_TYPE}`)
  const include = o.include
  if (!Array.isArray(include) || include.length > MAX_PACKAGES || !include.every(p => typeof p === 'string' && PACKAGE_NAME_PATTERN.test(p))) throw new BadManifestError('"include" is not a list of package names')
  const installed = o.installed
  if (!Array.isArray(installed) || installed.length > MAX_PACKAGES) throw new BadManifestError('"installed" is not a list of packages')
  const sde = o.sourceDateEpoch
  if (typeof sde !== 'number' || !Number.isSafeInteger(sde) || sde < 0) throw new BadManifestError('"sourceDateEpoch" is not a whole number of seconds')
  return {
    _type: ENV_MANIFEST_TYPE,
    suite: str(o, 'suite', WORD),
    variant: str(o, 'variant', WORD),
    include: include as string[],
    architecture: str(o, 'architecture', PACKAGE_NAME_PATTERN),
    sourceDateEpoch: sde,
    installed: installed.map((p: unknown, i) => {
      if (typeof p !== 'object' || p == null) throw new BadManifestError(`installed[${i}] is not an object`)
      const q = p as Record<string, unknown>
      return { package: str(q, 'package', PACKAGE_NAME_PATTERN), version: str(q, 'version', VERSION), architecture: str(q, 'architecture', PACKAGE_NAME_PATTERN) }
    })
  }
}

/** the manifest's bytes as written into the tree: canonical (fixed key order, sorted lists), so the same inputs give the same CID */
export function manifestBytes (m: EnvManifest): Uint8Array {
  const canonical: EnvManifest = {
    _type: ENV_MANIFEST_TYPE,
    suite: m.suite,
    variant: m.variant,
    include: [...m.include].sort(),
    architecture: m.architecture,
    sourceDateEpoch: m.sourceDateEpoch,
    installed: [...m.installed].sort((a, b) => a.package < b.package ? -1 : a.package > b.package ? 1 : 0)
  }
  return new TextEncoder().encode(JSON.stringify(canonical, null, 1) + '\n')
}

/** the packages a person asks about first: the compilers, the C library, the build tools */
export const TOOLCHAIN_PACKAGES = ['gcc', 'g++', 'cpp', 'libc6', 'libc6-dev', 'binutils', 'make', 'dpkg-dev', 'perl', 'python3', 'nodejs', 'rustc', 'golang-go']

/** the toolchain of a manifest: those of TOOLCHAIN_PACKAGES it has, with their versions */
export function toolchainOf (m: Pick<EnvManifest, 'installed'>): InstalledPackage[] {
  const by = new Map(m.installed.map(p => [p.package, p]))
  return TOOLCHAIN_PACKAGES.flatMap(name => by.get(name) ?? [])
}
