/**
 * A scripted adversary: a misbehaving peer that speaks the real wire protocol.
 *
 * It is a real `concur daemon` process on loopback (so it joins the mesh like
 * anyone can), but every message it sends is made here, in the test process,
 * with its OWN keys through the protocol's create* functions, and pushed out
 * through that daemon's POST /v1/gossip/publish-raw, which skips the daemon's
 * own validation (served only because it is started with --enable-test-routes). So the honest nodes see exactly what a hostile
 * implementation could put on the wire; nothing is faked on their side.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  ATTESTATIONS_TOPIC, CLAIMS_TOPIC, CODEC_DAG_PB, COMMITMENTS_TOPIC, EQUIVOCATIONS_TOPIC, createCommitment, JOBS_TOPIC, MAX_MESSAGE_BYTES, base64Encode, cidOf, createAttestation,
  createClaim, createJobAnnouncement, decodeAttestation, decodeJobAnnouncement, envelopeBytes, generateSigningKey, signEnvelope,
  utf8Encode, ATTESTATION_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE
} from '../../protocol/index.ts'
import type { BuildResult, Envelope, SignedAttestation, SignedJob, SigningKey } from '../../protocol/index.ts'
import { api, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import type { Node } from '../helpers/network.ts'
import { treeCid } from '../helpers/fixtures.ts'
import type { EventsResponse, PolicyResponse, RequestView } from '../../node/api/types.ts'

export { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, COMMITMENTS_TOPIC, EQUIVOCATIONS_TOPIC, JOBS_TOPIC }
export type Topic = typeof JOBS_TOPIC | typeof ATTESTATIONS_TOPIC | typeof CLAIMS_TOPIC | typeof EQUIVOCATIONS_TOPIC | typeof COMMITMENTS_TOPIC

/** a CID no honest build produced: a dag-pb block of random-looking bytes */
export function wrongCid (label: string): string {
  return cidOf(CODEC_DAG_PB, utf8Encode(`adversary artifact: ${label}: ${Math.random()}`)).toString()
}

export interface AttestOptions {
  key: SigningKey
  artifact?: string
  /** a failure attestation instead of a success */
  failure?: string
  startedAt?: number
  finishedAt?: number
  /** claimed worker (defaults to the key's own did; anything else is a forgery) */
  worker?: string
  log?: string | null
}

export interface Adversary {
  node: Node
  /** the adversary's own (untrusted) key */
  key: SigningKey
  /** push bytes onto a topic, unvalidated; resolves to how many peers it went to */
  publishRaw (topic: Topic, bytes: Uint8Array): Promise<number>
  /** wait until the adversary's daemon heard `jobId` on gossip, and decode it */
  heardJob (jobId: string): Promise<SignedJob>
  /** a correctly signed attestation by `opts.key` of whatever it likes */
  attest (job: SignedJob, opts: AttestOptions): SignedAttestation
  /** attestation claiming to be from `victimDid`, signed by the adversary's key (a forgery) */
  forge (job: SignedJob, victimDid: string, artifact: string): Uint8Array
  /** `n` freshly generated keys, each attesting `artifact` */
  sybils (job: SignedJob, artifact: string, n: number): SignedAttestation[]
  /** one key, two different artifacts, one buildId */
  equivocate (job: SignedJob, key: SigningKey, artifacts: [string, string]): [SignedAttestation, SignedAttestation]
  /** the same statement bytes re-wrapped with another keyid (and JSON spacing): new gossip id, same attestation */
  rewrap (signed: { envelope: Envelope }, keyid: string): Uint8Array
  /** a job of its own that was valid once and has expired since */
  expiredJob (definitionOf: SignedJob): SignedJob
  /** messages dated far in the future */
  farFuture (job: SignedJob): { job: Uint8Array, attestation: Uint8Array, claim: Uint8Array }
  /** a claim whose lease ended already */
  expiredClaim (job: SignedJob): Uint8Array
  /** a live replica claim by `key` (a 30 s lease), as a builder that started would publish */
  claim (job: SignedJob, key: SigningKey): Uint8Array
  /** `key`'s commitment to `artifact` for `job` (PROTOCOL.md §8.3) */
  commit (job: SignedJob, key: SigningKey, artifact: string): Uint8Array
  /** garbage of every shape; `salt` makes the bytes (so the gossip message ids) differ between calls */
  junk (sample: Uint8Array, salt?: number): Array<{ name: string, bytes: Uint8Array }>
  /** the lazy copier: wait for an honest attestation of `job` and attest the same CID without building */
  lazyCopy (job: SignedJob, key: SigningKey, from: (a: SignedAttestation) => boolean): Promise<SignedAttestation>
  /** attestations the adversary's daemon holds for a buildId */
  attestationsHeld (buildId: string): Promise<SignedAttestation[]>
}

