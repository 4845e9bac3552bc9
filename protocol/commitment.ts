/**
 * Commitment (PROTOCOL.md §8.3), protocol v1.1: a worker's signed promise of
 * the artifact it built, published before its attestation reveals it.
 *
 * What it is for: a trusted key that copies another worker's CID without
 * building (the lazy copier) must have learned that CID from somewhere; on
 * the network, that is a revealing attestation. A requester that requires
 * commitments counts an attestation only if its commitment reached it before
 * the first attestation naming that CID did, so a copier who learns the CID
 * from gossip always commits too late. What it cannot catch is a copier told
 * the CID off the network (collusion), or a CID already public from an
 * earlier job of the same build (§8.3 says why).
 *
 * Why no secret nonce (a "salt"): the value committed to is a CID, the hash
 * of a build's output, which nobody can guess before the build is done; a
 * nonce would hide only a CID already known, which a copier needs no hiding
 * to copy. Without it the attestation needs no new field: the reveal is a
 * version 1 attestation, byte for byte, so a v1 requester counts it as
 * before and a v1.1 requester recomputes the digest from it.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { FutureError, SchemaError, SizeLimitError, UnsupportedVersionError } from './errors.ts'
import { CODEC_DAG_CBOR, CODEC_RAW, UNIXFS_CODECS, parseCid } from './cid.ts'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, openEnvelope, readEnvelope } from './decode.ts'
import { hexEncode, utf8Encode } from './encoding.ts'
import { keyHex, publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import type { SignedAttestation } from './attestation.ts'
import { countsAsBuilder, holdsLiveReplicaLease, replacesClaim } from './claim.ts'
import type { Claim } from './claim.ts'
import { PEER_ID_PATTERN } from './job.ts'
import { expectObject, expectString, isRecord } from './schema.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'

export const COMMITMENT_PAYLOAD_TYPE = 'application/vnd.concur.commitment+json; version=1'
export const COMMITMENT_TYPE = 'https://concur.dev/Commitment/v1'
const COMMITMENT_TYPE_FAMILY = /^https:\/\/concur\.dev\/Commitment\/v[0-9]+$/
/**
 * A commitment is six short strings: a few hundred bytes signed. The cap is
 * checked before anything is parsed, so a peer cannot make a node parse a
 * 64 KiB envelope for an object that never needs more than this.
 */
export const MAX_COMMITMENT_BYTES = 2048
/** the domain of the digest: no other concur hash is computed over the same bytes */
const DIGEST_DOMAIN = 'concur/commitment/v1'

/**
 * How long a worker holds its attestation back after its own commitment,
 * at least and at most, when the other builders' commitments do not all
 * come (§8.3 rule 2). Between the two: the worker's own build time, since
 * builds of one build definition take about as long on each worker, and a
 * builder still building after twice that is rarely one the job waits for.
 */
export const REVEAL_WAIT_MIN_MS = 2_000
export const REVEAL_WAIT_MAX_MS = 10 * 60_000
/**
 * Once every builder's commitment is here, a worker still waits this long
 * before it reveals: its own commitment, and the last ones, travel through
 * the mesh on another topic than the attestation, and must reach the
 * requester first. A gossip hop is milliseconds; a heartbeat's IHAVE/IWANT
 * repair is one second.
 */
export const REVEAL_MARGIN_MS = 1_000
/**
 * How long before an artifact's first reveal a commitment must have arrived
 * to count (§8.3 rule 3): not merely before it. A copier one hop from the
 * requester that commits the moment it sees a reveal can race a reveal that
 * reaches the requester by several hops, or by gossip's repair a heartbeat
 * later; it cannot win by half a second unless it controls the requester's
 * mesh. Honest builders commit REVEAL_MARGIN_MS before any reveal, so the
 * lead costs them nothing when gossip is healthy.
 */
export const COMMITMENT_LEAD_MS = 500

export interface Commitment {
  _type: typeof COMMITMENT_TYPE
  buildId: string
  jobId: string
  worker: string
  workerPeerId: string
  issuedAt: string
  /** hex sha256 of commitmentPreimage(buildId, jobId, worker, artifact) */
  digest: string
}

export interface SignedCommitment {
  envelope: Envelope
  commitment: Commitment
  /** Raw 32-byte public key of the worker (verified). */
  signer: Uint8Array
  /** Canonical wire bytes of the envelope. */
  bytes: Uint8Array
}

