/**
 * Fault: a worker is SIGKILLed while building (power cut, OOM killer). Its
 * lease (LEASE_MS = 30 s, renewed every LEASE_RENEW_MS = 10 s) lapses, another
 * worker sees a free replica slot, claims, builds and attests: the job still
 * reaches its verdict, and the killed worker's sandbox leaves no process.
 *
 * Two idle workers hearing a job together may both claim it (leases are
 * advisory), which would hide the take-over. So the second worker joins while
 * the first is already building: gossip delivered the job before it existed,
 * so it learns of the job, and of the first worker's live lease, through job
 * catch-up (`/concur/sync/jobs/1.0.0`, src/net/job-sync.ts) from the peers it
 * connects to; it must respect that lease and take over only once it lapses.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { LEASE_MS } from '../../protocol/index.ts'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Node } from '../helpers/network.ts'
import { allAlive, setPolicy, submitJob, viewUntil } from './adversary.ts'
import { processesWith } from './host.ts'

interface Ev { at: string, event: { type: string, jobId?: string, progress?: { stage: string }, worker?: string, leaseUntil?: string } }

const events = async (n: Node): Promise<Ev[]> => (await api<{ events: Ev[] }>(n.api, 'GET', '/v1/events?after=0')).events

describe('a worker SIGKILLed mid-build', () => {
  afterAll(async () => { await cleanupAll() })

  it('another worker takes the job over after the lease lapses, and the job reaches its verdict', async () => {
    const net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
    const victim = net.workers[0]!
    // the survivor's key exists before the job: the job names both as its builders
    const survivorHome = await tempDir()
    const survivorDid = String((((await runConcur(['init'], { home: survivorHome })).json()) as { did: string }).did)
    await setPolicy(net.requester, [victim.did, survivorDid], 1)
    const marker = `18.${process.pid}${Date.now() % 100000}`
    const { jobId } = await submitJob(net.requester, { label: `takeover-${marker}`, replicas: 1, script: `sleep ${marker}; mkdir out; cp label out/` })
    await waitFor(async () => (await processesWith(`sleep ${marker}`)).length > 0, 'the victim\'s build running in its sandbox', 30_000)

    // the second worker joins, and hears the victim's lease renewal
    const sp = startConcur(['daemon', '--worker', '--bootstrap', net.bootAddr], { home: survivorHome })
    const sr = await sp.ready
    const survivor: Node = { proc: sp, did: String(sr.did), peerId: String(sr.peerId), api: String(sr.api), home: sp.home }
    expect(survivor.did).toBe(survivorDid)
    await waitFor(async () => (await events(survivor)).some(e => e.event.type === 'claim' && e.event.jobId === jobId && e.event.worker === victim.did),
      'the survivor hearing the victim\'s lease', 30_000)
    expect((await processesWith(`sleep ${marker}`)).length).toBeGreaterThan(0)
    // the job came by catch-up, not by gossip (it was announced before the survivor started)
    await waitFor(async () => (await events(survivor)).some(e => e.event.type === 'job' && e.event.jobId === jobId), 'the survivor learning of the job', 30_000)

    const killedAt = Date.now()
    victim.proc.child.kill('SIGKILL')
    await victim.proc.exited
    // the killed worker's build dies with it (bwrap --die-with-parent + pid namespace)
    await waitFor(async () => (await processesWith(`sleep ${marker}`)).length === 0, 'the orphaned build gone', 10_000)

    const v = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'the verdict after the take-over', LEASE_MS + 120_000)
    expect(v.record.counted).toEqual([survivor.did])
    expect(v.attestations.map(a => a.worker)).toEqual([survivor.did])
    // the survivor respected the victim's lease: it claimed only once the last lease it had heard of had lapsed
    const sEv = await events(survivor)
    const leases = sEv.filter(e => e.event.type === 'claim' && e.event.jobId === jobId && e.event.worker === victim.did).map(e => Date.parse(e.event.leaseUntil!))
    const claimed = sEv.find(e => e.event.type === 'job:claimed' && e.event.jobId === jobId)
    expect(claimed).toBeDefined()
    expect(Date.parse(claimed!.at)).toBeGreaterThan(killedAt)
    expect(Date.parse(claimed!.at)).toBeGreaterThanOrEqual(Math.max(...leases))
    expect(await allAlive([net.requester, survivor, net.bootstrap])).toBe(true)
  }, LEASE_MS + 200_000)
})