const iso = (ms: number): string => new Date(ms).toISOString()

export async function startAdversary (bootAddr: string, extraHome?: (home: string) => Promise<void>): Promise<Adversary> {
  const home = await tempDir('concur-adversary-')
  await extraHome?.(home)
  const proc = startConcur(['daemon', '--enable-test-routes', '--bootstrap', bootAddr], { home })
  const r = await proc.ready
  const node: Node = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home }
  const key = generateSigningKey()

  const attest = (job: SignedJob, opts: AttestOptions): SignedAttestation => {
    const def = job.job.definition
    const finished = opts.finishedAt ?? Date.now()
    const result: BuildResult = opts.failure != null
      ? { status: 'failure', exitCode: 1, reason: opts.failure }
      : { status: 'success', artifact: opts.artifact ?? wrongCid('default'), exitCode: 0 }
    const claim = {
      buildId: job.job.buildId,
      jobId: job.jobId,
      source: def.source,
      environment: def.environment,
      definition: def,
      worker: opts.worker ?? opts.key.did,
      workerPeerId: node.peerId,
      sandboxTier: 'namespaces+cgroups' as const,
      parallelism: 1,
      startedAt: iso(opts.startedAt ?? finished - 1000),
      finishedAt: iso(finished),
      result,
      log: opts.log ?? null
    }
    return createAttestation(claim, opts.key)
  }

  const attestationsHeld = async (buildId: string): Promise<SignedAttestation[]> => {
    const r = await api<{ attestations: Array<{ envelope: Envelope }> }>(node.api, 'GET', `/v1/attestations?buildId=${buildId}`)
    return r.attestations.map(a => decodeAttestation(a.envelope, { now: Date.now() }))
  }

  return {
    node,
    key,
    attestationsHeld,
    async publishRaw (topic, bytes) {
      const out = await api<{ recipients: number }>(node.api, 'POST', '/v1/gossip/publish-raw', { topic, data: Buffer.from(bytes).toString('base64') })
      return out.recipients
    },
    async heardJob (jobId) {
      const view = await waitFor(async () => {
        try {
          return await api<{ envelope: Envelope }>(node.api, 'GET', `/v1/jobs/${jobId}`)
        } catch { return null }
      }, `the adversary hearing job ${jobId}`, 30_000)
      return decodeJobAnnouncement(view.envelope, { now: Date.now(), allowExpired: true })
    },
    attest,
    forge (job, victimDid, artifact) {
      // build the statement the victim would have signed, then sign it with our key:
      // createAttestation refuses (worker must be the signer), so sign the payload by hand
      const honestShape = attest(job, { key, artifact })
      const statement = JSON.parse(JSON.stringify(honestShape.statement)) as { predicate: { runDetails: { builder: { id: string } } } }
      statement.predicate.runDetails.builder.id = victimDid
      const env = signEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(statement)), key)
      // and claim the victim in the keyid hint too
      return envelopeBytes({ ...env, signatures: [{ keyid: victimDid, sig: env.signatures[0]!.sig }] })
    },
    sybils (job, artifact, n) {
      const out: SignedAttestation[] = []
      for (let i = 0; i < n; i++) out.push(attest(job, { key: generateSigningKey(), artifact }))
      return out
    },
    equivocate (job, k, [a, b]) {
      const t = Date.now()
      return [attest(job, { key: k, artifact: a, finishedAt: t }), attest(job, { key: k, artifact: b, finishedAt: t + 1 })]
    },
    rewrap (signed, keyid) {
      const env = { payload: signed.envelope.payload, payloadType: signed.envelope.payloadType, signatures: [{ keyid, sig: signed.envelope.signatures[0]!.sig }] }
      return utf8Encode(JSON.stringify(env, null, 1))
    },
    expiredJob (like) {
      const t = Date.now()
      const k = generateSigningKey()
      return createJobAnnouncement({
        definition: { ...like.job.definition, env: { ...like.job.definition.env, ADVERSARY_REPLAY: String(t) } },
        requester: k.did,
        replicas: 2,
        resources: like.job.resources,
        createdAt: iso(t - 120_000),
        expiresAt: iso(t - 60_000)
      }, k)
    },
    farFuture (job) {
      const later = Date.now() + 24 * 3600_000
      const k = generateSigningKey()
      const futureJob = createJobAnnouncement({
        definition: { ...job.job.definition, env: { ...job.job.definition.env, ADVERSARY_FUTURE: '1' } },
        requester: k.did,
        replicas: 2,
        resources: job.job.resources,
        createdAt: iso(later),
        expiresAt: iso(later + 3600_000)
      }, k)
      const att = attest(job, { key, artifact: wrongCid('future'), startedAt: later - 1000, finishedAt: later })
      const claim = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: key.did, workerPeerId: node.peerId, issuedAt: iso(later), leaseUntil: iso(later + 60_000), seq: 1 }, key)
      return { job: futureJob.bytes, attestation: att.bytes, claim: claim.bytes }
    },
    expiredClaim (job) {
      const t = Date.now() - 10 * 60_000
      return createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: key.did, workerPeerId: node.peerId, issuedAt: iso(t), leaseUntil: iso(t + 60_000), seq: 1 }, key).bytes
    },
    claim (job, k) {
      const t = Date.now()
      return createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: k.did, workerPeerId: node.peerId, issuedAt: iso(t), leaseUntil: iso(t + 30_000), seq: t }, k).bytes
    },
    commit (job, k, artifact) {
      return createCommitment({ buildId: job.job.buildId, jobId: job.jobId, workerPeerId: node.peerId, issuedAt: iso(Date.now()), artifact }, k).bytes
    },
    junk (sample, salt = 0) {
      const pad = (b: Uint8Array): Uint8Array => salt === 0 ? b : new Uint8Array(Buffer.concat([b, Buffer.alloc(salt, 0x20)]))
      const random = new Uint8Array(4096).map(() => Math.floor(Math.random() * 256))
      const depth = 40_000
      const nestedOuter = utf8Encode('['.repeat(depth) + ']'.repeat(depth))
      // deep nesting inside a correctly signed envelope: the payload decoder must cope too
      const nestedPayload = utf8Encode(`{"_type":${'['.repeat(10_000)}${']'.repeat(10_000)}}`)
      const nestedSigned = envelopeBytes(signEnvelope(JOB_PAYLOAD_TYPE, nestedPayload, key))
      const oversized = new Uint8Array(MAX_MESSAGE_BYTES * 4).fill(0x7b)
      const bigSigned = envelopeBytes({ payload: base64Encode(new Uint8Array(MAX_MESSAGE_BYTES)), payloadType: JOB_PAYLOAD_TYPE, signatures: [{ keyid: '', sig: base64Encode(new Uint8Array(64)) }] })
      return [
        { name: 'oversized', bytes: oversized },
        { name: 'oversized-envelope', bytes: bigSigned },
        { name: 'truncated', bytes: sample.subarray(0, Math.floor(sample.length / 2)) },
        { name: 'random', bytes: random },
        { name: 'empty', bytes: new Uint8Array(0) },
        { name: 'nested-json', bytes: nestedOuter },
        { name: 'nested-signed-payload', bytes: nestedSigned }
      ].map(j => ({ name: j.name, bytes: pad(j.bytes) }))
    },
    async lazyCopy (job, k, from) {
      const honest = await waitFor(async () => {
        const held = await attestationsHeld(job.job.buildId)
        return held.find(a => a.claim.result.status === 'success' && from(a))
      }, 'an honest attestation to copy', 60_000)
      if (honest.claim.result.status !== 'success') throw new Error('unreachable')
      // nothing was fetched or built: only the CID (and even the log CID) is copied
      return attest(job, { key: k, artifact: honest.claim.result.artifact, log: honest.claim.log })
    }
  }
}

