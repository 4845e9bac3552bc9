/**
 * Generates protocol/vectors/*.json. Deterministic: fixed seeds, fixed times,
 * fixed nonces (ed25519 signing is deterministic), so re-running it rewrites
 * identical files; vectors-are-up-to-date.test.ts checks that.
 *
 *   npm exec -- node test/protocol/generate-vectors.ts
 */
import { writeFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import {
  ADVERT_PAYLOAD_TYPE, ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, COMMITMENT_PAYLOAD_TYPE, createAdvert, EQUIVOCATION_PROOF_TYPE, createCommitment, JOB_PAYLOAD_TYPE, RELEASE_PAYLOAD_TYPE, SHARDED_JOB_PAYLOAD_TYPE, SHARD_COUNT, shardOf, base64Decode, base64Encode, clockOffsetFor, createAttestation, owedVariation,
  createClaim, createJobAnnouncement, didFromPublicKey, envelopePayload, signEnvelope, statementOf, utf8Encode
} from '../../protocol/index.ts'
import type { Envelope, TrustPolicyInput } from '../../protocol/index.ts'
import { advertInput, attest, claimFor, fakeRawCid, fakeTreeCid, fixedKey, iso, makeJob, requester, T0 } from './fixtures.ts'

/** Group order of ed25519 (RFC 8032 §5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n

export interface SignatureVector {
  description: string
  publicKey: string
  envelope: Envelope
  valid: boolean
  payloadType: string
  verifyAt: string
  reason?: string
  /** The code our full decoder (for `payloadType`) answers with, when invalid. */
  error?: string
  /** Set where a lax verifier is known to disagree (documented, tested). */
  laxVerifiersAccept?: boolean
}

export interface PaeVector { description: string; source?: string; payloadType: string; payloadUtf8: string; pae: string }

/**
 * A trust-policy vector (PROTOCOL.md §8.1): a policy, attestation envelopes
 * for one buildId (decoded at `verifyAt`), and either the verdict they give
 * (`expect`) or the code loading the policy fails with (`error`).
 */
export interface VerdictVector {
  description: string
  policy: TrustPolicyInput
  buildId: string
  attestations: Envelope[]
  verifyAt: string
  expect?: { status: string; artifact?: string; counted: string[]; operators?: { spanned: string[]; min: number } }
  error?: string
}

/**
 * An equivocation-proof vector (PROTOCOL.md §8.2): the proof's JSON as it
 * travels, and whether decodeEquivocationProof takes it (then the key, build
 * and job it convicts) or the code it refuses it with (a REJECT on gossip).
 */
export interface EquivocationVector {
  description: string
  proof: { _type: string, attestations: Envelope[] }
  verifyAt: string
  valid: boolean
  error?: string
  /** when valid: the did:key proven to equivocate, on which build and job */
  convicts?: { worker: string, buildId: string, jobId: string }
}

/**
 * A commitment vector (PROTOCOL.md §8.3): the envelope as it travels, whether
 * decodeCommitment takes it (or the code it refuses it with), and the
 * artifact whose attestation would open it (`opens`): the digest is
 * sha256 of the §8.3 preimage of these four fields.
 */
export interface CommitmentVector {
  description: string
  envelope: Envelope
  verifyAt: string
  valid: boolean
  error?: string
  opens?: { buildId: string, jobId: string, worker: string, artifact: string, digest: string }
}

const verifyAt = iso(T0 + 5 * 60_000)
const worker = fixedKey('worker-1')
const other = fixedKey('worker-2')

function leBytes (n: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) { out[i] = Number(n & 0xffn); n >>= 8n }
  return out
}
function leNumber (b: Uint8Array): bigint {
  let n = 0n
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!)
  return n
}

/**
 * Equivocation-proof vectors (PROTOCOL.md §8.2): one valid proof, and the
 * three "proofs" that must never make a requester stop counting a key: a
 * forged envelope, two statements of one artifact, and two answers to two
 * jobs of one build (a rerun of a build that is not reproducible).
 */