/**
 * The bytes hashed: every field that names what the commitment is about, so
 * a commitment for one job, one key or one artifact is never the digest of
 * another. Separated by newlines, which none of the fields can contain (CIDs
 * and did:keys are base-encoded), and prefixed by a domain string.
 */
function commitmentPreimage (buildId: string, jobId: string, worker: string, artifact: string): Uint8Array {
  return utf8Encode([DIGEST_DOMAIN, buildId, jobId, worker, artifact].join('\n'))
}

/** The digest a worker commits to for an artifact it built. */
export function commitmentDigest (buildId: string, jobId: string, worker: string, artifact: string): string {
  return hexEncode(sha256(commitmentPreimage(buildId, jobId, worker, artifact)))
}

/** The digest a success attestation opens (undefined for a failure: a failure is never committed to nor counted for an artifact). */
export function revealedDigest (a: Pick<SignedAttestation, 'claim'>): string | undefined {
  const r = a.claim.result
  return r.status === 'success' ? commitmentDigest(a.claim.buildId, a.claim.jobId, a.claim.worker, r.artifact) : undefined
}

export function validateCommitment (x: unknown): Commitment {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  if (x._type !== COMMITMENT_TYPE) {
    if (typeof x._type === 'string' && COMMITMENT_TYPE_FAMILY.test(x._type)) throw new UnsupportedVersionError(`unsupported commitment type ${x._type}`)
    throw new SchemaError('_type', `expected ${COMMITMENT_TYPE}`)
  }
  const o = expectObject(x, '', ['_type', 'buildId', 'jobId', 'worker', 'workerPeerId', 'issuedAt', 'digest'])
  const issuedAt = o.issuedAt as string
  parseTime(issuedAt, 'issuedAt')
  return {
    _type: COMMITMENT_TYPE,
    buildId: parseCid(o.buildId, 'buildId', [CODEC_DAG_CBOR]).toString(),
    jobId: parseCid(o.jobId, 'jobId', [CODEC_RAW]).toString(),
    worker: expectString(o.worker, 'worker', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ }),
    workerPeerId: expectString(o.workerPeerId, 'workerPeerId', { min: 1, max: 128, pattern: PEER_ID_PATTERN }),
    issuedAt,
    digest: expectString(o.digest, 'digest', { min: 64, max: 64, pattern: /^[0-9a-f]{64}$/ })
  }
}

export interface CreateCommitmentInput {
  buildId: string
  jobId: string
  workerPeerId: string
  issuedAt: string
  /** the artifact built: only its digest goes on the wire */
  artifact: string
}

export function createCommitment (input: CreateCommitmentInput, key: SigningKey): SignedCommitment {
  const artifact = parseCid(input.artifact, 'artifact', UNIXFS_CODECS).toString()
  const commitment = validateCommitment({
    _type: COMMITMENT_TYPE,
    buildId: input.buildId,
    jobId: input.jobId,
    worker: key.did,
    workerPeerId: input.workerPeerId,
    issuedAt: input.issuedAt,
    digest: commitmentDigest(input.buildId, input.jobId, key.did, artifact)
  })
  const envelope = signEnvelope(COMMITMENT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(commitment)), key)
  return { envelope, commitment, signer: key.publicKey, bytes: envelopeBytes(envelope) }
}

export interface DecodeCommitmentOptions { now: number; maxFutureSkewMs?: number }

/**
 * Order: size → envelope → one signature → payloadType → payload JSON →
 * type version → schema → time → key → signature. A commitment does not
 * expire (it is evidence about a build, like an attestation); a node keeps
 * it only while it holds the job it names.
 */
export function decodeCommitment (input: Uint8Array | Envelope, opts: DecodeCommitmentOptions): SignedCommitment {
  return guard(() => {
    if (input instanceof Uint8Array && input.byteLength > MAX_COMMITMENT_BYTES) throw new SizeLimitError(`commitment is ${input.byteLength} bytes, the limit is ${MAX_COMMITMENT_BYTES}`)
    const envelope = readEnvelope(input)
    const bytes = envelopeBytes(envelope)
    if (bytes.byteLength > MAX_COMMITMENT_BYTES) throw new SizeLimitError(`commitment is ${bytes.byteLength} bytes, the limit is ${MAX_COMMITMENT_BYTES}`)
    const { json } = openEnvelope(envelope, COMMITMENT_PAYLOAD_TYPE)
    const commitment = validateCommitment(json)
    const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    if (parseTime(commitment.issuedAt, 'issuedAt') > opts.now + skew) throw new FutureError(`issuedAt ${commitment.issuedAt} is in the future`)
    const signer = publicKeyFromDid(commitment.worker)
    verifyEnvelopeSignature(envelope, signer)
    return { envelope, commitment, signer, bytes }
  })
}

