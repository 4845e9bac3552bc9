/**
 * JobAnnouncement: a requester asks the network to run a BuildDefinition.
 * jobId = CIDv1(raw, sha2-256) of the exact signed payload bytes, so a job is
 * named by what its requester signed.
 */
import * as ed from '@noble/ed25519'
import { base58btc } from 'multiformats/bases/base58'
import { BuildIdMismatchError, ExpiredError, FutureError, SchemaError } from './errors.ts'
import { buildIdOf, validateBuildDefinition } from './build.ts'
import type { BuildDefinition } from './build.ts'
import { CODEC_RAW, cidOf } from './cid.ts'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, isVersion2, openEnvelope, readEnvelope } from './decode.ts'
import type { TwoVersions } from './decode.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { hexEncode, utf8Encode } from './encoding.ts'
import { didFromPublicKey, publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { expectArray, expectInteger, expectNumber, expectObject, expectString, isRecord, join } from './schema.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'
import { SHARD_COUNT } from './shard.ts'

export const JOB_PAYLOAD_TYPE = 'application/vnd.concur.job+json; version=1'
export const JOB_TYPE = 'https://concur.dev/JobAnnouncement/v1'
/**
 * A sharded job (PROTOCOL.md §6.1, protocol v1.1) is a job of version 2: the
 * fields of version 1 and a required `shards`. A new version, not a field
 * added to version 1: a v1 node IGNOREs an unknown version (§9), so one that
 * gets a sharded job by catch-up neither builds it (its claims and
 * attestations would go on topics the job's requester may not hear) nor
 * scores down the peer that sent it; and which topics a job's messages
 * travel on is read from the job itself, wherever it came from.
 */
export const SHARDED_JOB_PAYLOAD_TYPE = 'application/vnd.concur.job+json; version=2'
export const SHARDED_JOB_TYPE = 'https://concur.dev/JobAnnouncement/v2'
const JOB_PAYLOAD_TYPES: readonly string[] = [JOB_PAYLOAD_TYPE, SHARDED_JOB_PAYLOAD_TYPE]
const JOB_VERSIONS: TwoVersions = {
  name: 'job',
  v1: { payloadType: JOB_PAYLOAD_TYPE, type: JOB_TYPE },
  v2: { payloadType: SHARDED_JOB_PAYLOAD_TYPE, type: SHARDED_JOB_TYPE },
  family: /^https:\/\/concur\.dev\/JobAnnouncement\/v[0-9]+$/
}
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
/**
 * What a job may ask its replicas to vary (PROTOCOL.md §5.1, `vary`). Each
 * worker derives its own value from its key and the job (owedVariation), so
 * replicas that started together still see different things, and anyone can
 * recompute what a worker owed from its attestation.
 * - 'clock': the wall clock moved by an offset (clockOffsetFor), so a build
 *   that records the time differs between replicas instead of agreeing
 *   because they all started at once.
 * - 'cpus': the number of CPUs the build may run on (sched_setaffinity, so
 *   `nproc`, os.cpu_count-style affinity reads, Go's NumCPU), cpusFor: 1..the
 *   attested parallelism. Catches output that depends on the thread count
 *   (xz -T0 block splits, per-thread output order).
 * - 'hostname': the sandbox's hostname (hostnameFor), for builds that embed
 *   `uname -n` / `hostname` (compilers' banners, Java manifests, logs).
 * - 'timezone': TZ (UTC when not varied) set to one of VARIED_TIMEZONES
 *   (timezoneFor), for builds that format local time.
 * Not the build path: /build is the one path every worker builds in, and the
 * worker's handle on that mount is how it copies the output out without
 * following anything the build planted (src/sandbox/build-mount.ts); moving
 * it per replica would mean a second, per-build mount layout to secure, so
 * build-path variation is left to reprotest-style tools run by hand.
 */
export type JobVariation = 'clock' | 'cpus' | 'hostname' | 'timezone'
/** sorted: a job's `vary` lists them in this order */
export const JOB_VARIATIONS: readonly JobVariation[] = ['clock', 'cpus', 'hostname', 'timezone']
export const MAX_VARIATIONS = 8
/**
 * The clock offsets a worker derives (clockOffsetFor): +1 h to +72 h.
 * At least an hour, so a varied clock never shows the real hour. Two
 * replicas' offsets (uniform over ~255,600 whole seconds) give the same
 * date-hour-minute stamp with probability ~1/2000 and the same date-hour
 * with ~1/36; even a bare minute of the hour (`date +%M`) agrees ~1/30 of
 * the time, so three replicas all agree ~1/900. At most three days, so the
 * date and weekday move too, while certificates, signature dates and
 * "file is in the future" checks see a clock a little ahead, not years off:
 * a build must differ because it records the time, not fail because the
 * time is absurd. Forward only: a file written before the build started
 * (its inputs, stamped SOURCE_DATE_EPOCH) is never newer than one it writes.
 */
export const CLOCK_OFFSET_MIN_SECONDS = 3600
export const CLOCK_OFFSET_MAX_SECONDS = 72 * 3600
/**
 * The zones a worker sets TZ to for a job asking 'timezone' (timezoneFor).
 * None is UTC+0 at any time of year (that is what an unvaried build sees);
 * no two share an offset at any time of year, summer or winter (measured
 * with tzdata 2025b), so two replicas in different zones differ in `%z` and
 * the local time; seven are not a whole hour off UTC (-3:30, +3:30, +5:30,
 * +5:45, +9:30, +12:45, -9:30), so a build that formats only hours and
 * minutes still differs; five keep DST, north (Los Angeles, St John's,
 * Berlin) and south (Adelaide, Chatham), so which replicas are on summer
 * time changes through the year. Every name is in Debian 12's tzdata
 * (2025b). Two replicas pick the same zone with probability 1/12, three all
 * the same 1/144. Changing this list changes what workers owe: it is part of
 * the protocol (PROTOCOL.md §5.1).
 */
export const VARIED_TIMEZONES: readonly string[] = [
  'America/Los_Angeles', // -8/-7, northern DST
  'America/St_Johns', // -3:30/-2:30
  'America/Sao_Paulo', // -3, no DST
  'Asia/Kathmandu', // +5:45
  'Asia/Kolkata', // +5:30
  'Asia/Tehran', // +3:30, no DST
  'Asia/Tokyo', // +9
  'Australia/Adelaide', // +9:30/+10:30, southern DST
  'Europe/Berlin', // +1/+2
  'Pacific/Chatham', // +12:45/+13:45, southern DST
  'Pacific/Kiritimati', // +14: a different date from UTC most of the day
  'Pacific/Marquesas' // -9:30
]
/**
 * Hostnames a worker gives the sandbox for a job asking 'hostname'
 * (hostnameFor): `concur-` and 8 hex digits (32 bits: two replicas collide
 * ~1 in 4 billion). Never the unvaried SANDBOX_HOSTNAME `concur`, a valid
 * RFC 1123 label, and bounded (15 characters) so an attestation cannot carry
 * an arbitrary string in it.
 */
export const VARIED_HOSTNAME_PATTERN = /^concur-[0-9a-f]{8}$/
/** Most CPUs an attestation may record (the bound of its parallelism). */
export const MAX_VARIED_CPUS = 1024
const NONCE = /^(?:[0-9a-f]{2}){16,64}$/
const DID_KEY = /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/

export interface ResourceAsk { memoryBytes: number; cpus: number; diskBytes: number; wallSeconds: number; processes: number }

export interface JobAnnouncement {
  /** v1: travels on the unsharded topics; v2: a sharded job (with `shards`) */
  _type: typeof JOB_TYPE | typeof SHARDED_JOB_TYPE
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
  /**
   * What replicas vary (PROTOCOL.md §5.1): known JobVariation values,
   * strictly ascending, 1..MAX_VARIATIONS. Absent: nothing is varied. Not
   * part of the BuildDefinition: the build, and its buildId, are the same.
   */
  vary?: JobVariation[]
  resources: ResourceAsk
  createdAt: string
  expiresAt: string
  nonce: string
  /**
   * Version 2 only, and required there: the job is sharded (PROTOCOL.md
   * §6.1). It, its claims and its attestations travel on the topics of shard
   * shardOf(buildId) of this many shards (SHARD_COUNT, the one partition
   * v1.1 knows), not on the unsharded topics v1 nodes read.
   */
  shards?: typeof SHARD_COUNT
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
  return validateKeySet(x, 'builders', MAX_BUILDERS)
}

/**
 * A set of keys as the protocol spells one (`builders`, an advert's
 * `serves`): 1..`max` canonical ed25519 did:keys, strictly ascending, so no
 * key is listed twice and one set has one spelling.
 */
export function validateKeySet (x: unknown, at: string, max: number): string[] {
  const list = expectArray(x, at, 1, max)
  const out: string[] = []
  for (let i = 0; i < list.length; i++) {
    const path = join(at, i)
    const did = expectString(list[i], path, { min: 1, max: 128, pattern: DID_KEY })
    if (!isCanonicalEd25519Did(did)) throw new SchemaError(path, 'not a canonical ed25519 did:key')
    const prev = out[i - 1]
    if (prev !== undefined && !(prev < did)) throw new SchemaError(path, `${at} must be sorted ascending, without repeats`)
    out.push(did)
  }
  return out
}

/**
 * `vary`: 1..MAX_VARIATIONS known variations, strictly ascending (one set,
 * one spelling, one jobId). An unknown value is refused, not ignored: a
 * worker that built without the variation asked for would attest a run the
 * requester did not ask for.
 */
function validateVary (x: unknown): JobVariation[] {
  const list = expectArray(x, 'vary', 1, MAX_VARIATIONS)
  const out: JobVariation[] = []
  for (let i = 0; i < list.length; i++) {
    const path = join('vary', i)
    const v = expectString(list[i], path, { min: 1, max: 32 })
    if (!(JOB_VARIATIONS as readonly string[]).includes(v)) throw new SchemaError(path, `unknown variation (known: ${JOB_VARIATIONS.join(', ')})`)
    const prev = out[i - 1]
    if (prev !== undefined && !(prev < v)) throw new SchemaError(path, 'vary must be sorted ascending, without repeats')
    out.push(v as JobVariation)
  }
  return out
}

/**
 * The clock offset a worker applies to a job asking `vary: ['clock']`
 * (PROTOCOL.md §5.1): whole seconds in [CLOCK_OFFSET_MIN_SECONDS,
 * CLOCK_OFFSET_MAX_SECONDS], from sha256(workerDid "\n" jobId). Derived, not
 * drawn: a restarted worker rebuilds with the same clock, anyone can
 * recompute a worker's offset from its attestation, and the requester
 * cannot choose it (the worker's key is in the hash).
 */
export function clockOffsetFor (workerDid: string, jobId: string): number {
  const h = sha256(utf8Encode(`${workerDid}\n${jobId}`))
  // the first 48 bits, big-endian: exact in a double, and their bias mod ~2^18 is ~2^-30
  let n = 0
  for (let i = 0; i < 6; i++) n = n * 256 + h[i]!
  return CLOCK_OFFSET_MIN_SECONDS + n % (CLOCK_OFFSET_MAX_SECONDS - CLOCK_OFFSET_MIN_SECONDS + 1)
}

/**
 * What a worker varied in the build it attests (PROTOCOL.md §5.2), asked for
 * by the job's `vary`: one key per variation asked, in this order, never
 * empty. The decoder checks shapes only (it has no job to say what was
 * asked); the verdict checks each value is the one the worker owed
 * (owedVariation).
 */
export interface BuildVariation {
  /** 'clock': the whole seconds the build's wall clock was moved by */
  clockOffsetSeconds?: number
  /** 'cpus': how many CPUs the build could run on (its affinity mask) */
  cpus?: number
  /** 'hostname': the sandbox's hostname, `concur-` and 8 hex digits */
  hostname?: string
  /** 'timezone': the zone the build's TZ named, one of VARIED_TIMEZONES */
  timezone?: string
}

/**
 * The digest a variation other than the clock is drawn from:
 * sha256("concur-vary-" kind "\n" workerDid "\n" jobId). The kind is in the
 * hash so the values of one worker are independent of each other (and of
 * clockOffsetFor, which predates this and hashes without a prefix).
 */
function variationDigest (kind: Exclude<JobVariation, 'clock'>, workerDid: string, jobId: string): Uint8Array {
  return sha256(utf8Encode(`concur-vary-${kind}\n${workerDid}\n${jobId}`))
}

/** the first 6 bytes of a digest as an integer (exact in a double; bias mod anything here < 2^-36) */
function digestInteger (h: Uint8Array): number {
  let n = 0
  for (let i = 0; i < 6; i++) n = n * 256 + h[i]!
  return n
}

/** The hostname a worker gives a build of a job asking 'hostname': `concur-` + the digest's first 4 bytes in hex. */
export function hostnameFor (workerDid: string, jobId: string): string {
  return `concur-${hexEncode(variationDigest('hostname', workerDid, jobId).slice(0, 4))}`
}

/** The zone a worker sets TZ to for a job asking 'timezone': one of VARIED_TIMEZONES. */
export function timezoneFor (workerDid: string, jobId: string): string {
  return VARIED_TIMEZONES[digestInteger(variationDigest('timezone', workerDid, jobId)) % VARIED_TIMEZONES.length]!
}

/**
 * The CPUs a build of a job asking 'cpus' may run on: 1..parallelism (the
 * parallelism the worker attests, which an honest worker takes from the
 * job's resources.cpus), so a build never sees more CPUs than it asked for
 * and a job asking one CPU varies nothing (`submit --vary cpus` refuses it).
 */
export function cpusFor (workerDid: string, jobId: string, parallelism: number): number {
  const p = Math.max(1, Math.min(MAX_VARIED_CPUS, Math.floor(parallelism)))
  return 1 + digestInteger(variationDigest('cpus', workerDid, jobId)) % p
}

/**
 * Everything a worker owes a job asking `vary` (PROTOCOL.md §5.1): the
 * attestation's `variation` must be exactly this (same keys, same values),
 * in this key order. Undefined when nothing is asked. The one definition
 * the worker applies and the verdict checks.
 */
export function owedVariation (vary: readonly JobVariation[] | undefined, workerDid: string, jobId: string, parallelism: number): BuildVariation | undefined {
  if (vary === undefined || vary.length === 0) return undefined
  return {
    ...(vary.includes('clock') ? { clockOffsetSeconds: clockOffsetFor(workerDid, jobId) } : {}),
    ...(vary.includes('cpus') ? { cpus: cpusFor(workerDid, jobId, parallelism) } : {}),
    ...(vary.includes('hostname') ? { hostname: hostnameFor(workerDid, jobId) } : {}),
    ...(vary.includes('timezone') ? { timezone: timezoneFor(workerDid, jobId) } : {})
  }
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
export function validateJobAnnouncement (x: unknown, payloadType?: string): JobAnnouncement {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  const sharded = isVersion2(x, payloadType, JOB_VERSIONS)
  const o = expectObject(x, '', ['_type', 'buildId', 'definition', 'requester', 'replicas', 'resources', 'createdAt', 'expiresAt', 'nonce', ...(sharded ? ['shards'] : [])], ['requesterPeerId', 'builders', 'vary'])
  // the one partition this version knows; another count is another network layout, refused rather than misrouted
  if (sharded && o.shards !== SHARD_COUNT) throw new SchemaError('shards', `expected ${SHARD_COUNT}`)
  const buildId = expectString(o.buildId, 'buildId', { min: 1, max: 128 })
  const definition = validateBuildDefinition(o.definition, 'definition')
  const requester = expectString(o.requester, 'requester', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ })
  const requesterPeerId = o.requesterPeerId === undefined ? undefined : expectString(o.requesterPeerId, 'requesterPeerId', { max: 128, pattern: PEER_ID_PATTERN })
  const replicas = expectInteger(o.replicas, 'replicas', 1, MAX_REPLICAS)
  const builders = o.builders === undefined ? undefined : validateBuilders(o.builders)
  const vary = o.vary === undefined ? undefined : validateVary(o.vary)
  const resources = validateResourceAsk(o.resources, 'resources')
  const createdAt = o.createdAt as string
  const expiresAt = o.expiresAt as string
  const created = parseTime(createdAt, 'createdAt')
  const expires = parseTime(expiresAt, 'expiresAt')
  if (!(created < expires)) throw new SchemaError('expiresAt', 'must be after createdAt')
  const nonce = expectString(o.nonce, 'nonce', { max: 128, pattern: NONCE })
  // Key order is fixed here because this object is what gets serialised and signed.
  return {
    _type: sharded ? SHARDED_JOB_TYPE : JOB_TYPE,
    buildId,
    definition,
    requester,
    ...(requesterPeerId !== undefined ? { requesterPeerId } : {}),
    replicas,
    ...(builders !== undefined ? { builders } : {}),
    ...(vary !== undefined ? { vary } : {}),
    resources,
    createdAt,
    expiresAt,
    nonce,
    ...(sharded ? { shards: SHARD_COUNT } : {})
  }
}

export type JobInput = Omit<JobAnnouncement, '_type' | 'buildId' | 'nonce'> & { nonce?: string }

/**
 * Builds, validates and signs a job. A missing nonce is drawn at random (16
 * bytes). `builders` are put in their canonical order (sorted, repeats
 * dropped), and so is `vary`; an empty list is refused like any list the
 * decoder would refuse.
 */
export function createJobAnnouncement (input: JobInput, key: SigningKey): SignedJob {
  const definition = validateBuildDefinition(input.definition, 'definition')
  if (input.requester !== key.did) throw new SchemaError('requester', 'must be the did:key of the signing key')
  const sharded = input.shards !== undefined
  const draft: Record<string, unknown> = {
    _type: sharded ? SHARDED_JOB_TYPE : JOB_TYPE,
    buildId: buildIdOf(definition),
    definition,
    requester: input.requester,
    requesterPeerId: input.requesterPeerId,
    replicas: input.replicas,
    builders: Array.isArray(input.builders) ? [...new Set(input.builders)].sort() : input.builders,
    vary: Array.isArray(input.vary) ? [...new Set(input.vary)].sort() : input.vary,
    resources: input.resources,
    createdAt: input.createdAt,
    expiresAt: input.expiresAt,
    nonce: input.nonce ?? hexEncode(ed.etc.randomBytes(16)),
    shards: input.shards
  }
  if (draft.shards === undefined) delete draft.shards
  if (draft.requesterPeerId === undefined) delete draft.requesterPeerId
  if (draft.builders === undefined) delete draft.builders
  if (draft.vary === undefined) delete draft.vary
  // Never emit what we would refuse to decode.
  const job = validateJobAnnouncement(draft)
  const payload = utf8Encode(JSON.stringify(job))
  const envelope = signEnvelope(sharded ? SHARDED_JOB_PAYLOAD_TYPE : JOB_PAYLOAD_TYPE, payload, key)
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
    // either version (openEnvelope refuses any other payloadType)
    const { payload, json } = openEnvelope(envelope, JOB_PAYLOAD_TYPES.includes(envelope.payloadType) ? envelope.payloadType : JOB_PAYLOAD_TYPE)
    const job = validateJobAnnouncement(json, envelope.payloadType)
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

/** Where a job travels, as it says of itself (peekJobRoute). */
export interface JobRoute { buildId: string, shards?: typeof SHARD_COUNT }

/**
 * Reads a job's buildId and whether it is sharded WITHOUT verifying anything
 * (no buildId recomputed, no key decoded, no signature checked): only to
 * choose the topic a job given by catch-up or by a caller is validated
 * against (topicOfJob). The decoder run on that topic then checks everything,
 * the route included, so nothing read here is trusted. Throws the decoder's
 * typed errors for what it reads.
 */
export function peekJobRoute (input: Uint8Array): JobRoute {
  return guard(() => {
    const envelope = readEnvelope(input)
    const sharded = envelope.payloadType === SHARDED_JOB_PAYLOAD_TYPE
    const { json } = openEnvelope(envelope, sharded ? SHARDED_JOB_PAYLOAD_TYPE : JOB_PAYLOAD_TYPE)
    if (!isRecord(json)) throw new SchemaError('', 'expected an object')
    const buildId = expectString(json.buildId, 'buildId', { min: 1, max: 128 })
    return sharded ? { buildId, shards: SHARD_COUNT } : { buildId }
  })
}
