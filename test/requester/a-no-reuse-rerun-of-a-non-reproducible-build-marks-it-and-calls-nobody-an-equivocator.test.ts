/**
 * An honest rerun is not an attack (issue 19). A build that writes the time
 * (in 10-second steps) agrees with itself when three replicas build it at
 * once, and is accepted. Submitted again with `--no-reuse` a bucket later, the
 * same three keys agree on a new CID. Before: each was "equivocated (signed 2
 * different artifacts): it counts for nothing", the new job went back to
 * pending and the earlier accepted job was revoked to EXPIRED. Now the earlier
 * job stays accepted, both jobs carry the build's non-reproducible record
 * (every key, both CIDs, the job of each), no key is an equivocator, and the
 * rerun is judged only on its own attestations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupAll, runConcur } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { artifactOf, submitJob, viewUntil } from '../adversary/adversary.ts'
import type { RequestView } from '../adversary/adversary.ts'

const STEP_S = 10
const SCRIPT = `mkdir out; echo $(( $(date +%s) / ${STEP_S} )) > out/stamp`
const settled = (v: RequestView): boolean => v.record.status !== 'pending' && v.record.status !== 'provisional'
const bucket = (): number => Math.floor(Date.now() / 1000 / STEP_S)

describe('a --no-reuse rerun of a build that embeds the time', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}, {}], trust: [0, 1, 2], threshold: 3 })
  })

  afterAll(async () => { await cleanupAll() })

  it('leaves the earlier job accepted, marks the build non-reproducible and calls no key an equivocator', async () => {
    const dids = net.workers.map(w => w.did).sort()
    // the three replicas start within a second of one another; should they
    // straddle a 10-second step (rare), the first job is disputed: try a new build
    let first: RequestView | undefined
    let label = ''
    for (let attempt = 0; attempt < 3 && first?.record.status !== 'accepted'; attempt++) {
      label = `time-${process.pid}-${attempt}`
      const { jobId } = await submitJob(net.requester, { label, replicas: 3, ttlSeconds: 3600, script: SCRIPT })
      first = await viewUntil(net.requester, jobId, v => settled(v) && v.attestations.length === 3, 'the first job settled')
    }
    expect(first?.record.status).toBe('accepted')
    const j1 = first!.record.jobId
    const a1 = first!.record.artifact!

    // a later step of the clock, then the same build again, not reusing the first job
    const stepped = bucket()
    await new Promise<void>(resolve => { const t = setInterval(() => { if (bucket() > stepped) { clearInterval(t); resolve() } }, 200) })
    const { jobId: j2, buildId } = await submitJob(net.requester, { label, replicas: 3, ttlSeconds: 3600, script: SCRIPT })
    expect(buildId).toBe(first!.record.buildId)
    const second = await viewUntil(net.requester, j2, v => settled(v) && v.attestations.length === 3, 'the rerun settled')

    // the rerun is judged on its own three attestations only
    expect(second.attestations.every(a => a.jobId === j2 && a.thisJob)).toBe(true)
    const rerunCids = new Set(second.attestations.map(a => artifactOf(a)))
    expect(rerunCids.has(a1)).toBe(false)
    // three agreeing answers to the rerun accept it; should its replicas have straddled a step, they dispute it
    expect(second.record.status).toBe(rerunCids.size === 1 ? 'accepted' : 'disputed')
    expect(second.verdict?.equivocators).toEqual([])
    expect(second.verdict?.nonReproducible.map(n => n.worker).sort()).toEqual(dids)

    // the earlier acceptance stands, with the later evidence attached
    const after = await viewUntil(net.requester, j1, v => (v.verdict?.nonReproducible.length ?? 0) === 3, 'the first job shows the rerun as evidence')
    expect(after.record.status).toBe('accepted')
    expect(after.record.artifact).toBe(a1)
    expect(after.record.history.map(h => h.status)).not.toContain('expired')
    expect(after.verdict?.equivocators).toEqual([])
    expect([...after.record.counted].sort()).toEqual(dids)
    for (const n of after.verdict!.nonReproducible) {
      expect(n.trusted).toBe(true)
      expect(n.artifacts.find(x => x.artifact === a1)?.jobs).toEqual([j1])
      expect(n.artifacts.some(x => x.jobs.includes(j2))).toBe(true)
    }
    expect(after.record.reasons.join('\n')).not.toMatch(/equivocat/)

    // with the diff of what the keys built each time: both CIDs, the file that differs
    const diffed = await viewUntil(net.requester, j1, v => v.record.nonReproducible?.report != null, 'the diff of the non-reproducible build')
    const summary = diffed.record.nonReproducible?.summary ?? ''
    expect(summary).toContain(a1)
    for (const cid of rerunCids) expect(summary).toContain(cid)
    expect(summary).toMatch(/stamp/)

    // and a person reading `status` sees it, with the right exit code
    const status = await runConcur(['status', j1], { home: net.requester.home, json: false })
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/not reproducible: /)
    expect(status.stdout).toMatch(/not reproducible: the diff of what trusted keys built for different jobs: /)
    expect(status.stdout).not.toMatch(/equivocat/i)
  })
})
