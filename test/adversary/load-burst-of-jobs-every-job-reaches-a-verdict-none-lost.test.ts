/**
 * Load: a burst of jobs from two requesters to three workers on loopback
 * (200 in long mode, 20 in `npm test`), all submitted at once. Every job must
 * reach a verdict, every attestation any worker holds for a job must have
 * reached that job's requester, and the daemons' memory must stay bounded
 * (RSS sampled from /proc every half second). The figures are printed.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { api, cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Node } from '../helpers/network.ts'
import { LONG, allAlive, setPolicy, submitJob } from './adversary.ts'

const JOBS = LONG ? 200 : 20
const MiB = 1024 * 1024

async function rssOf (pid: number | undefined): Promise<number> {
  if (pid == null) return 0
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
    return m == null ? 0 : Number(m[1]) * 1024
  } catch { return 0 }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN
}

interface Rec { jobId: string, buildId: string, status: string, submittedAt: string, history: Array<{ at: string, status: string }> }

describe(`load: a burst of ${JOBS} jobs from 2 requesters to 3 workers`, () => {
  afterAll(async () => { await cleanupAll() })

  it('every job reaches a verdict, no attestation is lost, memory stays bounded', async () => {
    const net = await startNetwork({ workers: [{ args: ['--max-concurrent', '2'] }, { args: ['--max-concurrent', '2'] }, { args: ['--max-concurrent', '2'] }], trust: [0, 1, 2], threshold: 2 })
    const p2 = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: await tempDir() })
    const r2 = await p2.ready
    const second: Node = { proc: p2, did: String(r2.did), peerId: String(r2.peerId), api: String(r2.api), home: p2.home }
    await setPolicy(second, net.workers.map(w => w.did), 2)
    await waitFor(async () => {
      const p = await api<{ subscribers: { jobs: string[] } }>(second.api, 'GET', '/v1/peers')
      return net.workers.every(w => p.subscribers.jobs.includes(w.peerId))
    }, 'the second requester meshed with the workers')
    const requesters = [net.requester, second]
    const daemons = { bootstrap: [net.bootstrap], workers: net.workers, requesters }

    // memory: baseline, then sampled through the burst
    const all = [net.bootstrap, ...net.workers, ...requesters]
    const baseline = new Map(await Promise.all(all.map(async n => [n.did, await rssOf(n.proc.child.pid)] as const)))
    const peak = new Map(baseline)
    const sampler = setInterval(() => {
      void Promise.all(all.map(async n => { peak.set(n.did, Math.max(peak.get(n.did) ?? 0, await rssOf(n.proc.child.pid))) }))
    }, 500)

    const t0 = Date.now()
    const submitted = await Promise.all(Array.from({ length: JOBS }, async (_, i) => {
      const requester = requesters[i % 2]!
      const { jobId, buildId } = await submitJob(requester, { label: `load-${process.pid}-${i}`, replicas: 2, script: 'mkdir out; cp label out/' })
      return { requester, jobId, buildId }
    }))
    const tSubmitted = Date.now()

    const records = await waitFor(async () => {
      const lists = await Promise.all(requesters.map(async r => (await api<{ requests: Rec[] }>(r.api, 'GET', '/v1/requests')).requests))
      const byId = new Map(lists.flat().map(r => [r.jobId, r]))
      const done = submitted.map(s => byId.get(s.jobId)).filter((r): r is Rec => r != null && r.status !== 'pending' && r.status !== 'provisional')
      return done.length === JOBS ? done : null
    }, `all ${JOBS} verdicts`, LONG ? 25 * 60_000 : 180_000)
    const tDone = Date.now()

    // no attestation lost: every attestation any worker holds for a job is held by that job's requester
    const lost = await waitFor(async () => {
      const held = await Promise.all(net.workers.map(async w => (await api<{ attestations: Array<{ id: string, claim: { buildId: string } }> }>(w.api, 'GET', '/v1/attestations')).attestations))
      const atRequester = new Map<string, Set<string>>()
      for (const r of requesters) {
        for (const a of (await api<{ attestations: Array<{ id: string, claim: { buildId: string } }> }>(r.api, 'GET', '/v1/attestations')).attestations) {
          atRequester.set(`${r.did}:${a.id}`, new Set())
        }
      }
      const missing: string[] = []
      for (const s of submitted) {
        const ids = new Set(held.flat().filter(a => a.claim.buildId === s.buildId).map(a => a.id))
        for (const id of ids) if (!atRequester.has(`${s.requester.did}:${id}`)) missing.push(`${s.jobId}:${id}`)
      }
      return missing.length === 0 ? missing : null
    }, 'every attestation at its requester', 60_000)
    clearInterval(sampler)
    expect(lost).toEqual([])

    const statuses = records.reduce<Record<string, number>>((m, r) => { m[r.status] = (m[r.status] ?? 0) + 1; return m }, {})
    expect(statuses).toEqual({ accepted: JOBS })
    const latencies = records.map(r => Date.parse(r.history.find(h => h.status === 'accepted')!.at) - Date.parse(r.submittedAt))
    const attestations = (await Promise.all(requesters.map(async r => (await api<{ attestations: unknown[] }>(r.api, 'GET', '/v1/attestations')).attestations.length))).reduce((a, b) => a + b, 0)

    const mem = Object.fromEntries(Object.entries(daemons).map(([role, nodes]) => [role, nodes.map(n => ({ baselineMiB: Math.round((baseline.get(n.did) ?? 0) / MiB), peakMiB: Math.round((peak.get(n.did) ?? 0) / MiB) }))]))
    const figures = {
      jobs: JOBS,
      requesters: 2,
      workers: 3,
      submitSeconds: (tSubmitted - t0) / 1000,
      allVerdictsSeconds: (tDone - t0) / 1000,
      jobsPerSecond: Math.round(JOBS / ((tDone - t0) / 1000) * 100) / 100,
      acceptLatencyMs: { p50: pct(latencies, 0.5), p95: pct(latencies, 0.95), max: Math.max(...latencies) },
      attestationsAtRequesters: attestations,
      lostAttestations: lost.length,
      memory: mem
    }
    console.log(`load figures: ${JSON.stringify(figures)}`)

    // bounded: no daemon grew past a fixed ceiling (a leak per job would, at 200 jobs)
    for (const n of all) expect(peak.get(n.did) ?? 0).toBeLessThan(1024 * MiB)
    expect(await allAlive(all)).toBe(true)
  }, LONG ? 40 * 60_000 : 300_000)
})
