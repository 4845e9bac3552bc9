/**
 * The simulator's messages: real signed envelopes made by protocol/ with real
 * keys, each run once through the real validator (what a node runs on a
 * gossiped message). A real node validates each distinct message once, and
 * the same bytes give the same answer on every node, so the simulated nodes
 * share that one run; what it costs a node is counted from its measured time
 * (cpuMsPerMessage) times the distinct messages the node receives.
 *
 * Two kinds protocol/ does not have yet are modelled for their size only:
 * a v1.1 commitment and a v1.1 worker advert, signed DSSE envelopes of a
 * plausible payload. A v1.1 claim's stated expected duration is modelled as
 * the bytes its field would add to a real v1 claim.
 */
import { createPrivateKey, createPublicKey, sign as opensslSign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { sha256 } from '@noble/hashes/sha2.js'
import {
  ATTESTATIONS_TOPIC, ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, CLAIM_TYPE, CLAIMS_TOPIC, JOBS_TOPIC, MAX_LEASE_MS, base64Encode,
  createJobAnnouncement, didFromPublicKey, envelopeBytes, hexEncode, pae, parseEnvelope, statementOf, utf8Encode, validateAttestationClaim,
  validateClaim, validateTopicMessage, verifyEnvelopeSignature
} from '../../../protocol/index.ts'
import type { Claim, DecodedMessage, Envelope, SignedJob, SigningKey } from '../../../protocol/index.ts'
import { T0, claimFor, definition, fakeTreeCid, iso } from '../../protocol/fixtures.ts'

export { iso }

export const PEER_ID = '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3'
/** modelled v1.1 payload types (no such object in protocol/ yet) */
export const COMMITMENT_PAYLOAD_TYPE = 'application/vnd.concur.commitment+json; version=1'
export const ADVERT_PAYLOAD_TYPE = 'application/vnd.concur.advert+json; version=1'
/** `,"expectedMs":600000`: what stating a build's expected duration adds to a claim */
export const EXPECTED_FIELD_BYTES = 20

// DER PKCS#8 header of a raw 32-byte ed25519 seed (RFC 8410)
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')
const keys = new Map<number, { key: SigningKey, secret: KeyObject }>()

/**
 * Node i's key, the same in every run (its seed derived from i). Made and
 * used through OpenSSL: ed25519 is deterministic, so the key and every
 * signature are the bytes protocol/'s noble code makes (signingKeyFromSeed,
 * signEnvelope; the simulator's test checks it), at a twentieth of the time
 * (noble signs in 0.75 ms here, and a 10,000-node run signs ~10^5 messages).
 */
function nodeKeyPair (i: number): { key: SigningKey, secret: KeyObject } {
  let k = keys.get(i)
  if (k === undefined) {
    const seed = sha256(utf8Encode(`concur simulator node ${i}`))
    const secret = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
    const publicKey = new Uint8Array(createPublicKey(secret).export({ format: 'der', type: 'spki' }).subarray(-32))
    k = { key: { seed, publicKey, did: didFromPublicKey(publicKey) }, secret }
    keys.set(i, k)
  }
  return k
}

export function nodeKey (i: number): SigningKey {
  return nodeKeyPair(i).key
}

/** protocol's signEnvelope, signed by OpenSSL (see nodeKeyPair) */
export function signedEnvelope (payloadType: string, payload: Uint8Array, node: number): Envelope {
  const { key, secret } = nodeKeyPair(node)
  const sig = opensslSign(null, pae(payloadType, payload), secret)
  return { payload: base64Encode(payload), payloadType, signatures: [{ keyid: key.did, sig: base64Encode(sig) }] }
}

/** virtual ms → wall-clock ms on the wire (the simulated network starts at T0) */
export const wall = (t: number): number => T0 + Math.round(t)

export type Kind = 'job' | 'claim' | 'attestation' | 'commitment' | 'advert'

/** the real validator's time per kind, over every distinct message of the run */
export class Validation {
  readonly ms = new Map<Kind, { n: number, ms: number }>()

  /**
   * Validates `bytes` as a node receiving them would, and returns what the
   * validator decoded (the requester's verdict runs over these). A refusal
   * is a bug of the simulator.
   */
  check (kind: Kind, bytes: Uint8Array, t: number, signer?: SigningKey): DecodedMessage | undefined {
    const started = performance.now()
    let decoded: DecodedMessage | undefined
    if (kind === 'commitment' || kind === 'advert') {
      const env = parseEnvelope(bytes)
      verifyEnvelopeSignature(env, signer!.publicKey)
    } else {
      const topic = kind === 'job' ? JOBS_TOPIC : kind === 'claim' ? CLAIMS_TOPIC : ATTESTATIONS_TOPIC
      const v = validateTopicMessage(topic, bytes, { now: wall(t) })
      if (v.action !== 'accept') throw new Error(`the simulator made a ${kind} the validator refuses: ${v.error.message}`)
      decoded = v.message
    }
    const s = this.ms.get(kind) ?? { n: 0, ms: 0 }
    s.n++
    s.ms += performance.now() - started
    this.ms.set(kind, s)
    return decoded
  }

  /** mean validation ms per distinct message of these kinds */
  cpuMsPerMessage (): number {
    let n = 0
    let ms = 0
    for (const s of this.ms.values()) { n += s.n; ms += s.ms }
    return n === 0 ? 0 : ms / n
  }
}

export function jobMessage (requester: SigningKey, index: number, t: number, replicas: number, builders: string[], ttlMs: number): SignedJob {
  return createJobAnnouncement({
    // one definition per job: its own SOURCE_DATE_EPOCH, so its own buildId (and shard)
    definition: { ...definition, env: { ...definition.env, SOURCE_DATE_EPOCH: String(1_700_000_000 + index) } },
    requester: requester.did,
    requesterPeerId: PEER_ID,
    replicas,
    builders,
    resources: { memoryBytes: 2 ** 31, cpus: 2, diskBytes: 2 ** 32, wallSeconds: 3600, processes: 512 },
    createdAt: iso(wall(t)),
    expiresAt: iso(wall(t) + ttlMs),
    nonce: index.toString(16).padStart(32, '0')
  }, requester)
}

/**
 * A claim with a lease of `leaseMs`. A v1 decoder caps leases at
 * MAX_LEASE_MS: a longer (v1.1, duration-scaled) lease is signed with the
 * cap, same bytes, and the Claim returned for counting carries the full lease.
 */
export function claimMessage (node: number, job: SignedJob, t: number, leaseMs: number, seq: number): { claim: Claim, bytes: Uint8Array } {
  // createClaim's steps (validate, then sign the JSON), signed by OpenSSL
  const claim = validateClaim({
    _type: CLAIM_TYPE,
    jobId: job.jobId,
    buildId: job.job.buildId,
    worker: nodeKey(node).did,
    workerPeerId: PEER_ID,
    issuedAt: iso(wall(t)),
    leaseUntil: iso(wall(t) + Math.min(leaseMs, MAX_LEASE_MS)),
    seq
  })
  const bytes = envelopeBytes(signedEnvelope(CLAIM_PAYLOAD_TYPE, utf8Encode(JSON.stringify(claim)), node))
  return { claim: { ...claim, leaseUntil: iso(wall(t) + leaseMs) }, bytes }
}

export function artifactOf (job: SignedJob): string {
  return fakeTreeCid(`artifact of ${job.jobId}`)
}

/** createAttestation's steps (validate, the statement, sign its JSON), signed by OpenSSL; the wire bytes */
export function attestationMessage (node: number, job: SignedJob, startedAt: number, finishedAt: number): Uint8Array {
  const claim = validateAttestationClaim(claimFor(nodeKey(node), {
    def: job.job.definition,
    jobId: job.jobId,
    artifact: artifactOf(job),
    startedAt: wall(startedAt),
    finishedAt: wall(finishedAt)
  }))
  return envelopeBytes(signedEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(statementOf(claim))), node))
}