// ---- the honest side, as seen through the requester's API --------------------------------

export type { RequestView } from '../../node/api/types.ts'

/** why an attestation's build failed (none for a success) */
export function reasonOf (a: { result: BuildResult } | undefined): string | undefined {
  return a?.result.status === 'failure' ? a.result.reason : undefined
}

/** the artifact an attestation's result names (none for a failure) */
export function artifactOf (a: { result: BuildResult }): string | undefined {
  return a.result.status === 'success' ? a.result.artifact : undefined
}

export async function requestView (requester: Node, jobId: string): Promise<RequestView> {
  return await api<RequestView>(requester.api, 'GET', `/v1/requests/${jobId}`)
}

/**
 * The CID a build whose output directory holds exactly `files` attests: the
 * tree imported with the worker's pinned parameters. What a key that is told
 * the result off the network (a colluder) knows before any build ends.
 */
export async function outputCid (files: Record<string, string>): Promise<string> {
  const dir = await tempDir('concur-adv-out-')
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  return await treeCid(dir)
}

/** Submit through the requester's API (no CLI process per job). */
export async function submitJob (requester: Node, opts: { label: string, script: string, replicas?: number, ttlSeconds?: number, files?: Record<string, string>, output?: string, resources?: Record<string, number> }): Promise<{ jobId: string, buildId: string }> {
  const src = await tempDir('concur-adv-src-')
  await writeFile(join(src, 'label'), `${opts.label}\n`)
  for (const [name, text] of Object.entries(opts.files ?? {})) await writeFile(join(src, name), text)
  return await api<{ jobId: string, buildId: string }>(requester.api, 'POST', '/v1/jobs', {
    source: src,
    command: ['sh', '-c', opts.script],
    output: opts.output ?? 'out',
    replicas: opts.replicas ?? 2,
    ttlSeconds: opts.ttlSeconds ?? 600,
    reuse: false,
    ...(opts.resources != null ? { resources: opts.resources } : {})
  })
}

