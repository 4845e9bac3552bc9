/**
 * WorkerAdvert (PROTOCOL.md §5.4, protocol v1.1): a worker's signed statement
 * of what it can build (environments, platforms, sandbox tier, the largest
 * job it takes), for whom, and which shards it reads, so a requester can tell
 * before announcing a job whether any worker it trusts could take it. Advice
 * only, like a claim: never counted in a verdict.
 */
import { ExpiredError, FutureError, SchemaError } from './errors.ts'
import { PLATFORM, isSandboxTier, tierAtLeast } from './build.ts'
import type { SandboxTier } from './build.ts'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, isVersion2, openEnvelope, readEnvelope } from './decode.ts'
import { utf8Encode } from './encoding.ts'
import { publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { MAX_BUILDERS, PEER_ID_PATTERN, validateKeySet, validateResourceAsk } from './job.ts'
import type { JobAnnouncement, ResourceAsk } from './job.ts'
import { expectArray, expectInteger, expectObject, expectString, isRecord, join } from './schema.ts'
import { SHARD_COUNT, isShard, shardOf } from './shard.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'

export const ADVERT_PAYLOAD_TYPE = 'application/vnd.concur.advert+json; version=1'
export const ADVERT_TYPE = 'https://concur.dev/WorkerAdvert/v1'
/** one version known: the family check still tells a later version (IGNORE) from junk (REJECT) */
const ADVERT_VERSIONS = {
  name: 'advert',
  v1: { payloadType: ADVERT_PAYLOAD_TYPE, type: ADVERT_TYPE },
  v2: { payloadType: ADVERT_PAYLOAD_TYPE, type: ADVERT_TYPE },
  family: /^https:\/\/concur\.dev\/WorkerAdvert\/v[0-9]+$/
}

/**
 * The longest an advert is good for. A worker re-advertises well before
 * (ADVERT_RENEW_MS), so an advert of a worker that left lapses within the
 * hour; longer, requesters would count on workers long gone.
 */
export const MAX_ADVERT_MS = 3_600_000
/** how often a worker re-publishes its advert: a requester that joined since hears it within this */
export const ADVERT_RENEW_MS = 600_000
/**
 * The least time between the issue of two adverts of one worker that a node
 * takes: an honest worker publishes every ADVERT_RENEW_MS (and on a
 * restart). More often is a flood: the adverts topic is read by every node,
 * and each copy costs every node a signature check.
 */
export const ADVERT_MIN_INTERVAL_MS = 60_000

/** whether `next` (a newer seq from the same worker) was issued too soon after `held`, the one kept (§5.4) */
export function advertTooSoon (held: Pick<WorkerAdvert, 'issuedAt'>, next: Pick<WorkerAdvert, 'issuedAt'>): boolean {
  return parseTime(next.issuedAt, 'issuedAt') - parseTime(held.issuedAt, 'issuedAt') < ADVERT_MIN_INTERVAL_MS
}
/**
 * The seq and the earliest issue time of a worker's next advert that no node
 * takes for a replay or refuses as too soon (§5.4), given `last`, the one it
 * issued before (kept across its restarts; undefined: none). A worker
 * restarted within a minute of its last advert waits out the minute, or every
 * neighbour would charge it. The wait is at most ADVERT_MIN_INTERVAL_MS even
 * when `last` is dated ahead of `now` (a clock set back): its holders let it
 * go when it expires.
 */
export function nextAdvert (last: Pick<WorkerAdvert, 'issuedAt' | 'seq'> | undefined, now: number): { seq: number, at: number } {
  if (last == null) return { seq: now, at: now }
  const at = Math.min(now + ADVERT_MIN_INTERVAL_MS, Math.max(now, parseTime(last.issuedAt, 'issuedAt') + ADVERT_MIN_INTERVAL_MS))
  return { seq: Math.max(last.seq + 1, at), at }
}
/** the most platforms an advert lists (a worker builds for its own, and perhaps a few emulated) */
export const MAX_ADVERT_PLATFORMS = 8
/** the environment kinds an advert may list (BuildDefinition environments, PROTOCOL.md §4) */
export const ADVERT_ENVIRONMENTS: readonly AdvertEnvironment[] = ['host', 'rootfs']

export type AdvertEnvironment = 'host' | 'rootfs'

export interface WorkerAdvert {
  _type: typeof ADVERT_TYPE
  worker: string
  workerPeerId: string
  /** the environment kinds it builds in, ascending, 1..2 */
  environments: AdvertEnvironment[]
  /** the platforms it builds for, spelt as BuildDefinitions spell them (e.g. linux-x64), ascending, 1..MAX_ADVERT_PLATFORMS */
  platforms: string[]
  /** its sandbox's tier */
  tier: SandboxTier
  /** the most one job may ask of it, each resource (a job asking more is declined) */
  limits: ResourceAsk
  /** builds it runs at once, 1..1024 */
  maxConcurrent: number
  /** the requesters it builds for (1..MAX_BUILDERS keys, ascending); absent: anyone */
  serves?: string[]
  /** the shards it reads (PROTOCOL.md §6.1), ascending, 0..SHARD_COUNT: where its sharded jobs must be */
  shards: number[]
  issuedAt: string
  expiresAt: string
  /** increasing with each advert of the worker: a newer one replaces an older */
  seq: number
}

export interface SignedAdvert { envelope: Envelope, advert: WorkerAdvert, signer: Uint8Array, bytes: Uint8Array }

export interface DecodeAdvertOptions { now: number, maxFutureSkewMs?: number }

function ascending<T> (list: T[], path: string): T[] {
  for (let i = 1; i < list.length; i++) {
    if (!((list[i - 1] as T) < (list[i] as T))) throw new SchemaError(join(path, i), `${path} must be sorted ascending, without repeats`)
  }
  return list
}

/** An advert's fields checked, in canonical key order (every list sorted, bounded). */
export function validateAdvert (x: unknown): WorkerAdvert {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  isVersion2(x, ADVERT_PAYLOAD_TYPE, ADVERT_VERSIONS)
  const o = expectObject(x, '', ['_type', 'worker', 'workerPeerId', 'environments', 'platforms', 'tier', 'limits', 'maxConcurrent', 'shards', 'issuedAt', 'expiresAt', 'seq'], ['serves'])
  const environments = ascending(expectArray(o.environments, 'environments', 1, ADVERT_ENVIRONMENTS.length).map((e, i) => {
    if (typeof e !== 'string' || !(ADVERT_ENVIRONMENTS as readonly string[]).includes(e)) throw new SchemaError(join('environments', i), `expected one of ${ADVERT_ENVIRONMENTS.join(', ')}`)
    return e as AdvertEnvironment
  }), 'environments')
  const platforms = ascending(expectArray(o.platforms, 'platforms', 1, MAX_ADVERT_PLATFORMS).map((p, i) => expectString(p, join('platforms', i), { min: 1, max: 64, pattern: PLATFORM })), 'platforms')
  if (!isSandboxTier(o.tier)) throw new SchemaError('tier', 'unknown sandbox tier')
  const shards = ascending(expectArray(o.shards, 'shards', 0, SHARD_COUNT).map((s, i) => {
    if (!isShard(s)) throw new SchemaError(join('shards', i), `expected a shard 0..${SHARD_COUNT - 1}`)
    return s
  }), 'shards')
  const issuedAt = expectString(o.issuedAt, 'issuedAt', { max: 64 })
  const expiresAt = expectString(o.expiresAt, 'expiresAt', { max: 64 })
  const issued = parseTime(issuedAt, 'issuedAt')
  const expires = parseTime(expiresAt, 'expiresAt')
  if (!(issued < expires)) throw new SchemaError('expiresAt', 'must be after issuedAt')
  if (expires - issued > MAX_ADVERT_MS) throw new SchemaError('expiresAt', `an advert is good for at most ${MAX_ADVERT_MS} ms`)
  return {
    _type: ADVERT_TYPE,
    worker: expectString(o.worker, 'worker', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ }),
    workerPeerId: expectString(o.workerPeerId, 'workerPeerId', { min: 1, max: 128, pattern: PEER_ID_PATTERN }),
    environments,
    platforms,
    tier: o.tier,
    limits: validateResourceAsk(o.limits, 'limits'),
    maxConcurrent: expectInteger(o.maxConcurrent, 'maxConcurrent', 1, 1024),
    ...(o.serves !== undefined ? { serves: validateKeySet(o.serves, 'serves', MAX_BUILDERS) } : {}),
    shards,
    issuedAt,
    expiresAt,
    seq: expectInteger(o.seq, 'seq', 0, Number.MAX_SAFE_INTEGER)
  }
}