/** modelled: a commitment to (artifact CID ‖ key ‖ nonce), bound to the job and its buildId */
export function commitmentMessage (node: number, job: SignedJob, t: number): Uint8Array {
  const key = nodeKey(node)
  const nonce = hexEncode(sha256(utf8Encode(`${key.did} ${job.jobId} nonce`)))
  const payload = {
    _type: 'https://concur.dev/Commitment/v1',
    buildId: job.job.buildId,
    jobId: job.jobId,
    worker: key.did,
    workerPeerId: PEER_ID,
    commitment: hexEncode(sha256(utf8Encode(`${artifactOf(job)}\n${key.did}\n${nonce}`))),
    issuedAt: iso(wall(t))
  }
  return envelopeBytes(signedEnvelope(COMMITMENT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(payload)), node))
}

/** modelled: what a worker offers (environments, tier, limits, whom it serves, its shards) */
export function advertMessage (node: number, shards: readonly number[], t: number): Uint8Array {
  const key = nodeKey(node)
  const payload = {
    _type: 'https://concur.dev/WorkerAdvert/v1',
    worker: key.did,
    workerPeerId: PEER_ID,
    environments: [fakeTreeCid('debian-12-rootfs'), fakeTreeCid('alpine-3.20-rootfs')],
    platforms: ['linux/amd64'],
    sandboxTier: 'namespaces+cgroups',
    limits: { memoryBytes: 2 ** 33, cpus: 4, diskBytes: 2 ** 35, wallSeconds: 3600, processes: 1024, maxConcurrent: 1 },
    serves: 'anyone',
    shards: [...shards].sort((a, b) => a - b),
    issuedAt: iso(wall(t)),
    expiresAt: iso(wall(t) + 30 * 60_000)
  }
  return envelopeBytes(signedEnvelope(ADVERT_PAYLOAD_TYPE, utf8Encode(JSON.stringify(payload)), node))
}
