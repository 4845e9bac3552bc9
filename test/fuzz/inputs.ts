/**
 * Inputs for fuzzing the decoders: valid seeds made with the real create*
 * functions, and fast-check arbitraries that produce random bytes, random
 * JSON, envelope-shaped values, and MUTATIONS of the valid seeds, at the byte
 * level and inside the signed payload (re-signed with the right key, so a
 * mutation reaches the checks behind the signature too).
 */
import fc from 'fast-check'
import type { Arbitrary } from 'fast-check'
import { sha256 } from '@noble/hashes/sha2.js'
import {
  ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE, ProtocolError, base64Encode, createAttestation, createClaim,
  createJobAnnouncement, envelopeBytes, signEnvelope, signingKeyFromSeed, utf8Encode
} from '../../protocol/index.ts'
import type { ProtocolErrorCode, SignedAttestation, SignedClaim, SignedJob, SigningKey } from '../../protocol/index.ts'
import { exampleDefinition } from '../helpers/fixtures.ts'

/** whether long mode (`npm run test:adversary`, CONCUR_LONG=1) is on */
export const LONG = process.env.CONCUR_LONG === '1'
/** fast-check runs per property: short mode in `npm test`, long mode in `npm run test:adversary` */
export const RUNS = LONG ? 12_000 : 400

/** Counts unhandled rejections from now on; `stop()` detaches and returns how many there were. */
export function watchUnhandled (): { stop: () => number } {
  let count = 0
  const on = (): void => { count++ }
  process.on('unhandledRejection', on)
  return { stop: () => { process.off('unhandledRejection', on); return count } }
}

export const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const iso = (ms: number): string => new Date(ms).toISOString()

export const key = (label: string): SigningKey => signingKeyFromSeed(sha256(utf8Encode(`concur fuzz key: ${label}`)))
export const requesterKey = key('requester')
export const workerKey = key('worker')
const PEER = '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3'

export const seedJob: SignedJob = createJobAnnouncement({
  definition: exampleDefinition(),
  requester: requesterKey.did,
  requesterPeerId: PEER,
  replicas: 2,
  resources: { memoryBytes: 1 << 28, cpus: 1, diskBytes: 1 << 26, wallSeconds: 60, processes: 64 },
  createdAt: iso(NOW - 60_000),
  expiresAt: iso(NOW + 3600_000)
}, requesterKey)

export const ARTIFACT = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'

export function attestationOf (job: SignedJob, k: SigningKey, artifact = ARTIFACT, failure = false): SignedAttestation {
  const def = job.job.definition
  return createAttestation({
    buildId: job.job.buildId,
    jobId: job.jobId,
    source: def.source,
    environment: def.environment,
    definition: def,
    worker: k.did,
    workerPeerId: PEER,
    sandboxTier: 'namespaces+cgroups',
    parallelism: 2,
    startedAt: iso(NOW - 30_000),
    finishedAt: iso(NOW - 10_000),
    result: failure ? { status: 'failure', exitCode: 2, reason: 'make: *** [all] Error 2' } : { status: 'success', artifact, exitCode: 0 },
    log: ARTIFACT
  }, k)
}

export const seedAttestation = attestationOf(seedJob, workerKey)
export const seedFailure = attestationOf(seedJob, workerKey, ARTIFACT, true)
export const seedClaim: SignedClaim = createClaim({
  jobId: seedJob.jobId,
  buildId: seedJob.job.buildId,
  worker: workerKey.did,
  workerPeerId: PEER,
  issuedAt: iso(NOW - 5_000),
  leaseUntil: iso(NOW + 25_000),
  seq: 7,
  purpose: 'replica'
}, workerKey)

/** the valid seeds with the key that signed each (to re-sign a payload mutation) */
export const SEEDS: Array<{ name: string, bytes: Uint8Array, payloadType: string, key: SigningKey }> = [
  { name: 'job', bytes: seedJob.bytes, payloadType: JOB_PAYLOAD_TYPE, key: requesterKey },
  { name: 'attestation', bytes: seedAttestation.bytes, payloadType: ATTESTATION_PAYLOAD_TYPE, key: workerKey },
  { name: 'failure', bytes: seedFailure.bytes, payloadType: ATTESTATION_PAYLOAD_TYPE, key: workerKey },
  { name: 'claim', bytes: seedClaim.bytes, payloadType: CLAIM_PAYLOAD_TYPE, key: workerKey }
]

export const PROTOCOL_CODES: ReadonlySet<ProtocolErrorCode> = new Set<ProtocolErrorCode>([
  'ERR_TOO_LARGE', 'ERR_MALFORMED', 'ERR_SCHEMA', 'ERR_UNSUPPORTED_VERSION', 'ERR_PAYLOAD_TYPE', 'ERR_BAD_SIGNATURE',
  'ERR_BAD_KEY', 'ERR_SMALL_ORDER_KEY', 'ERR_EXPIRED', 'ERR_FUTURE', 'ERR_BUILD_ID_MISMATCH', 'ERR_POLICY'
])

/** run `fn`; a return is fine, a throw must be a ProtocolError with a known code */
export function typedOrValid<T> (fn: () => T): { ok: true, value: T } | { ok: false, code: ProtocolErrorCode } {
  try {
    return { ok: true, value: fn() }
  } catch (err) {
    if (!(err instanceof ProtocolError) || !PROTOCOL_CODES.has(err.code)) {
      throw new Error(`untyped failure: ${String(err)} (${(err as Error)?.constructor?.name ?? typeof err})`, { cause: err })
    }
    return { ok: false, code: err.code }
  }
}

// ---- byte-level mutation of any seed ------------------------------------------------

