/**
 * Simultaneous replicas hide time-dependent builds (issue 19): three
 * replicas that start within a second of one another agree on a build that
 * writes the time in 10-second steps, and the job is accepted. A trusted
 * rebuilder that checks every job no earlier than 20 s after it was
 * announced (`--sample 1 --rebuild-only --recheck-after 20`) builds it in
 * another step, and its dissent on the same job turns the accepted job into
 * `disputed`, with the report. Before: "DISSENT" with a note, verdict still
 * `accepted`, exit 0, no report; and rebuilders only checked at once.
 */
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupAll, runConcur } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { artifactOf, submitJob, viewUntil } from '../adversary/adversary.ts'
import type { RequestView } from '../adversary/adversary.ts'

const STEP_S = 10
const RECHECK_AFTER_S = 2 * STEP_S
const SCRIPT = `mkdir out; echo $(( $(date +%s) / ${STEP_S} )) > out/stamp`

describe('a rebuilder that checks jobs later', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({
      workers: [{}, {}, {}, { args: ['--sample', '1', '--rebuild-only', '--recheck-after', String(RECHECK_AFTER_S)] }],
      trust: [0, 1, 2, 3],
      threshold: 3
    })
  })

  afterAll(async () => { await cleanupAll() })

  it('turns an accepted time-embedding build into disputed, with the report', async () => {
    const rebuilder = net.workers[3]!.did
    const replicas = (v: RequestView): number => v.attestations.filter(a => a.worker !== rebuilder).length
    // should the replicas straddle a 10-second step (rare), the job is disputed at once: try a new build
    let first: RequestView | undefined
    for (let attempt = 0; attempt < 3 && first?.record.status !== 'accepted'; attempt++) {
      const { jobId } = await submitJob(net.requester, { label: `late-${process.pid}-${attempt}`, replicas: 3, ttlSeconds: 3600, script: SCRIPT })
      first = await viewUntil(net.requester, jobId, v => replicas(v) === 3 && v.record.status !== 'pending' && v.record.status !== 'provisional', 'the replicas settled the job')
    }
    expect(first?.record.status).toBe('accepted')
    // accepted on the replicas alone: the rebuilder had not built it yet
    expect(first!.attestations.some(a => a.worker === rebuilder)).toBe(false)
    const jobId = first!.record.jobId
    const accepted = first!.record.artifact!

    const v = await viewUntil(net.requester, jobId, v => v.record.status === 'disputed' && (v.record as { dispute?: unknown }).dispute != null, 'the rebuilder\'s dissent and the dispute report', 90_000)
    const check = v.attestations.find(a => a.worker === rebuilder)
    expect(check?.thisJob).toBe(true)
    expect(artifactOf(check!)).not.toBe(accepted)
    // the check came no earlier than --recheck-after allows (a lower bound the worker enforces, not a timing guess)
    expect(Date.parse(check!.finishedAt) - Date.parse(v.record.submittedAt)).toBeGreaterThanOrEqual(RECHECK_AFTER_S * 1000 - 1000)
    expect(v.record.history.map(h => h.status)).toEqual(expect.arrayContaining(['accepted', 'disputed']))
    expect(v.record.artifact).toBeUndefined()
    // the proof written at acceptance would still verify offline: it is set aside, not named
    expect(v.record.bundle).toBeUndefined()
    expect(v.record.revokedBundle).toMatch(/\.revoked\.car$/)
    expect(existsSync(v.record.revokedBundle!)).toBe(true)
    expect(v.record.reasons.join(' ')).toMatch(/built this job and got a different artifact/)
    expect(v.verdict?.dissent).toEqual([{ worker: rebuilder, artifact: artifactOf(check!) }])

    const status = await runConcur(['status', jobId], { home: net.requester.home, json: false })
    expect(status.code).toBe(3)
    expect(status.stdout).toMatch(/DISPUTED/)
    expect(status.stdout).not.toMatch(/^artifact/m)
  }, 240_000)
})
