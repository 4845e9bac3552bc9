/**
 * Claim: a worker's short lease on a job, so that `replicas` workers — not
 * every worker — build it. Leases are advisory (a claim proves nothing about
 * the build); they only save duplicate work. See PROTOCOL.md §5.3 (the object)
 * and §7 (the rules).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { ExpiredError, FutureError, SchemaError } from './errors.ts'
import { CODEC_DAG_CBOR, CODEC_RAW, parseCid } from './cid.ts'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, isVersion2, openEnvelope, readEnvelope } from './decode.ts'
import type { TwoVersions } from './decode.ts'
import { hexEncode, utf8Encode } from './encoding.ts'
import { publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { PEER_ID_PATTERN } from './job.ts'
import { expectInteger, expectObject, expectString, isRecord } from './schema.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'

export const CLAIM_PAYLOAD_TYPE = 'application/vnd.concur.claim+json; version=1'
export const CLAIM_TYPE = 'https://concur.dev/Claim/v1'
/**
 * A release (PROTOCOL.md §5.3) is a claim of version 2: the same fields and
 * a required `release`. A new version, not a field added to version 1: a
 * node that predates releases IGNOREs an unknown version (§9), where an
 * unknown field in version 1 would be REJECTed and score down every honest
 * peer relaying it (nine such REJECTs graylist a peer).
 */
export const RELEASE_PAYLOAD_TYPE = 'application/vnd.concur.claim+json; version=2'
export const RELEASE_TYPE = 'https://concur.dev/Claim/v2'
const CLAIM_PAYLOAD_TYPES: readonly string[] = [CLAIM_PAYLOAD_TYPE, RELEASE_PAYLOAD_TYPE]
const CLAIM_VERSIONS: TwoVersions = {
  name: 'claim',
  v1: { payloadType: CLAIM_PAYLOAD_TYPE, type: CLAIM_TYPE },
  v2: { payloadType: RELEASE_PAYLOAD_TYPE, type: RELEASE_TYPE },
  family: /^https:\/\/concur\.dev\/Claim\/v[0-9]+$/
}
/** Lease length a worker asks for. */
export const LEASE_MS = 30_000
/** A worker renews its claim this often while building (3 renewals per lease: one lost message does not lapse it). */
export const LEASE_RENEW_MS = 10_000
/** Longest lease a decoder accepts: a lease must lapse soon after its worker vanishes. */
export const MAX_LEASE_MS = 120_000
/**
 * A lease is about this share of the build's expected duration (PROTOCOL.md
 * §7 rule 1), within LEASE_MS..MAX_LEASE_MS: a worker that vanishes delays
 * the job's take-over by at most a fifth of the build it was running (and
 * never more than MAX_LEASE_MS), while a long build renews every
 * MAX_LEASE_MS / 3 = 40 s rather than every 10 s.
 */
export const LEASE_SHARE = 5

export interface LeaseTiming {
  /** how long each claim's lease runs (leaseUntil - issuedAt) */
  leaseMs: number
  /** how long after a claim the next renewal is due */
  renewMs: number
}

/**
 * The lease and renewal interval for a build expected to take `expectedMs`
 * (PROTOCOL.md §7 rule 1). A short build keeps LEASE_MS / LEASE_RENEW_MS (a
 * vanished worker's slot frees in 30 s); a longer one gets a lease of
 * `expectedMs / LEASE_SHARE`, at most MAX_LEASE_MS: the bound every decoder
 * (v1 included) enforces, so the claims stay version 1, byte for byte the
 * same shape, and a v1 node counts them as before. The renewal interval is
 * always a third of the lease, so two lost renewals do not lapse it.
 */
export function leaseFor (expectedMs: number): LeaseTiming {
  const wanted = Number.isFinite(expectedMs) ? Math.round(expectedMs / LEASE_SHARE) : MAX_LEASE_MS
  const leaseMs = Math.min(MAX_LEASE_MS, Math.max(LEASE_MS, wanted))
  return { leaseMs, renewMs: Math.floor(leaseMs / (LEASE_MS / LEASE_RENEW_MS)) }
}

/**
 * What a worker expects a build to take, at `elapsedMs` into it (PROTOCOL.md
 * §7 rule 1): its own last build of the same environment (`pastMs`, if any),
 * or as long as the build has run so far, whichever is longer (a build that
 * has already run for 20 minutes is not a 1-minute build, whatever its
 * history), and never more than the job's own `wallSeconds`: the sandbox
 * stops the build there, so a longer lease would only delay a take-over.
 */