export function createAdvert (input: Omit<WorkerAdvert, '_type'>, key: SigningKey): SignedAdvert {
  const advert = validateAdvert({
    _type: ADVERT_TYPE,
    ...input,
    environments: [...new Set(input.environments)].sort(),
    platforms: [...new Set(input.platforms)].sort(),
    shards: [...new Set(input.shards)].sort((a, b) => a - b),
    ...(input.serves !== undefined ? { serves: [...new Set(input.serves)].sort() } : {})
  })
  if (advert.worker !== key.did) throw new SchemaError('worker', 'must be the did:key of the signing key')
  const envelope = signEnvelope(ADVERT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(advert)), key)
  return { envelope, advert, signer: key.publicKey, bytes: envelopeBytes(envelope) }
}

/** Order: size → envelope → payloadType → JSON → version → schema → time window → key → signature (PROTOCOL.md §6). */
export function decodeAdvert (input: Uint8Array | Envelope, opts: DecodeAdvertOptions): SignedAdvert {
  return guard(() => {
    const envelope = readEnvelope(input)
    const { json } = openEnvelope(envelope, ADVERT_PAYLOAD_TYPE)
    const advert = validateAdvert(json)
    const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    if (parseTime(advert.issuedAt, 'issuedAt') > opts.now + skew) throw new FutureError(`issuedAt ${advert.issuedAt} is in the future`)
    if (parseTime(advert.expiresAt, 'expiresAt') <= opts.now) throw new ExpiredError(`advert expired at ${advert.expiresAt}`)
    const signer = publicKeyFromDid(advert.worker)
    verifyEnvelopeSignature(envelope, signer)
    return { envelope, advert, signer, bytes: envelopeBytes(envelope) }
  })
}

