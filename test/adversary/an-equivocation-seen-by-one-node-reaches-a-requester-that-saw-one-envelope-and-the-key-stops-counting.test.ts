/**
 * Equivocation proofs travel (PROTOCOL.md §8.2), with real daemons:
 *
 * A trusted key T signs artifact X for a job (twice: two envelopes, one
 * statement of X each) and then artifact Y for the same job. The requester R
 * keeps at most two attestations per key per job (src/store/limits.ts), so it
 * holds T's two X envelopes and IGNOREs Y: on its own it never sees the
 * conflict and counts T for X (the control, checked before Y is sent). An
 * observer O, a volunteer whose config keeps three per key per job, holds X
 * and Y, finds the equivocation in its own store and publishes the proof
 * once; R, which never stored Y, stops counting T, keeps the proof across a
 * restart, and its verdict names T as an equivocator.
 *
 * And the proof cannot be turned against an honest key H: a "proof" whose
 * second envelope is not H's signature, and one of two statements of the
 * same artifact, are REJECTed by R (the sender's score pays) and H still counts.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ATTESTATION_PAYLOAD_TYPE, EQUIVOCATION_PROOF_TYPE, envelopePayload, generateSigningKey, signEnvelope, utf8Encode } from '../../protocol/index.ts'
import type { SignedAttestation } from '../../protocol/index.ts'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { ATTESTATIONS_TOPIC, EQUIVOCATIONS_TOPIC, gossipStats, requestView, setPolicy, startAdversary, submitJob, viewUntil, wrongCid } from './adversary.ts'
import type { Adversary } from './adversary.ts'

describe('an equivocation seen by one node reaches a requester that saw one envelope', () => {
  let net: Devnet
  let R: Node
  let O: Node
  let adv: Adversary
  const T = generateSigningKey()
  const H = generateSigningKey()

  const held = async (n: Node, buildId: string): Promise<Array<{ id: string }>> =>
    (await api<{ attestations: Array<{ id: string }> }>(n.api, 'GET', `/v1/attestations?buildId=${buildId}`)).attestations

  /** a proof's bytes as anyone could write them: no check of what they prove */
  const rawProof = (a: SignedAttestation['envelope'], b: SignedAttestation['envelope']): Uint8Array =>
    utf8Encode(JSON.stringify({ _type: EQUIVOCATION_PROOF_TYPE, attestations: [a, b] }))

  beforeAll(async () => {
    net = await startNetwork({ workers: [] })
    R = net.requester
    // the observer: an ordinary daemon whose operator keeps a third attestation per key and job
    const home = await tempDir('concur-observer-')
    await runConcur(['init'], { home })
    const config = JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as { limits: Record<string, number> }
    config.limits = { ...config.limits, maxPerSignerPerJob: 3 }
    await writeFile(join(home, 'config.json'), JSON.stringify(config, null, 2))
    const proc = startConcur(['daemon', '--bootstrap', net.bootAddr], { home })
    const r = await proc.ready
    O = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home }
    adv = await startAdversary(net.bootAddr)
    // R hears proofs from O and attestations and proofs from the adversary directly
    await waitFor(async () => {
      const p = await api<{ subscribers: { attestations: string[], equivocations: string[] } }>(R.api, 'GET', '/v1/peers')
      return [O.peerId, adv.node.peerId].every(id => p.subscribers.equivocations.includes(id) && p.subscribers.attestations.includes(id))
    }, 'the observer and the adversary meshed with the requester on attestations and equivocations')
    await setPolicy(R, [T.did, H.did], 1)
  }, 120_000)

  afterAll(async () => { await cleanupAll() })

  it('the observer publishes the proof, the requester stops counting the key, and keeps the proof across a restart', async () => {
    const { jobId, buildId } = await submitJob(R, { label: `equivocation-proof-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    await waitFor(async () => await api(O.api, 'GET', `/v1/jobs/${jobId}`).then(() => true, () => false), 'the observer holding the job')
    const X = wrongCid('x')
    const Y = wrongCid('y')
    const t = Date.now()
    const a1 = adv.attest(job, { key: T, artifact: X, finishedAt: t })
    const a2 = adv.attest(job, { key: T, artifact: X, finishedAt: t + 1 })
    const b = adv.attest(job, { key: T, artifact: Y, finishedAt: t + 2 })

    await adv.publishRaw(ATTESTATIONS_TOPIC, a1.bytes)
    await adv.publishRaw(ATTESTATIONS_TOPIC, a2.bytes)
    // control: with what R holds, T counts, and the job is accepted on it
    const before = await viewUntil(R, jobId, v => v.attestations.length === 2 && v.record.status === 'accepted', 'accepted on T\'s two statements of X')
    expect(before.record.counted).toEqual([T.did])
    expect(before.record.artifact).toBe(X)
    await waitFor(async () => (await held(O, buildId)).length === 2, 'the observer holding both statements of X')

    await adv.publishRaw(ATTESTATIONS_TOPIC, b.bytes)
    const after = await viewUntil(R, jobId, v => v.record.status !== 'accepted', 'T no longer counted once the proof arrives')
    expect(after.verdict?.equivocators).toEqual([{ worker: T.did }])
    expect(after.verdict?.counted).toEqual([])
    // R never held Y: its store kept T's two X statements and IGNOREd the third (its cap)
    expect(after.attestations.map(a => a.result.status === 'success' ? a.result.artifact : '')).toEqual([X, X])
    expect((await gossipStats(R)).lastIgnored.some(i => i.code === 'ERR_SIGNER_FULL' && i.topic === ATTESTATIONS_TOPIC)).toBe(true)
    // the observer found it in its own store and published it: it holds all three
    expect((await held(O, buildId)).length).toBe(3)
    const observed = await api<{ events: Array<{ event: { type: string, detected?: boolean, worker?: string } }> }>(O.api, 'GET', '/v1/events?after=0')
    expect(observed.events.filter(e => e.event.type === 'equivocation').map(e => e.event)).toEqual([expect.objectContaining({ detected: true, worker: T.did })])
    const heard = await api<{ events: Array<{ event: { type: string, detected?: boolean } }> }>(R.api, 'GET', '/v1/events?after=0')
    expect(heard.events.filter(e => e.event.type === 'equivocation').map(e => e.event.detected)).toEqual([false])

    // kept: after a restart R still holds the proof, and T still counts for nothing
    await R.proc.kill('SIGTERM')
    await R.proc.exited
    const proc = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: R.home })
    const r = await proc.ready
    R = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home: R.home }
    const restarted = await requestView(R, jobId)
    expect(restarted.verdict?.equivocators).toEqual([{ worker: T.did }])
    expect(restarted.record.status).not.toBe('accepted')
    expect(restarted.attestations).toHaveLength(2)
  }, 180_000)

  it('a forged or non-conflicting proof about an honest key is REJECTed and the key still counts', async () => {
    await waitFor(async () => {
      const p = await api<{ subscribers: { equivocations: string[] } }>(R.api, 'GET', '/v1/peers')
      return p.subscribers.equivocations.includes(adv.node.peerId)
    }, 'the restarted requester meshed with the adversary')
    const { jobId } = await submitJob(R, { label: `honest-key-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    const X = wrongCid('honest')
    const t = Date.now()
    const h1 = adv.attest(job, { key: H, artifact: X, finishedAt: t })
    const h2 = adv.attest(job, { key: H, artifact: X, finishedAt: t + 1 })
    await adv.publishRaw(ATTESTATIONS_TOPIC, h1.bytes)
    await viewUntil(R, jobId, v => v.record.status === 'accepted', 'accepted on H')

    // forged: H's real statement, and one of Y "by H" that the adversary signed
    const y = adv.attest(job, { key: H, artifact: wrongCid('forged'), finishedAt: t + 2 })
    const forgedSig = signEnvelope(ATTESTATION_PAYLOAD_TYPE, envelopePayload(y.envelope), adv.key).signatures[0]!.sig
    const forged = rawProof(h1.envelope, { ...y.envelope, signatures: [{ keyid: H.did, sig: forgedSig }] })
    // non-conflicting: two genuine statements by H of the same artifact
    const agreeing = rawProof(h1.envelope, h2.envelope)
    const rejectedBefore = (await gossipStats(R)).rejected
    await adv.publishRaw(EQUIVOCATIONS_TOPIC, forged)
    await adv.publishRaw(EQUIVOCATIONS_TOPIC, agreeing)
    const stats = await waitFor(async () => {
      const s = await gossipStats(R)
      return s.rejected >= rejectedBefore + 2 ? s : undefined
    }, 'both "proofs" rejected by the requester')
    const codes = stats.lastRejections.filter(x => x.from === adv.node.peerId).map(x => x.code)
    expect(codes).toEqual(expect.arrayContaining(['ERR_BAD_SIGNATURE', 'ERR_NOT_EQUIVOCATION']))
    const v = await requestView(R, jobId)
    expect(v.record.status).toBe('accepted')
    expect(v.record.counted).toEqual([H.did])
    expect(v.verdict?.equivocators).toEqual([])
  }, 120_000)
})