function equivocationVectors (): Record<string, EquivocationVector> {
  const liar = fixedKey('equivocator-1')
  const stranger = fixedKey('forger-1')
  const jobId = fakeRawCid('job-1')
  const x = attest(liar, { jobId, artifact: fakeTreeCid('artifact-A'), finishedAt: T0 + 120_000 })
  const y = attest(liar, { jobId, artifact: fakeTreeCid('artifact-B'), finishedAt: T0 + 121_000 })
  const xAgain = attest(liar, { jobId, artifact: fakeTreeCid('artifact-A'), finishedAt: T0 + 122_000 })
  const yRerun = attest(liar, { jobId: fakeRawCid('job-2'), artifact: fakeTreeCid('artifact-B'), finishedAt: T0 + 123_000 })
  // the conflicting statement as the key would have written it, signed by someone else
  const forged: Envelope = { ...y.envelope, signatures: [{ keyid: liar.did, sig: signEnvelope(ATTESTATION_PAYLOAD_TYPE, envelopePayload(y.envelope), stranger).signatures[0]!.sig }] }
  const proof = (a: Envelope, b: Envelope): EquivocationVector['proof'] => ({ _type: EQUIVOCATION_PROOF_TYPE, attestations: [a, b] })
  const ordered = x.id < y.id ? [x.envelope, y.envelope] as const : [y.envelope, x.envelope] as const
  return {
    'equivocation-proof-valid': {
      description: 'one key, one build, one job, two successes naming different artifacts: the key counts for nothing on this build',
      proof: proof(...ordered),
      verifyAt,
      valid: true,
      convicts: { worker: liar.did, buildId: x.claim.buildId, jobId }
    },
    'equivocation-proof-forged': {
      description: 'the second envelope names the key but another key signed it: REJECT, and the named key still counts',
      proof: proof(x.envelope, forged),
      verifyAt,
      valid: false,
      error: 'ERR_BAD_SIGNATURE'
    },
    'equivocation-proof-same-artifact': {
      description: 'two genuine statements of one artifact for one job: no conflict, REJECT',
      proof: proof(x.envelope, xAgain.envelope),
      verifyAt,
      valid: false,
      error: 'ERR_NOT_EQUIVOCATION'
    },
    'equivocation-proof-two-jobs': {
      description: 'different artifacts for two jobs of one build: a rerun that is not reproducible, not equivocation, REJECT',
      proof: proof(x.envelope, yRerun.envelope),
      verifyAt,
      valid: false,
      error: 'ERR_NOT_EQUIVOCATION'
    }
  }
}

/**
 * Operator vectors (PROTOCOL.md §8.1): three keys run by operator "acme",
 * one by "bob", one unnamed (its own operator); k = 2, m = 2; every key
 * attests the same CID for the same job.
 */
/**
 * Commitment vectors (PROTOCOL.md §8.3): a valid commitment (with the
 * artifact that opens it), one signed by another key than the worker it
 * names, one of a later version (IGNOREd by this version), and one dated
 * beyond the skew allowed.
 */
