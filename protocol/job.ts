/**
 * JobAnnouncement: a requester asks the network to run a BuildDefinition.
 * jobId = CIDv1(raw, sha2-256) of the exact signed payload bytes, so a job is
 * named by what its requester signed.
 */
import * as ed from '@noble/ed25519'
import { base58btc } from 'multiformats/bases/base58'
import { BuildIdMismatchError, ExpiredError, FutureError, SchemaError, UnsupportedVersionError } from './errors.ts'
import { buildIdOf, validateBuildDefinition } from './build.ts'
import type { BuildDefinition } from './build.ts'
import { CODEC_RAW, cidOf } from './cid.ts'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, openEnvelope, readEnvelope } from './decode.ts'
import { hexEncode, utf8Encode } from './encoding.ts'
import { didFromPublicKey, publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { expectArray, expectInteger, expectNumber, expectObject, expectString, isRecord, join } from './schema.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'

export const JOB_PAYLOAD_TYPE = 'application/vnd.concur.job+json; version=1'
export const JOB_TYPE = 'https://concur.dev/JobAnnouncement/v1'
const JOB_TYPE_FAMILY = /^https:\/\/concur\.dev\/JobAnnouncement\/v[0-9]+$/
export const MAX_REPLICAS = 64
/**
 * Most keys a job may name in `builders` (PROTOCOL.md §5.1). 128 ed25519
 * did:keys are ~7.5 KiB of JSON, so the list never crowds a definition out of
 * a 64 KiB message, and a worker checks membership in a set this small at
 * every slot count for free. Twice MAX_REPLICAS: room for spare builders when
 * some are offline. A requester trusting more keys announces an open job.
 */
export const MAX_BUILDERS = 128
/** libp2p peer ids as text: base58btc multihash (12D3Koo…, Qm…) or a CIDv1 (b…/z…). */
export const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{1,128}$|^b[a-z2-7]{1,127}$/
const NONCE = /^(?:[0-9a-f]{2}){16,64}$/
const DID_KEY = /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/

export interface ResourceAsk { memoryBytes: number; cpus: number; diskBytes: number; wallSeconds: number; processes: number }

export interface JobAnnouncement {
  _type: 'https://concur.dev/JobAnnouncement/v1'
  buildId: string
  definition: BuildDefinition
  requester: string
  requesterPeerId?: string
  replicas: number
  /**
   * The keys whose claims take this job's replica slots (PROTOCOL.md §7 rule
   * 3): canonical ed25519 did:keys, strictly ascending, 1..MAX_BUILDERS.
   * Absent: any key's claim does (an open job).
   */
  builders?: string[]
  resources: ResourceAsk
  createdAt: string
  expiresAt: string
  nonce: string
}

export interface SignedJob {
  envelope: Envelope
  job: JobAnnouncement
  /** CIDv1 raw sha2-256 of the DSSE payload bytes. */
  jobId: string
  /** Raw 32-byte public key of the requester (verified). */
  signer: Uint8Array
  /** Canonical wire bytes of the envelope (see envelopeBytes). */
  bytes: Uint8Array
}

export interface DecodeJobOptions { now: number; maxFutureSkewMs?: number; allowExpired?: boolean }

export function jobIdOf (payload: Uint8Array): string {
  return cidOf(CODEC_RAW, payload).toString()
}

export function validateResourceAsk (x: unknown, path: string): ResourceAsk {
  const o = expectObject(x, path, ['memoryBytes', 'cpus', 'diskBytes', 'wallSeconds', 'processes'])
  return {
    memoryBytes: expectInteger(o.memoryBytes, join(path, 'memoryBytes'), 0, Number.MAX_SAFE_INTEGER),
    cpus: expectNumber(o.cpus, join(path, 'cpus'), 0, 1024),
    diskBytes: expectInteger(o.diskBytes, join(path, 'diskBytes'), 0, Number.MAX_SAFE_INTEGER),
    wallSeconds: expectInteger(o.wallSeconds, join(path, 'wallSeconds'), 1, 7 * 24 * 3600),
    processes: expectInteger(o.processes, join(path, 'processes'), 1, 1 << 20)
  }
}

/**
 * `builders`: 1..MAX_BUILDERS canonical ed25519 did:key texts in strictly
 * ascending order, so one set has one spelling (and one jobId) and no key is
 * listed twice. Each text must decode to an ed25519-pub multicodec key and
 * re-encode to itself (one text per key, so membership by text is membership
 * by key), but is not checked as a curve point: that costs a scalar
 * multiplication per entry, before the job's signature is checked, and a key
 * that is no usable point signs no claim anyway (decodeClaim refuses it), so
 * naming one only wastes the requester's own slot.
 */
function validateBuilders (x: unknown): string[] {
  const list = expectArray(x, 'builders', 1, MAX_BUILDERS)
  const out: string[] = []
  for (let i = 0; i < list.length; i++) {
    const path = join('builders', i)
    const did = expectString(list[i], path, { min: 1, max: 128, pattern: DID_KEY })
    if (!isCanonicalEd25519Did(did)) throw new SchemaError(path, 'not a canonical ed25519 did:key')
    const prev = out[i - 1]
    if (prev !== undefined && !(prev < did)) throw new SchemaError(path, 'builders must be sorted ascending, without repeats')
    out.push(did)
  }
  return out
}

/** did:key:z + base58btc(0xed 0x01 ‖ 32 bytes), in the one spelling didFromPublicKey gives (no point check: see validateBuilders) */
function isCanonicalEd25519Did (did: string): boolean {
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(did.slice('did:key:'.length))
  } catch {
    return false
  }
  return bytes.length === 34 && bytes[0] === 0xed && bytes[1] === 0x01 && didFromPublicKey(bytes.slice(2)) === did
}