export function expectedBuildMs (wallSeconds: number, elapsedMs: number, pastMs?: number): number {
  return Math.min(wallSeconds * 1000, Math.max(pastMs ?? 0, elapsedMs, 0))
}

/** Upper bound of the random delay before picking up an under-claimed job (spreads simultaneous starts). */
export const CLAIM_JITTER_MAX_MS = 2_000
/**
 * The order in which a job's named builders go for it (PROTOCOL.md §7 rule
 * 4): the first `replicas` of them claim at once, each later one waits this
 * much per place beyond them, at most CLAIM_ORDER_MAX_WAIT_MS, and then
 * counts the slots again. Without it every idle named builder that hears an
 * unclaimed job claims within the 50 ms jitter, long before the others'
 * claims can reach it across a WAN mesh: the simulator (README, "Scaling")
 * measured 21 builds per job of 3 at 10,000 nodes with 64 builders per job.
 * One second is a few gossip hops with room to spare.
 */
export const CLAIM_ORDER_STEP_MS = 1_000
export const CLAIM_ORDER_MAX_WAIT_MS = 4_000

/**
 * A named builder's place in a job's claim order: the builders sorted by
 * sha256(jobId ‖ "\n" ‖ did), a different order for every job (so no key is
 * always first) that every node computes alike. Undefined for a job naming
 * no builders, or a key it does not name.
 */
export function claimOrder (job: { jobId: string, builders?: readonly string[] }, did: string): number | undefined {
  if (job.builders === undefined || !job.builders.includes(did)) return undefined
  const rankOf = (d: string): string => hexEncode(sha256(utf8Encode(`${job.jobId}\n${d}`)))
  const mine = rankOf(did)
  return job.builders.filter(d => d !== did && rankOf(d) < mine).length
}

/** How long a builder at `place` in the claim order waits before it counts the slots again and claims (0 for the first `replicas`). */
export function claimOrderWaitMs (place: number | undefined, replicas: number): number {
  if (place === undefined || place < replicas) return 0
  return Math.min(CLAIM_ORDER_MAX_WAIT_MS, (place - replicas + 1) * CLAIM_ORDER_STEP_MS)
}

export interface Claim {
  /** v1: a claim of a slot; v2: a release (with `release`) */
  _type: typeof CLAIM_TYPE | typeof RELEASE_TYPE
  jobId: string
  buildId: string
  worker: string
  workerPeerId: string
  issuedAt: string
  leaseUntil: string
  seq: number
  /**
   * Absent or 'replica': the worker takes one of the job's `replicas` slots.
   * 'spot-check': an independent rebuild by a rebuilder; it takes no slot, so
   * a spot check never displaces a replica the requester asked for.
   */
  purpose?: ClaimPurpose
  /**
   * The worker is not building the job (now), and says why (PROTOCOL.md
   * §5.3, §7 rule 6): it takes no replica slot whatever its lease, and a
   * later claim with a higher `seq` (a retry) replaces it. Without it a
   * requester whose workers all declined, or could not fetch the inputs,
   * saw nothing until the job expired.
   */
  release?: ClaimRelease
}

export type ClaimPurpose = 'replica' | 'spot-check'

/**
 * Why a worker is not building a job:
 * - `declined`: the volunteer's limits, policy or capabilities refuse it; it will not build it;
 * - `inputs-unavailable`: the source or environment did not come; it may try again later;
 * - `gave-up`: the build could not be run for a reason of the worker's own (not a build failure).
 */
export type ReleaseKind = 'declined' | 'inputs-unavailable' | 'gave-up'
export const RELEASE_KINDS: readonly ReleaseKind[] = ['declined', 'inputs-unavailable', 'gave-up']
/** the longest release reason, in characters (as a failure attestation's reason) */
export const MAX_RELEASE_REASON = 1024

export interface ClaimRelease { kind: ReleaseKind, reason: string }

function validateRelease (x: unknown): ClaimRelease {
  const o = expectObject(x, 'release', ['kind', 'reason'], [])
  if (typeof o.kind !== 'string' || !(RELEASE_KINDS as readonly string[]).includes(o.kind)) throw new SchemaError('release.kind', `expected one of ${RELEASE_KINDS.join(', ')}`)
  return { kind: o.kind as ReleaseKind, reason: expectString(o.reason, 'release.reason', { min: 1, max: MAX_RELEASE_REASON }) }
}