function commitmentVectors (): Record<string, CommitmentVector> {
  const job = makeJob()
  const artifact = fakeTreeCid('hello-artifact')
  const at = T0 + 60_000
  const valid = createCommitment({ buildId: job.job.buildId, jobId: job.jobId, workerPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', issuedAt: iso(at), artifact }, worker)
  const payload = JSON.parse(new TextDecoder().decode(envelopePayload(valid.envelope))) as Record<string, unknown>
  const signed = (p: Record<string, unknown>, key = worker): Envelope => signEnvelope(COMMITMENT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(p)), key)
  return {
    'commitment-valid': {
      description: 'worker-1 commits to the artifact it built for the job; its attestation of that artifact opens it',
      envelope: valid.envelope,
      verifyAt,
      valid: true,
      opens: { buildId: job.job.buildId, jobId: job.jobId, worker: worker.did, artifact, digest: valid.commitment.digest }
    },
    'commitment-forged': {
      description: 'names worker-1 but is signed by worker-2: REJECT (ERR_BAD_SIGNATURE)',
      envelope: signed(payload, other),
      verifyAt,
      valid: false,
      error: 'ERR_BAD_SIGNATURE'
    },
    'commitment-later-version': {
      description: 'Commitment/v2: a later version, IGNOREd by a v1.1 node (ERR_UNSUPPORTED_VERSION)',
      envelope: signed({ ...payload, _type: 'https://concur.dev/Commitment/v2' }),
      verifyAt,
      valid: false,
      error: 'ERR_UNSUPPORTED_VERSION'
    },
    'commitment-far-future': {
      description: 'issued a day after verifyAt: REJECT (ERR_FUTURE)',
      envelope: signed({ ...payload, issuedAt: iso(Date.parse(verifyAt) + 86_400_000) }),
      verifyAt,
      valid: false,
      error: 'ERR_FUTURE'
    }
  }
}

function verdictVectors (): Record<string, VerdictVector> {
  const job = makeJob()
  const acme = [1, 2, 3].map(i => fixedKey(`acme-${i}`))
  const bob = fixedKey('bob-1')
  const loner = fixedKey('loner-1')
  const artifact = fakeTreeCid('artifact-A')
  const said = (k: ReturnType<typeof fixedKey>): Envelope => attest(k, { jobId: job.jobId, artifact }).envelope
  const policy: TrustPolicyInput = {
    trusted: [...acme, bob, loner].map(k => k.did),
    threshold: 2,
    operators: { acme: acme.map(k => k.did), bob: [bob.did] },
    minOperators: 2
  }
  const sorted = (dids: string[]): string[] => [...dids].sort()
  const v = (x: Omit<VerdictVector, 'verifyAt' | 'buildId'>): VerdictVector => ({ ...x, buildId: job.job.buildId, verifyAt })
  return {
    'operators-three-keys-of-one-operator-provisional': v({
      description: 'k = 2, minOperators = 2: all three keys of operator acme attest one CID. Three agreeing keys, one operator: provisional, not accepted.',
      policy,
      attestations: acme.map(said),
      expect: { status: 'provisional', artifact, counted: sorted(acme.map(k => k.did)), operators: { spanned: ['acme'], min: 2 } }
    }),
    'operators-two-operators-accepted': v({
      description: 'The same three keys of acme and one key of bob: the agreeing keys span 2 operators: accepted.',
      policy,
      attestations: [...acme.map(said), said(bob)],
      expect: { status: 'accepted', artifact, counted: sorted([...acme, bob].map(k => k.did)), operators: { spanned: ['acme', 'bob'], min: 2 } }
    }),
    'operators-unnamed-key-is-its-own-operator-accepted': v({
      description: 'One key of acme and a key no operator names: the unnamed key is an operator of its own (named by its did:key): 2 operators, accepted.',
      policy,
      attestations: [said(acme[0]!), said(loner)],
      expect: { status: 'accepted', artifact, counted: sorted([acme[0]!.did, loner.did]), operators: { spanned: sorted(['acme', loner.did]), min: 2 } }
    }),
    'operators-unmeetable-policy-refused': v({
      description: 'Every trusted key is acme\'s or bob\'s, and minOperators is 3: no agreement can ever span 3 operators, so the policy is refused when loaded.',
      policy: { trusted: [...acme, bob].map(k => k.did), threshold: 3, operators: { acme: acme.map(k => k.did), bob: [bob.did] }, minOperators: 3 },
      attestations: [],
      error: 'ERR_POLICY'
    })
  }
}

export function buildVectors (): { signature: Record<string, SignatureVector>, pae: Record<string, PaeVector>, verdict: Record<string, VerdictVector>, equivocation: Record<string, EquivocationVector>, commitment: Record<string, CommitmentVector> } {
  const job = makeJob()
  // the same job naming its builders (PROTOCOL.md §5.1): only these keys' claims take its replica slots
  const jobWithBuilders = makeJob({ builders: [worker.did, other.did] })
  // the same job asking its replicas to vary the clock (PROTOCOL.md §5.1): same definition, same buildId
  const { definition, requester: did, requesterPeerId, replicas, resources, createdAt, expiresAt, nonce } = job.job
  // the same job, sharded (PROTOCOL.md §6.1): version 2, `shards: 16` last; same buildId, so the same shard
  const jobSharded = createJobAnnouncement({ definition, requester: did, ...(requesterPeerId !== undefined ? { requesterPeerId } : {}), replicas, resources, createdAt, expiresAt, nonce, shards: SHARD_COUNT }, requester)
  const jobVaryClock = createJobAnnouncement({ definition, requester: did, ...(requesterPeerId !== undefined ? { requesterPeerId } : {}), replicas, vary: ['clock'], resources, createdAt, expiresAt, nonce }, requester)
  // worker-1's attestation of that job, recording the clock offset it derived (PROTOCOL.md §5.2)
  const varied = createAttestation({ ...claimFor(worker, { jobId: jobVaryClock.jobId }), variation: { clockOffsetSeconds: clockOffsetFor(worker.did, jobVaryClock.jobId) } }, worker)
  // the same job asking for every variation, and worker-1's attestation of it, recording
  // what it owed: owedVariation(vary, worker-1 did, jobId, its parallelism 2)
  const jobVaryAll = createJobAnnouncement({ definition, requester: did, ...(requesterPeerId !== undefined ? { requesterPeerId } : {}), replicas, vary: ['clock', 'cpus', 'hostname', 'timezone'], resources, createdAt, expiresAt, nonce }, requester)
  const allClaim = claimFor(worker, { jobId: jobVaryAll.jobId })
  const variedAll = createAttestation({ ...allClaim, variation: owedVariation(jobVaryAll.job.vary, worker.did, jobVaryAll.jobId, allClaim.parallelism)! }, worker)
  const success = attest(worker, { jobId: job.jobId })
  // the same build by the same worker, recording its host's toolchain (buildType v2)
  const withHost = createAttestation({
    ...claimFor(worker, { jobId: job.jobId }),
    host: { os: 'Debian GNU/Linux 12 (bookworm)', packages: [{ name: 'binutils', version: '2.40-2' }, { name: 'gcc', version: '4:12.2.0-3' }, { name: 'libc6', version: '2.36-9+deb12u14' }, { name: 'make', version: '4.3-4.1' }] }
  }, worker)
  const failure = attest(worker, { jobId: job.jobId, failure: { exitCode: 2, reason: 'make: *** [all] Error 2' } })
  const failureNoLog = attest(other, { jobId: job.jobId, failure: { exitCode: null, reason: 'wall-clock limit reached (600 s): killed' }, log: null })
  // worker-1's 30 s lease on the job issued at `at`, with seq `seq`
  const leaseOn = (at: number, seq: number): Parameters<typeof createClaim>[0] => ({
    jobId: job.jobId,
    buildId: job.job.buildId,
    worker: worker.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    issuedAt: iso(T0 + at),
    leaseUntil: iso(T0 + at + 30_000),
    seq
  })
  const claim = createClaim(leaseOn(290_000, 0), worker)
  // the same worker's release of the job (a higher seq): it declines it, and says why
  const release = createClaim({ ...leaseOn(291_000, 1), release: { kind: 'declined', reason: 'asks for more than this volunteer allows: cpus 2 > 1' } }, worker)

  // Tampered: the payload says 9 replicas, the signature was made over 2.
  const tamperedPayload = utf8Encode(new TextDecoder().decode(envelopePayload(job.envelope)).replace('"replicas":2', '"replicas":9'))
  const tampered: Envelope = { ...job.envelope, payload: base64Encode(tamperedPayload) }

  // Wrong key: the statement names worker-1 as builder, worker-2 signed it.
  // worker-1's capability advert (PROTOCOL.md §5.4), and the same advert signed by worker-2
  const advert = createAdvert(advertInput(worker, T0, 30 * 60_000, { platforms: ['linux-x64'] }), worker)
  const forgedAdvert = signEnvelope(ADVERT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(advert.advert)), other)
  const wrongKey = signEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(statementOf(claimFor(worker, { jobId: job.jobId })))), other)

  // payloadType substitution: signed as a job, relabelled as an in-toto statement.
  const relabelled: Envelope = { ...job.envelope, payloadType: ATTESTATION_PAYLOAD_TYPE }
  // Correctly signed, but under the claim payloadType: valid DSSE, wrong type for a job.
  const signedAsClaim = signEnvelope(CLAIM_PAYLOAD_TYPE, envelopePayload(job.envelope), requester)

  // Non-canonical S: S + L verifies under the textbook equation but RFC 8032 requires S < L.
  const sig = base64Decode(job.envelope.signatures[0]!.sig)
  const s = leNumber(sig.subarray(32))
  const malleated = new Uint8Array(64)
  malleated.set(sig.subarray(0, 32), 0)
  malleated.set(leBytes(s + L), 32)
  const nonCanonicalS: Envelope = { ...job.envelope, signatures: [{ keyid: requester.did, sig: base64Encode(malleated) }] }

  // Non-canonical base64: the last symbol's unused bits set; lax decoders read the same 64 bytes.
  const sigText = job.envelope.signatures[0]!.sig
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const lastSym = sigText[sigText.length - 3]!
  const bumped = B64[B64.indexOf(lastSym) | 1]!
  const nonCanonicalB64: Envelope = { ...job.envelope, signatures: [{ keyid: requester.did, sig: sigText.slice(0, -3) + bumped + '==' }] }

  // Small-order key: A = identity, R = identity, S = 0 satisfies [S]B = R + [k]A for EVERY message.
  const identity = new Uint8Array(32); identity[0] = 1
  const smallDid = didFromPublicKey(identity)
  const smallPayload = utf8Encode(new TextDecoder().decode(envelopePayload(job.envelope)).replaceAll(requester.did, smallDid))
  const smallSig = new Uint8Array(64); smallSig[0] = 1
  const smallOrder: Envelope = { payload: base64Encode(smallPayload), payloadType: JOB_PAYLOAD_TYPE, signatures: [{ keyid: smallDid, sig: base64Encode(smallSig) }] }

  const v = (x: Omit<SignatureVector, 'verifyAt'>): SignatureVector => ({ ...x, verifyAt })
  const signature: Record<string, SignatureVector> = {
    'job-announcement-valid': v({ description: 'A job announcement signed by its requester.', publicKey: requester.did, envelope: job.envelope, valid: true, payloadType: JOB_PAYLOAD_TYPE }),
    'job-announcement-builders-valid': v({ description: 'A job announcement naming its builders (worker-1, worker-2, sorted): only their claims take its replica slots.', publicKey: requester.did, envelope: jobWithBuilders.envelope, valid: true, payloadType: JOB_PAYLOAD_TYPE }),
    'job-announcement-sharded-valid': v({ description: `A sharded job announcement (version 2, shards: 16, PROTOCOL.md §6.1): the fields of the plain job and "shards" last; it travels on shard ${shardOf(jobSharded.job.buildId).toString(16)} = the first hex digit of sha256(buildId).`, publicKey: requester.did, envelope: jobSharded.envelope, valid: true, payloadType: SHARDED_JOB_PAYLOAD_TYPE }),
    'job-announcement-vary-clock-valid': v({ description: 'A job announcement asking its replicas to vary the clock (vary: ["clock"]); its buildId is that of the same definition without it.', publicKey: requester.did, envelope: jobVaryClock.envelope, valid: true, payloadType: JOB_PAYLOAD_TYPE }),
    'attestation-clock-varied-valid': v({ description: 'worker-1\'s attestation of the vary-clock job, recording the clock offset it built with: clockOffsetSeconds = clockOffsetFor(worker-1 did, jobId).', publicKey: worker.did, envelope: varied.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'job-announcement-vary-all-valid': v({ description: 'A job announcement asking its replicas to vary the clock, the CPU count, the hostname and the timezone (vary: ["clock", "cpus", "hostname", "timezone"], sorted); same buildId.', publicKey: requester.did, envelope: jobVaryAll.envelope, valid: true, payloadType: JOB_PAYLOAD_TYPE }),
    'attestation-all-varied-valid': v({ description: 'worker-1\'s attestation of the vary-all job, recording what it owed: clockOffsetSeconds, cpus (1..its parallelism 2), hostname (concur-<8 hex>) and timezone, each derived from worker-1\'s did and the jobId (PROTOCOL.md §5.1).', publicKey: worker.did, envelope: variedAll.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'attestation-success-valid': v({ description: 'An in-toto/SLSA provenance attestation of a successful build, signed by the worker (builder.id).', publicKey: worker.did, envelope: success.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'attestation-host-toolchain-valid': v({ description: 'The same successful build with the host\'s toolchain recorded: buildType https://concur.dev/build/v2, internalParameters.host (os, packages sorted by name).', publicKey: worker.did, envelope: withHost.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'attestation-failure-valid': v({ description: 'An attestation of a failed build (exit code 2); its subject is the build log.', publicKey: worker.did, envelope: failure.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'attestation-failure-no-log-valid': v({ description: 'An attestation of a build killed at the wall-clock limit, without a log; its subject is the job payload.', publicKey: other.did, envelope: failureNoLog.envelope, valid: true, payloadType: ATTESTATION_PAYLOAD_TYPE }),
    'claim-valid': v({ description: 'A 30 s lease claim on the job by worker-1.', publicKey: worker.did, envelope: claim.envelope, valid: true, payloadType: CLAIM_PAYLOAD_TYPE }),
    'claim-release-valid': v({ description: 'worker-1 releases the job (seq 1): it declines it, with the reason. A release is a claim of version 2 and takes no replica slot.', publicKey: worker.did, envelope: release.envelope, valid: true, payloadType: RELEASE_PAYLOAD_TYPE }),
    'tampered-payload': v({ description: 'The job payload was changed after signing (replicas 2 -> 9).', publicKey: requester.did, envelope: tampered, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'signature does not cover the modified payload', error: 'ERR_BAD_SIGNATURE' }),
    'advert-valid': v({ description: 'worker-1\'s capability advert (PROTOCOL.md §5.4): host and rootfs builds for linux-x64, its tier and limits, shards 0-7, good for 30 minutes.', publicKey: worker.did, envelope: advert.envelope, valid: true, payloadType: ADVERT_PAYLOAD_TYPE }),
    'advert-forged': v({ description: 'The same advert, naming worker-1, signed by worker-2.', publicKey: worker.did, envelope: forgedAdvert, valid: false, payloadType: ADVERT_PAYLOAD_TYPE, reason: 'signature is by another key than the worker it names', error: 'ERR_BAD_SIGNATURE' }),
    'wrong-key': v({ description: 'An attestation naming worker-1 as builder but signed by worker-2.', publicKey: worker.did, envelope: wrongKey, valid: false, payloadType: ATTESTATION_PAYLOAD_TYPE, reason: 'signature is by another key than the builder', error: 'ERR_BAD_SIGNATURE' }),
    'wrong-payload-type-relabelled': v({ description: 'A job envelope whose payloadType was rewritten to the in-toto type after signing.', publicKey: requester.did, envelope: relabelled, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'PAE binds the payloadType: the signature does not verify for the new type, and it is not the job type', error: 'ERR_PAYLOAD_TYPE' }),
    'wrong-payload-type-signed': v({ description: 'A job payload correctly signed, but under the claim payloadType.', publicKey: requester.did, envelope: signedAsClaim, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'a valid DSSE signature for another payloadType is not a valid job', error: 'ERR_PAYLOAD_TYPE' }),
    'non-canonical-signature': v({ description: 'The valid job signature with S replaced by S + L (same value mod L).', publicKey: requester.did, envelope: nonCanonicalS, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'RFC 8032 requires 0 <= S < L (signature malleability)', error: 'ERR_BAD_SIGNATURE' }),
    'non-canonical-base64-signature': v({ description: 'The valid job signature, base64 text with non-zero unused trailing bits (lax decoders read the same 64 bytes).', publicKey: requester.did, envelope: nonCanonicalB64, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'only canonical base64 is accepted: one text per signature', error: 'ERR_MALFORMED', laxVerifiersAccept: true }),
    'small-order-key': v({ description: 'Requester key = the identity point; R = identity, S = 0 "verifies" for any message under the cofactorless equation.', publicKey: smallDid, envelope: smallOrder, valid: false, payloadType: JOB_PAYLOAD_TYPE, reason: 'small-order public keys are refused', error: 'ERR_SMALL_ORDER_KEY' })
  }
  const pae: Record<string, PaeVector> = {
    'dsse-spec-hello-world': {
      description: 'The example from the DSSE protocol specification.',
      source: 'https://github.com/secure-systems-lab/dsse/blob/master/protocol.md',
      payloadType: 'http://example.com/HelloWorld',
      payloadUtf8: 'hello world',
      pae: 'DSSEv1 29 http://example.com/HelloWorld 11 hello world'
    },
    'empty-type-and-payload': { description: 'Empty type and body: lengths are "0", separators remain.', payloadType: '', payloadUtf8: '', pae: 'DSSEv1 0  0 ' },
    'utf8-lengths-are-bytes': { description: 'Lengths count UTF-8 bytes, not characters (é is 2 bytes, € is 3).', payloadType: 'tÿpé', payloadUtf8: '€ 1', pae: 'DSSEv1 6 tÿpé 5 € 1' }
  }
  return { signature, pae, verdict: verdictVectors(), equivocation: equivocationVectors(), commitment: commitmentVectors() }
}

export const VECTORS_DIR = resolve(fileURLToPath(import.meta.url), '../../../protocol/vectors')

export function vectorFileText (x: unknown): string {
  return JSON.stringify(x, null, 2) + '\n'
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { signature, pae, verdict, equivocation, commitment } = buildVectors()
  mkdirSync(resolve(VECTORS_DIR, 'pae'), { recursive: true })
  mkdirSync(resolve(VECTORS_DIR, 'verdict'), { recursive: true })
  mkdirSync(resolve(VECTORS_DIR, 'equivocation'), { recursive: true })
  mkdirSync(resolve(VECTORS_DIR, 'commitment'), { recursive: true })
  for (const [name, vec] of Object.entries(signature)) writeFileSync(resolve(VECTORS_DIR, `${name}.json`), vectorFileText(vec))
  for (const [name, vec] of Object.entries(pae)) writeFileSync(resolve(VECTORS_DIR, 'pae', `${name}.json`), vectorFileText(vec))
  for (const [name, vec] of Object.entries(verdict)) writeFileSync(resolve(VECTORS_DIR, 'verdict', `${name}.json`), vectorFileText(vec))
  for (const [name, vec] of Object.entries(equivocation)) writeFileSync(resolve(VECTORS_DIR, 'equivocation', `${name}.json`), vectorFileText(vec))
  for (const [name, vec] of Object.entries(commitment)) writeFileSync(resolve(VECTORS_DIR, 'commitment', `${name}.json`), vectorFileText(vec))
  console.log(`wrote ${Object.keys(signature).length} signature vectors, ${Object.keys(pae).length} PAE vectors, ${Object.keys(verdict).length} verdict, ${Object.keys(equivocation).length} equivocation-proof and ${Object.keys(commitment).length} commitment vectors to ${VECTORS_DIR}`)
}