/**
 * Validates a job payload (schema only: no time, no signature, no buildId check)
 * and returns a fresh copy in canonical key order.
 */
export function validateJobAnnouncement (x: unknown): JobAnnouncement {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  if (x._type !== JOB_TYPE) {
    if (typeof x._type === 'string' && JOB_TYPE_FAMILY.test(x._type)) throw new UnsupportedVersionError(`unsupported job type ${x._type}`)
    throw new SchemaError('_type', `expected ${JOB_TYPE}`)
  }
  const o = expectObject(x, '', ['_type', 'buildId', 'definition', 'requester', 'replicas', 'resources', 'createdAt', 'expiresAt', 'nonce'], ['requesterPeerId', 'builders'])
  const buildId = expectString(o.buildId, 'buildId', { min: 1, max: 128 })
  const definition = validateBuildDefinition(o.definition, 'definition')
  const requester = expectString(o.requester, 'requester', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ })
  const requesterPeerId = o.requesterPeerId === undefined ? undefined : expectString(o.requesterPeerId, 'requesterPeerId', { max: 128, pattern: PEER_ID_PATTERN })
  const replicas = expectInteger(o.replicas, 'replicas', 1, MAX_REPLICAS)
  const builders = o.builders === undefined ? undefined : validateBuilders(o.builders)
  const resources = validateResourceAsk(o.resources, 'resources')
  const createdAt = o.createdAt as string
  const expiresAt = o.expiresAt as string
  const created = parseTime(createdAt, 'createdAt')
  const expires = parseTime(expiresAt, 'expiresAt')
  if (!(created < expires)) throw new SchemaError('expiresAt', 'must be after createdAt')
  const nonce = expectString(o.nonce, 'nonce', { max: 128, pattern: NONCE })
  // Key order is fixed here because this object is what gets serialised and signed.
  return {
    _type: JOB_TYPE,
    buildId,
    definition,
    requester,
    ...(requesterPeerId !== undefined ? { requesterPeerId } : {}),
    replicas,
    ...(builders !== undefined ? { builders } : {}),
    resources,
    createdAt,
    expiresAt,
    nonce
  }
}

export type JobInput = Omit<JobAnnouncement, '_type' | 'buildId' | 'nonce'> & { nonce?: string }

/**
 * Builds, validates and signs a job. A missing nonce is drawn at random (16
 * bytes). `builders` are put in their canonical order (sorted, repeats
 * dropped); an empty list is refused like any list the decoder would refuse.
 */
export function createJobAnnouncement (input: JobInput, key: SigningKey): SignedJob {
  const definition = validateBuildDefinition(input.definition, 'definition')
  if (input.requester !== key.did) throw new SchemaError('requester', 'must be the did:key of the signing key')
  const draft: Record<string, unknown> = {
    _type: JOB_TYPE,
    buildId: buildIdOf(definition),
    definition,
    requester: input.requester,
    requesterPeerId: input.requesterPeerId,
    replicas: input.replicas,
    builders: Array.isArray(input.builders) ? [...new Set(input.builders)].sort() : input.builders,
    resources: input.resources,
    createdAt: input.createdAt,
    expiresAt: input.expiresAt,
    nonce: input.nonce ?? hexEncode(ed.etc.randomBytes(16))
  }
  if (draft.requesterPeerId === undefined) delete draft.requesterPeerId
  if (draft.builders === undefined) delete draft.builders
  // Never emit what we would refuse to decode.
  const job = validateJobAnnouncement(draft)
  const payload = utf8Encode(JSON.stringify(job))
  const envelope = signEnvelope(JOB_PAYLOAD_TYPE, payload, key)
  return { envelope, job, jobId: jobIdOf(payload), signer: key.publicKey, bytes: envelopeBytes(envelope) }
}

/**
 * Order (cheap before expensive; see PROTOCOL.md §6): size → envelope → one
 * signature → payloadType → payload JSON → _type version → schema → buildId →
 * time window → requester key → signature.
 */
export function decodeJobAnnouncement (input: Uint8Array | Envelope, opts: DecodeJobOptions): SignedJob {
  return guard(() => {
    const envelope = readEnvelope(input)
    const { payload, json } = openEnvelope(envelope, JOB_PAYLOAD_TYPE)
    const job = validateJobAnnouncement(json)
    const expected = buildIdOf(job.definition)
    if (job.buildId !== expected) throw new BuildIdMismatchError(`buildId ${job.buildId} is not the hash of the definition (${expected})`)
    const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    const created = parseTime(job.createdAt, 'createdAt')
    if (created > opts.now + skew) throw new FutureError(`createdAt ${job.createdAt} is in the future`)
    if (opts.allowExpired !== true && parseTime(job.expiresAt, 'expiresAt') <= opts.now) throw new ExpiredError(`job expired at ${job.expiresAt}`)
    const signer = publicKeyFromDid(job.requester)
    verifyEnvelopeSignature(envelope, signer)
    return { envelope, job, jobId: jobIdOf(payload), signer, bytes: envelopeBytes(envelope) }
  })
}