/**
 * Wait until the requester's view satisfies `ok`: the view is read again each
 * time the requester's event feed has something about this job (a claim, an
 * attestation, a verdict), never on a timer.
 */
export async function viewUntil (requester: Node, jobId: string, ok: (v: RequestView) => boolean, what: string, timeoutMs = 90_000): Promise<RequestView> {
  const deadline = Date.now() + timeoutMs
  let after = 0
  let last: RequestView | undefined
  while (true) {
    last = await requestView(requester, jobId)
    if (ok(last)) return last
    const left = deadline - Date.now()
    if (left <= 0) break
    const ev = await api<EventsResponse>(requester.api, 'GET', `/v1/events?after=${after}&wait=${Math.min(25_000, left)}&jobId=${encodeURIComponent(jobId)}`)
    after = ev.events.reduce((m, e) => Math.max(m, e.seq), after)
  }
  // say what the requester did see: a timeout alone explains nothing
  const seen = JSON.stringify({ status: last.record.status, reasons: last.record.reasons, attestations: last.attestations.map(a => [a.worker.slice(-8), a.trusted, a.result.status, a.result.status === 'success' ? a.result.artifact.slice(-8) : a.result.reason]) })
  throw new Error(`timed out waiting for ${what}; last seen: ${seen}`)
}

/** every honest node still answers on its API */
export async function allAlive (nodes: Node[]): Promise<boolean> {
  const ids = await Promise.all(nodes.map(async n => await api<{ did: string }>(n.api, 'GET', '/v1/id').then(r => r.did === n.did, () => false)))
  return ids.every(Boolean)
}

export interface GossipStatsView { accepted: number, ignored: number, rejected: number, lastRejections: Array<{ code: string, reason: string, from: string }>, lastIgnored: Array<{ topic: string, code: string, from: string }> }

export async function gossipStats (n: Node): Promise<GossipStatsView> {
  return (await api<{ gossip: GossipStatsView }>(n.api, 'GET', '/v1/stats')).gossip
}

/** Set the requester's trust policy through its API: in effect, and open jobs re-evaluated, when this returns. */
export async function setPolicy (requester: Node, trusted: string[], threshold: number, required: string[] = [], extra: { requireCommitment?: boolean } = {}): Promise<void> {
  const r = await api<PolicyResponse>(requester.api, 'POST', '/v1/policy', { policy: { version: 1, trusted, threshold, required, minTier: null, ...extra } })
  if (r.problem != null) throw new Error(`policy not usable: ${r.problem}`)
}

/** whether `long` mode (CONCUR_LONG=1, `npm run test:adversary`) is on */
export const LONG = process.env.CONCUR_LONG === '1'