/**
 * Why the advertised worker would not take `job`, or undefined if it would
 * as far as its advert says (PROTOCOL.md §5.4): the job's environment kind
 * and platform, each resource within its limits, its requester served, a
 * sharded job's shard read, and the tier at least `minTier` (the
 * requester's policy's). What the advert cannot say (its inputs coming, the
 * worker's queue) is not judged.
 */
export function advertRefuses (advert: WorkerAdvert, job: Pick<JobAnnouncement, 'definition' | 'resources' | 'requester' | 'buildId' | 'shards'>, minTier?: SandboxTier): string | undefined {
  const env = job.definition.environment
  if (!advert.environments.includes(env.kind)) return `does not build in ${env.kind} environments`
  if (!advert.platforms.includes(env.platform)) return `does not build for ${env.platform}`
  for (const k of ['memoryBytes', 'cpus', 'diskBytes', 'wallSeconds', 'processes'] as const) {
    if (job.resources[k] > advert.limits[k]) return `takes at most ${k} ${advert.limits[k]} (the job asks ${job.resources[k]})`
  }
  if (advert.serves !== undefined && !advert.serves.includes(job.requester)) return 'builds only for the requesters it names'
  if (job.shards !== undefined && !advert.shards.includes(shardOf(job.buildId))) return `does not read shard ${shardOf(job.buildId).toString(16)}`
  if (minTier !== undefined && !tierAtLeast(advert.tier, minTier)) return `its sandbox tier ${advert.tier} is below ${minTier}`
  return undefined
}

/** What the adverts of a requester's trusted workers say of one job (advertsFor). */
export interface AdvertReading {
  /** trusted workers whose advert says they would take it */
  able: string[]
  /** trusted workers whose advert says they would not, and why */
  refusing: Array<{ worker: string, reason: string }>
}

/**
 * The trusted workers' adverts read against `job` (PROTOCOL.md §5.4): which
 * would take it and which would not. Only adverts of trusted keys are read:
 * only their builds can count, and a stranger's advert costs nothing to
 * sign. No trusted advert at all says nothing (v1 workers do not advertise,
 * and an advert may not have arrived yet): only `able` empty with
 * `refusing` non-empty is a reason to warn.
 */
export function advertsFor (job: Pick<JobAnnouncement, 'definition' | 'resources' | 'requester' | 'buildId' | 'shards'>, adverts: readonly WorkerAdvert[], isTrusted: (did: string) => boolean, minTier?: SandboxTier): AdvertReading {
  const out: AdvertReading = { able: [], refusing: [] }
  for (const a of adverts) {
    if (!isTrusted(a.worker)) continue
    const reason = advertRefuses(a, job, minTier)
    if (reason === undefined) out.able.push(a.worker)
    else out.refusing.push({ worker: a.worker, reason })
  }
  return out
}