export interface SignedClaim { envelope: Envelope; claim: Claim; signer: Uint8Array; bytes: Uint8Array }

export interface DecodeClaimOptions { now: number; maxFutureSkewMs?: number; allowExpired?: boolean }

/**
 * A claim's fields checked. `payloadType` (when the claim came in an
 * envelope) decides the version it must be: version 1 without `release`,
 * version 2 with it.
 */
export function validateClaim (x: unknown, payloadType?: string): Claim {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  const isRelease = isVersion2(x, payloadType, CLAIM_VERSIONS)
  const o = expectObject(x, '', ['_type', 'jobId', 'buildId', 'worker', 'workerPeerId', 'issuedAt', 'leaseUntil', 'seq', ...(isRelease ? ['release'] : [])], ['purpose'])
  if (o.purpose !== undefined && o.purpose !== 'replica' && o.purpose !== 'spot-check') throw new SchemaError('purpose', 'expected "replica" or "spot-check"')
  const issuedAt = o.issuedAt as string
  const leaseUntil = o.leaseUntil as string
  const issued = parseTime(issuedAt, 'issuedAt')
  const until = parseTime(leaseUntil, 'leaseUntil')
  if (!(issued < until)) throw new SchemaError('leaseUntil', 'must be after issuedAt')
  if (until - issued > MAX_LEASE_MS) throw new SchemaError('leaseUntil', `lease longer than ${MAX_LEASE_MS} ms`)
  return {
    _type: isRelease ? RELEASE_TYPE : CLAIM_TYPE,
    jobId: parseCid(o.jobId, 'jobId', [CODEC_RAW]).toString(),
    buildId: parseCid(o.buildId, 'buildId', [CODEC_DAG_CBOR]).toString(),
    worker: expectString(o.worker, 'worker', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ }),
    workerPeerId: expectString(o.workerPeerId, 'workerPeerId', { min: 1, max: 128, pattern: PEER_ID_PATTERN }),
    issuedAt,
    leaseUntil,
    seq: expectInteger(o.seq, 'seq', 0, Number.MAX_SAFE_INTEGER),
    ...(o.purpose !== undefined ? { purpose: o.purpose } : {}),
    ...(isRelease ? { release: validateRelease(o.release) } : {})
  }
}

export function createClaim (input: Omit<Claim, '_type'>, key: SigningKey): SignedClaim {
  const release = input.release !== undefined
  const claim = validateClaim({ _type: release ? RELEASE_TYPE : CLAIM_TYPE, ...input })
  if (claim.worker !== key.did) throw new SchemaError('worker', 'must be the did:key of the signing key')
  const envelope = signEnvelope(release ? RELEASE_PAYLOAD_TYPE : CLAIM_PAYLOAD_TYPE, utf8Encode(JSON.stringify(claim)), key)
  return { envelope, claim, signer: key.publicKey, bytes: envelopeBytes(envelope) }
}

/** the payloadType a claim envelope is opened with: either version (openEnvelope refuses any other) */
function claimPayloadType (payloadType: string): string {
  return CLAIM_PAYLOAD_TYPES.includes(payloadType) ? payloadType : CLAIM_PAYLOAD_TYPE
}

/** Order: size → envelope → payloadType → JSON → version → schema → time window → key → signature. */
export function decodeClaim (input: Uint8Array | Envelope, opts: DecodeClaimOptions): SignedClaim {
  return guard(() => {
    const envelope = readEnvelope(input)
    const { json } = openEnvelope(envelope, claimPayloadType(envelope.payloadType))
    const claim = validateClaim(json, envelope.payloadType)
    const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    if (parseTime(claim.issuedAt, 'issuedAt') > opts.now + skew) throw new FutureError(`issuedAt ${claim.issuedAt} is in the future`)
    if (opts.allowExpired !== true && parseTime(claim.leaseUntil, 'leaseUntil') <= opts.now) throw new ExpiredError(`lease ended at ${claim.leaseUntil}`)
    const signer = publicKeyFromDid(claim.worker)
    verifyEnvelopeSignature(envelope, signer)
    return { envelope, claim, signer, bytes: envelopeBytes(envelope) }
  })
}

