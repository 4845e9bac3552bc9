/**
 * Equivocation proofs (PROTOCOL.md §8.2): two attestations signed by one key
 * for one job of one build that name different artifacts. A requester that
 * holds both never counts the key for that build (verdict.ts step 3); the
 * proof carries both envelopes to requesters that saw only one of them.
 *
 * A proof is self-certifying: it is not signed by whoever publishes it, since
 * a signature by a key anyone can make would add nothing a receiver could
 * check. Its two envelopes are checked exactly as attestations are, and the
 * pair must prove what verdict.ts calls equivocation, nothing weaker: two
 * answers to two jobs of one build (an honest rerun of a build that is not
 * reproducible) or a success and a failure prove nothing against the key.
 */
import { NotEquivocationError, SizeLimitError, UnsupportedVersionError } from './errors.ts'
import { decodeAttestation } from './attestation.ts'
import type { SignedAttestation } from './attestation.ts'
import { guard } from './decode.ts'
import type { Envelope } from './dsse.ts'
import { parseJson, utf8Encode } from './encoding.ts'
import { keyHex } from './keys.ts'
import { MAX_MESSAGE_BYTES } from './limits.ts'
import { expectArray, expectLiteral, expectObject } from './schema.ts'

export const EQUIVOCATION_PROOF_TYPE = 'https://concur.dev/EquivocationProof/v1'
/**
 * Two attestation envelopes of at most MAX_MESSAGE_BYTES each, and the few
 * bytes around them. Checked before anything is parsed.
 */
export const MAX_EQUIVOCATION_PROOF_BYTES = 2 * MAX_MESSAGE_BYTES + 1024

export interface EquivocationProof {
  /** the two attestations, ordered by id (the lower first) */
  attestations: [SignedAttestation, SignedAttestation]
  /** hex of the raw public key that signed both */
  signer: string
  buildId: string
  jobId: string
  /** canonical wire bytes (equivocationProofBytes): honest nodes that detect one pair publish identical bytes, one gossip message id */
  bytes: Uint8Array
  /** `${buildId}/${signer}`: at most one proof per key per build is kept or relayed */
  key: string
}

export interface DecodeEquivocationProofOptions { now: number; maxFutureSkewMs?: number }

function artifactOf (a: SignedAttestation): string | undefined {
  return a.claim.result.status === 'success' ? a.claim.result.artifact : undefined
}

/**
 * The rule itself, on two decoded (so verified) attestations: one key, one
 * build, one job, two successes naming different artifacts. Throws
 * NotEquivocationError saying which part fails.
 */
export function checkEquivocation (a: SignedAttestation, b: SignedAttestation): { signer: string, buildId: string, jobId: string } {
  const signer = keyHex(a.signer)
  if (keyHex(b.signer) !== signer) throw new NotEquivocationError('the two attestations are signed by different keys')
  if (a.claim.buildId !== b.claim.buildId) throw new NotEquivocationError('the two attestations are of different builds')
  // two jobs of one build are two attempts: different artifacts there say
  // the build is not reproducible (an honest key's finding), not that it lied
  if (a.claim.jobId !== b.claim.jobId) throw new NotEquivocationError('the two attestations answer different jobs (that is a rerun, not equivocation)')
  const x = artifactOf(a)
  const y = artifactOf(b)
  if (x === undefined || y === undefined) throw new NotEquivocationError('only two successes naming different artifacts are equivocation (a failure is not)')
  if (x === y) throw new NotEquivocationError('both attestations name the same artifact')
  return { signer, buildId: a.claim.buildId, jobId: a.claim.jobId }
}

/** canonical order: by attestation id, so a pair has one byte form */
function ordered (a: SignedAttestation, b: SignedAttestation): [SignedAttestation, SignedAttestation] {
  return a.id <= b.id ? [a, b] : [b, a]
}

/** Canonical wire bytes: compact JSON, fixed key order, envelopes ordered by attestation id. */
export function equivocationProofBytes (a: SignedAttestation, b: SignedAttestation): Uint8Array {
  const [x, y] = ordered(a, b)
  const env = (e: Envelope): Envelope => ({ payload: e.payload, payloadType: e.payloadType, signatures: e.signatures.map(s => ({ keyid: s.keyid, sig: s.sig })) })
  return utf8Encode(JSON.stringify({ _type: EQUIVOCATION_PROOF_TYPE, attestations: [env(x.envelope), env(y.envelope)] }))
}

/** A proof from two attestations this node verified; throws NotEquivocationError when they prove nothing. */
export function createEquivocationProof (a: SignedAttestation, b: SignedAttestation): EquivocationProof {
  const { signer, buildId, jobId } = checkEquivocation(a, b)
  return { attestations: ordered(a, b), signer, buildId, jobId, bytes: equivocationProofBytes(a, b), key: `${buildId}/${signer}` }
}

/**
 * Order: size → JSON → schema (`_type`, exactly two envelopes) → each
 * envelope decoded as an attestation (signature included) → the rule
 * (checkEquivocation). Every failure is a ProtocolError: a forged envelope
 * is a SignatureError, a pair that proves nothing a NotEquivocationError;
 * both are REJECTed on gossip.
 */
export function decodeEquivocationProof (bytes: Uint8Array, opts: DecodeEquivocationProofOptions): EquivocationProof {
  return guard(() => {
    if (bytes.length > MAX_EQUIVOCATION_PROOF_BYTES) throw new SizeLimitError(`proof is ${bytes.length} bytes, the limit is ${MAX_EQUIVOCATION_PROOF_BYTES}`)
    const o = expectObject(parseJson(bytes, 'proof'), '', ['_type', 'attestations'])
    // a later version of the proof is for nodes that know it: IGNOREd, not REJECTed
    if (typeof o._type === 'string' && o._type !== EQUIVOCATION_PROOF_TYPE && o._type.startsWith('https://concur.dev/EquivocationProof/')) {
      throw new UnsupportedVersionError(`unsupported proof type ${JSON.stringify(o._type.slice(0, 100))}`)
    }
    expectLiteral(o._type, '_type', EQUIVOCATION_PROOF_TYPE)
    const [x, y] = expectArray(o.attestations, 'attestations', 2, 2)
    // decodeAttestation re-validates an envelope object and caps its size
    const a = decodeAttestation(x as Envelope, opts)
    const b = decodeAttestation(y as Envelope, opts)
    return createEquivocationProof(a, b)
  })
}