const TOKENS = ['"', '{', '}', '[', ']', ',', ':', '\\', '\\u0000', 'null', '1e999', '-0', '"_type"', '\u202e', '\ud800', '==', 'A']

export function mutateBytes (base: Uint8Array): Arbitrary<Uint8Array> {
  const n = Math.max(1, base.length)
  const flip = fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
    const c = Uint8Array.from(base)
    c[i] = (c[i] ?? 0) ^ x
    return c
  })
  const truncate = fc.nat(n).map(i => base.slice(0, i))
  const del = fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: 64 })).map(([i, k]) => Uint8Array.from([...base.slice(0, i), ...base.slice(i + k)]))
  const insert = fc.tuple(fc.nat(n), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([i, b]) => Uint8Array.from([...base.slice(0, i), ...b, ...base.slice(i)]))
  const token = fc.tuple(fc.nat(n), fc.constantFrom(...TOKENS)).map(([i, t]) => Uint8Array.from([...base.slice(0, i), ...utf8Encode(t), ...base.slice(i)]))
  const dup = fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: 200 })).map(([i, k]) => Uint8Array.from([...base.slice(0, i + k), ...base.slice(i)]))
  const several = fc.array(fc.tuple(fc.nat(n - 1), fc.integer({ min: 1, max: 255 })), { minLength: 2, maxLength: 8 }).map(fl => {
    const c = Uint8Array.from(base)
    for (const [i, x] of fl) c[i] = (c[i] ?? 0) ^ x
    return c
  })
  return fc.oneof(flip, truncate, del, insert, token, dup, several)
}

// ---- payload-level mutation (inside the signature) -----------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

function paths (x: Json, at: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [at]
  if (Array.isArray(x)) x.forEach((v, i) => out.push(...paths(v, [...at, i])))
  else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) out.push(...paths(v, [...at, k]))
  return out
}

const nasty: Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>('', ' ', 'x'.repeat(5000), '../../etc/passwd', '\u0000', 'did:key:z6Mk', '2026-02-30T00:00:00Z', '9999-12-31T23:59:59Z',
    '1970-01-01T00:00:00Z', 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG',
    -1, 0, 1, 0.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, true, false, null, [], {}, '__proto__', 'constructor'),
  fc.jsonValue({ maxDepth: 3 }) as Arbitrary<Json>
)

export function mutatePayload (seed: { bytes: Uint8Array, payloadType: string, key: SigningKey }): Arbitrary<Uint8Array> {
  const env = JSON.parse(Buffer.from(seed.bytes).toString('utf8')) as { payload: string }
  const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Json
  const all = paths(payload).filter(p => p.length > 0)
  return fc.tuple(fc.constantFrom(...all), fc.constantFrom('replace', 'delete', 'add', 'wrap'), nasty, fc.boolean(), fc.string({ maxLength: 12 }))
    .map(([path, op, value, resign, name]) => {
      const copy = JSON.parse(JSON.stringify(payload)) as Json
      let parent = copy as Record<string | number, Json>
      for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, Json>
      const last = path[path.length - 1] as string | number
      if (op === 'replace') parent[last] = value
      else if (op === 'delete') { if (Array.isArray(parent)) parent.splice(Number(last), 1); else delete parent[last] } else if (op === 'wrap') parent[last] = [parent[last] ?? null]
      else if (!Array.isArray(parent)) parent[name === '' ? 'extra' : name] = value
      const bytes = utf8Encode(JSON.stringify(copy))
      if (resign) return envelopeBytes(signEnvelope(seed.payloadType, bytes, seed.key))
      return utf8Encode(JSON.stringify({ ...env, payload: base64Encode(bytes) }))
    })
}

// ---- shapes ----------------------------------------------------------------------------

export const randomBytes = fc.uint8Array({ maxLength: 2048 })
export const randomJson = fc.jsonValue({ maxDepth: 6 }).map(v => utf8Encode(JSON.stringify(v) ?? 'null'))
export const deepJson = fc.integer({ min: 100, max: 30_000 }).map(d => utf8Encode('['.repeat(d) + ']'.repeat(d)))
export const envelopeShaped = fc.record({
  payload: fc.oneof(fc.base64String({ maxLength: 400 }), fc.string({ maxLength: 100 }), fc.jsonValue({ maxDepth: 3 }).map(v => base64Encode(utf8Encode(JSON.stringify(v) ?? 'null'))), fc.integer()),
  payloadType: fc.oneof(fc.constantFrom(JOB_PAYLOAD_TYPE, ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, ''), fc.string({ maxLength: 300 })),
  signatures: fc.oneof(
    fc.array(fc.record({ keyid: fc.oneof(fc.string({ maxLength: 64 }), fc.constant(undefined)), sig: fc.oneof(fc.base64String({ minLength: 88, maxLength: 88 }), fc.string({ maxLength: 90 })) }), { maxLength: 10 }),
    fc.jsonValue({ maxDepth: 2 })
  )
}, { requiredKeys: [] }).map(o => utf8Encode(JSON.stringify(o)))

/** every kind of input, as bytes */
export const anyInput: Arbitrary<Uint8Array> = fc.oneof(
  { weight: 1, arbitrary: randomBytes },
  { weight: 1, arbitrary: randomJson },
  { weight: 1, arbitrary: envelopeShaped },
  ...SEEDS.map(s => ({ weight: 2, arbitrary: mutateBytes(s.bytes) })),
  ...SEEDS.map(s => ({ weight: 3, arbitrary: mutatePayload(s) })),
  { weight: 1, arbitrary: fc.constantFrom(...SEEDS.map(s => s.bytes)) }
)