/**
 * Whether `next` replaces `prev` as one worker's claim on one job: only a
 * higher `seq` does, so a renewal extends the lease and a short final lease
 * releases it early, while a replayed or older claim changes nothing (the first
 * of two claims with the same `seq` stands).
 */
export function replacesClaim (next: Claim, prev: Claim | undefined): boolean {
  return prev === undefined || next.seq > prev.seq
}

/**
 * Whether `worker`'s replica claims can take a slot of a job that names
 * `builders` (PROTOCOL.md §7 rule 3): only a key the job names, when it names
 * any; every key on an open job (no `builders`). A worker the job does not
 * name does not claim a replica slot on it: its build could never count for
 * the requester, and its claim would count for no one.
 */
export function countsAsBuilder (builders: readonly string[] | undefined, worker: string): boolean {
  return builders === undefined || builders.includes(worker)
}

/**
 * Whether a worker's newest claim on a job says it is building a replica
 * now: a replica claim (not a spot check), not a release, its lease running
 * at `now`. What takes a slot (with attestations, takenSlots), whom a
 * committed worker waits for (awaitedCommitments), and whose commitment a
 * node keeps whatever its caps (the commitment book's claimants).
 */
export function holdsLiveReplicaLease (c: Claim, now: number): boolean {
  return c.purpose !== 'spot-check' && c.release === undefined && parseTime(c.leaseUntil, 'leaseUntil') > now
}

/**
 * How many of a job's `replicas` slots are taken at `now` (PROTOCOL.md §7,
 * rule 3). `claims` are the claims seen on that one job, in any order, repeats
 * and superseded ones included; `attested` the workers (did:keys) that attested
 * it; `builders` the job's `builders` (undefined: an open job). Workers are
 * told apart by their did:key (one text per key, §2).
 *
 * Per worker only its newest claim counts (replacesClaim). A worker whose
 * newest claim is a replica claim takes a slot while its lease is live, and
 * keeps it after the lease once it has attested: so a lapsed lease without an
 * attestation frees the slot (a worker that died mid-build). A spot-check
 * claim takes no slot, nor does its worker's attestation (extra evidence, not
 * a replica), nor an attestation from a worker that never claimed: anyone can
 * sign one with a throw-away key, and counting it would let `replicas` such
 * signatures starve the job (§14). On a job that names its builders, a key it
 * does not name takes no slot at all, leased or attested: anyone can also
 * sign claims, and `replicas` throw-away keys claiming then attesting (or
 * renewing leases) would otherwise hold every slot until the job expires.
 * `except` (the asking worker itself) is not counted.
 */
export function takenSlots (claims: Iterable<Claim>, attested: Iterable<string>, now: number, except?: string, builders?: readonly string[]): number {
  const named = builders === undefined ? undefined : new Set(builders)
  const latest = new Map<string, Claim>()
  for (const c of claims) {
    if (named !== undefined && !named.has(c.worker)) continue
    if (replacesClaim(c, latest.get(c.worker))) latest.set(c.worker, c)
  }
  const attesters = new Set(attested)
  let taken = 0
  for (const [worker, c] of latest) {
    if (worker === except || c.purpose === 'spot-check') continue
    // a release takes no slot, whatever its lease: the worker said it is not building
    if (holdsLiveReplicaLease(c, now) || attesters.has(worker)) taken++
  }
  return taken
}

/** What a claim says about itself, before anything is checked (peekClaim). */
export interface ClaimPeek { jobId: string, worker: string }

/**
 * Reads a claim's jobId and claimed worker WITHOUT verifying anything (no key
 * decoded, no signature checked): a parse, where decodeClaim costs
 * milliseconds for a key never seen. It exists to decide whether that cost is
 * worth paying (a claim on a job the node does not hold is IGNOREd unread,
 * PROTOCOL.md §6); nothing it returns may be trusted or stored. Throws the
 * decoder's typed errors for what it reads.
 */
export function peekClaim (input: Uint8Array): ClaimPeek {
  return guard(() => {
    const envelope = readEnvelope(input)
    const { json } = openEnvelope(envelope, claimPayloadType(envelope.payloadType))
    if (!isRecord(json)) throw new SchemaError('', 'expected an object')
    return {
      jobId: expectString(json.jobId, 'jobId', { min: 1, max: 128 }),
      worker: expectString(json.worker, 'worker', { min: 1, max: 128 })
    }
  })
}
