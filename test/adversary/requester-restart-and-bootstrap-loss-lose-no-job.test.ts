/**
 * Faults on the honest side, in one network (bootstrap, two workers, requester;
 * k = 1 of the two workers):
 *  - the requester's daemon is SIGKILLed mid-job and started again on the same
 *    home: the verdict still arrives (attestations published while it was
 *    down are caught up from peers) and its earlier state is intact;
 *  - then the bootstrap node is stopped: the peers it introduced stay
 *    connected, and a new job still runs to its verdict.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, cleanupAll, startConcur, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { allAlive, requestView, submitJob, viewUntil, artifactOf } from './adversary.ts'

interface Ev { event: { type: string, jobId?: string, progress?: { stage: string } } }

describe('requester restart and bootstrap loss', () => {
  let net: Devnet
  let requester: Node
  let earlier = ''

  const bothSubscribed = async (): Promise<boolean> => {
    const p = await api<{ subscribers: { jobs: string[], attestations: string[] } }>(requester.api, 'GET', '/v1/peers')
    return net.workers.every(w => p.subscribers.jobs.includes(w.peerId) && p.subscribers.attestations.includes(w.peerId))
  }

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 1 })
    requester = net.requester
    // a job finished before any fault: the state that must survive
    const { jobId } = await submitJob(requester, { label: `before-${process.pid}`, replicas: 2, script: 'mkdir out; cp label out/' })
    earlier = jobId
    // settled: accepted, both attestations in, and its proof bundle written
    // (the bundle is written after acceptance; a snapshot before it would differ)
    await viewUntil(requester, jobId, v => v.record.status === 'accepted' && v.attestations.length === 2 && (v.record as { bundle?: string }).bundle != null, 'the earlier job accepted and its bundle written')
  })

  afterAll(async () => { await cleanupAll() })

  it('requester SIGKILLed mid-job and restarted on the same home: the verdict still arrives, earlier state intact', async () => {
    const before = await requestView(requester, earlier)
    const { jobId } = await submitJob(requester, { label: `restart-${process.pid}`, replicas: 2, script: 'sleep 3; mkdir out; cp label out/' })
    await waitFor(async () => {
      const b = await Promise.all(net.workers.map(async w => {
        const e = await api<{ events: Ev[] }>(w.api, 'GET', '/v1/events?after=0')
        return e.events.some(x => x.event.type === 'build:progress' && x.event.jobId === jobId && x.event.progress?.stage === 'building')
      }))
      return b.every(Boolean)
    }, 'both workers building')
    requester.proc.child.kill('SIGKILL')
    await requester.proc.exited
    // both attestations are published while the requester is down
    await waitFor(async () => {
      const n = await Promise.all(net.workers.map(async w => (await api<{ attestations: Array<{ claim: { jobId: string } }> }>(w.api, 'GET', '/v1/attestations')).attestations.filter(a => a.claim.jobId === jobId).length))
      return n.every(x => x === 2)
    }, 'both attestations published')

    const proc = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: requester.home })
    const r = await proc.ready
    requester = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home: requester.home }
    expect(requester.did).toBe(net.requester.did)
    const v = await viewUntil(requester, jobId, v => v.record.status === 'accepted' && v.attestations.length === 2, 'the verdict after the restart', 60_000)
    expect(v.record.artifact).toBe(artifactOf(v.attestations[0]!))
    // nothing of the earlier job was lost
    const after = await requestView(requester, earlier)
    expect(after.record).toEqual(before.record)
    expect(after.attestations.length).toBe(2)
  })

  it('bootstrap node stopped after peers joined: they stay connected and a job still runs to its verdict', async () => {
    await waitFor(bothSubscribed, 'the restarted requester meshed with both workers')
    await net.bootstrap.proc.kill('SIGTERM')
    // the loss is an event the peers see: their connection to it closes
    await waitFor(async () => {
      const seen = await Promise.all([requester, ...net.workers].map(async n => (await api<{ peers: Array<{ peerId: string }> }>(n.api, 'GET', '/v1/peers')).peers))
      return seen.every(peers => !peers.some(p => p.peerId === net.bootstrap.peerId))
    }, 'every peer seeing the bootstrap node gone')
    expect(await bothSubscribed()).toBe(true)
    const { jobId } = await submitJob(requester, { label: `no-bootstrap-${process.pid}`, replicas: 2, script: 'mkdir out; cp label out/' })
    const v = await viewUntil(requester, jobId, v => v.record.status === 'accepted' && v.attestations.length === 2, 'a verdict without the bootstrap node')
    expect(new Set(v.attestations.map(a => a.worker))).toEqual(new Set(net.workers.map(w => w.did)))
    expect(await allAlive([requester, ...net.workers])).toBe(true)
  })
})