/**
 * What a requester observed, as input to the verdict (§8.3): the commitments
 * it holds, each with the place it arrived in, and for each artifact of the
 * build the place the first attestation naming it arrived in. Places are
 * one counter of this node's own (arrival order), never a time a peer
 * wrote: the rule is about what this requester saw first, which no signed
 * timestamp can prove.
 */
export interface CommitmentEvidence {
  /** each with its arrival place and this node's clock (ms) when it arrived */
  commitments: ReadonlyArray<{ commitment: Commitment, signer: Uint8Array, order: number, at: number }>
  /** artifact CID → arrival place, and time, of the first attestation of this build naming it */
  revealed: ReadonlyMap<string, { order: number, at: number }>
}

/**
 * The rule (§8.3 rule 3): a success attestation is committed in time when
 * its key's commitment to exactly this build, job and artifact arrived
 * before any attestation naming that artifact did, and at least
 * COMMITMENT_LEAD_MS before it. An artifact whose first reveal is not on
 * record is treated as revealed before everything: a requester that cannot
 * show the order does not count on it.
 */
export function committedInTime (a: SignedAttestation, evidence: CommitmentEvidence): boolean {
  const digest = revealedDigest(a)
  if (digest === undefined || a.claim.result.status !== 'success') return false
  const first = evidence.revealed.get(a.claim.result.artifact)
  if (first === undefined) return false
  const key = keyHex(a.signer)
  return evidence.commitments.some(c =>
    c.order < first.order &&
    first.at - c.at >= COMMITMENT_LEAD_MS &&
    c.commitment.digest === digest &&
    c.commitment.buildId === a.claim.buildId &&
    c.commitment.jobId === a.claim.jobId &&
    keyHex(c.signer) === key)
}

/**
 * How long a worker that built in `buildMs` holds its attestation back
 * after its own commitment when not every builder has committed (§8.3 rule 2).
 */
export function revealWaitMs (buildMs: number): number {
  return Math.min(REVEAL_WAIT_MAX_MS, Math.max(REVEAL_WAIT_MIN_MS, Math.round(buildMs)))
}

/**
 * Whom a worker that committed still waits for before it reveals (§8.3 rule
 * 2): every other worker whose newest claim on the job holds a live replica
 * lease (not a release, not a spot check) and that has neither committed nor
 * attested. Those are the builders whose commitments must be out before any
 * reveal, or they will be counted by no requester that requires
 * commitments. On a job that names its `builders`, only they are waited
 * for: a stranger's lease costs nothing to sign, and must not hold every
 * reveal back for the whole wait. A spot check waits for nobody: it comes
 * after the reveals, and counts only as dissent (§8.3).
 */
export function awaitedCommitments (claims: Iterable<Claim>, self: string, committed: ReadonlySet<string>, attested: ReadonlySet<string>, now: number, builders?: readonly string[]): string[] {
  const latest = new Map<string, Claim>()
  for (const c of claims) if (countsAsBuilder(builders, c.worker) && replacesClaim(c, latest.get(c.worker))) latest.set(c.worker, c)
  const out: string[] = []
  for (const [worker, c] of latest) {
    if (worker === self || committed.has(worker) || attested.has(worker)) continue
    if (holdsLiveReplicaLease(c, now)) out.push(worker)
  }
  return out.sort()
}

/** What a commitment says about itself, before anything is checked (peekCommitment). */
export interface CommitmentPeek { jobId: string, worker: string }

/**
 * Reads a commitment's jobId and claimed worker WITHOUT verifying anything,
 * as peekClaim does for claims: a commitment on a job the node does not
 * hold is IGNOREd (and charged) for the cost of a parse, not of a key decode
 * and a signature check. Nothing it returns may be trusted or stored.
 */
export function peekCommitment (input: Uint8Array): CommitmentPeek {
  return guard(() => {
    if (input.byteLength > MAX_COMMITMENT_BYTES) throw new SizeLimitError(`commitment is ${input.byteLength} bytes, the limit is ${MAX_COMMITMENT_BYTES}`)
    const { json } = openEnvelope(readEnvelope(input), COMMITMENT_PAYLOAD_TYPE)
    if (!isRecord(json)) throw new SchemaError('', 'expected an object')
    return {
      jobId: expectString(json.jobId, 'jobId', { min: 1, max: 128 }),
      worker: expectString(json.worker, 'worker', { min: 1, max: 128 })
    }
  })
}
