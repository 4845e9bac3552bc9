/**
 * Liveness attack found by this suite (issue 7): a worker used to count an
 * attestation from ANY key as a filled replica slot. An adversary that, as
 * soon as it hears a job, publishes `replicas` attestations from fresh
 * throw-away keys (of any CID: they are validly signed) kept every honest
 * worker that had not claimed yet from ever building it. Nothing wrong was
 * accepted (the sybils are untrusted), but the job never got its trusted
 * builds and expired: a lost job, at the cost of two signatures.
 *
 * Defence (src/store/claim-book.ts): an attestation fills a slot only when
 * its signer claimed a replica slot of the job first. Made deterministic by
 * keeping both workers busy (max-concurrent 1) with a first job while the
 * target job is announced and the adversary strikes.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import { ATTESTATIONS_TOPIC, allAlive, startAdversary, submitJob, viewUntil, wrongCid } from './adversary.ts'

interface Ev { event: { type: string, jobId?: string, worker?: string, progress?: { stage: string } } }

describe('replica slots', () => {
  afterAll(async () => { await cleanupAll() })

  it('attestations from throw-away keys published before honest workers claim do not stop them building the job', async () => {
    const net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 })
    const adv = await startAdversary(net.bootAddr)
    const honest = net.workers.map(w => w.did)
    const claimsOn = async (jobId: string): Promise<Set<string>> => {
      const ev = await api<{ events: Ev[] }>(net.requester.api, 'GET', '/v1/events?after=0')
      return new Set(ev.events.filter(e => e.event.type === 'claim' && e.event.jobId === jobId).map(e => e.event.worker ?? ''))
    }

    // both workers busy with a first job (replicas 2: each takes one slot)
    const first = await submitJob(net.requester, { label: `busy-${process.pid}`, replicas: 2, script: 'sleep 6; mkdir out; cp label out/' })
    await waitFor(async () => (await claimsOn(first.jobId)).size === 2, 'both workers on the first job')

    const { jobId } = await submitJob(net.requester, { label: `target-${process.pid}`, replicas: 2, script: 'mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    expect((await claimsOn(jobId)).size).toBe(0)
    for (const s of adv.sybils(job, wrongCid('slot-squatter'), job.job.replicas)) await adv.publishRaw(ATTESTATIONS_TOPIC, s.bytes)

    // the first job finishes; the workers are free again and rescan every 2 s
    await viewUntil(net.requester, first.jobId, v => v.record.status === 'accepted', 'the first job accepted')
    const v = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'the target job built by the honest workers and accepted', 20_000)
    expect([...v.record.counted].sort()).toEqual([...honest].sort())
    expect(await allAlive([net.requester, ...net.workers])).toBe(true)
  }, 180_000)
})
