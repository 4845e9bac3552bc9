import { afterAll, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { apiHeaders, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'

describe('a requester killed mid-job and restarted on the same home', () => {
  afterAll(async () => { await cleanupAll() })

  it('still reaches the verdict: attestations published while it was down are caught up from peers', async () => {
    const net = await startNetwork({ workers: [{}, {}], threshold: 2 })
    const src = await tempDir()
    await writeFile(join(src, 'f'), 'restart me\n')
    const sub = await runConcur(['submit', src, '--out', 'out', '--replicas', '2', '--timeout', '90', '--', 'sh', '-c', 'sleep 4; mkdir out; cp f out/'], { home: net.requester.home })
    expect(sub.code).toBe(0)
    const jobId = (sub.json() as { jobId: string }).jobId

    // the workers fetch the source from the requester: kill it once both build
    await waitFor(async () => {
      const building = await Promise.all(net.workers.map(async w => {
        const r = await fetch(`http://${w.api}/v1/events?after=0`, { headers: apiHeaders(w.api) })
        const j = await r.json() as { events: Array<{ event: { type: string, jobId?: string, progress?: { stage: string } } }> }
        return j.events.some(e => e.event.type === 'build:progress' && e.event.jobId === jobId && e.event.progress?.stage === 'building')
      }))
      return building.every(Boolean)
    }, 'both workers building')
    net.requester.proc.child.kill('SIGKILL')
    await net.requester.proc.exited
    // both workers attest while the requester is down
    await waitFor(async () => {
      const seen = await Promise.all(net.workers.map(async w => {
        const r = await fetch(`http://${w.api}/v1/attestations`, { headers: apiHeaders(w.api) })
        const j = await r.json() as { attestations: Array<{ claim: { jobId: string } }> }
        return j.attestations.filter(a => a.claim.jobId === jobId).length
      }))
      return seen.every(n => n >= 2)
    }, 'both attestations published')
    // longer than gossipsub's message cache (5 heartbeats): only catch-up can
    // deliver them now. Time itself is what this waits for: no event says a
    // peer's message cache has moved past a message
    await new Promise(resolve => setTimeout(resolve, 8000))

    const again = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: net.requester.home })
    await again.ready
    const status = await waitFor(async () => {
      const r = await runConcur(['status', jobId], { home: net.requester.home })
      const v = r.json() as { record: { status: string, bundle?: string } }
      return v.record.status === 'accepted' && v.record.bundle != null ? v : null
    }, 'the verdict after the restart', 20_000)
    expect(status.record.status).toBe('accepted')
  })
})
