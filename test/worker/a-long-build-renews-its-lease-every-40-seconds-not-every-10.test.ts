/**
 * Lease renewals scale with the build (issue 16, PROTOCOL.md §7 rule 1): a
 * worker renewed its claim every 10 s whatever the build, 360 claims for a
 * one-hour build (per replica, each verified by every node on the topic).
 * Now each claim's lease is a fifth of the build's expected duration (its
 * last build of the environment, or the time run so far), within 30 s..120 s,
 * and the next renewal comes a third of the lease later. Time is virtual
 * (vitest's fake timers and Date): the hour passes in a moment, and nothing
 * waits on the wall clock.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { LEASE_MS, MAX_LEASE_MS, generateSigningKey, takenSlots } from '../../protocol/index.ts'
import type { SignedClaim } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { inProcessWorker, jobOf } from './in-process-worker.ts'

const MiB = 1024 * 1024
const HOUR = 3_600_000
const LONG = { memoryBytes: 64 * MiB, cpus: 1, diskBytes: 16 * MiB, wallSeconds: 7200, processes: 64 }

/** the lease each claim ran until, in ms after the first claim */
const leases = (claims: SignedClaim[]): Array<{ at: number, until: number }> => {
  const t0 = Date.parse(claims[0]!.claim.issuedAt)
  return claims.map(c => ({ at: Date.parse(c.claim.issuedAt) - t0, until: Date.parse(c.claim.leaseUntil) - t0 }))
}

describe('a long build renews its lease a few times a lease, scaled to the build, not every 10 s', () => {
  afterEach(() => { vi.useRealTimers() })
  afterAll(async () => { await cleanupAll() })

  it('an hour-long build claims at most 113 times, and 91 once the worker has built that environment; the lease never lapses meanwhile', async () => {
    const src = await tempDir()
    await writeFile(join(src, 'label'), 'long build\n')
    // the worker's timers and clock are virtual from its creation (it reads Date.now as its clock)
    vi.useFakeTimers({ shouldAdvanceTime: true, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    const w = await inProcessWorker({ policy: { wallSeconds: LONG.wallSeconds }, init: { scanMs: 10 * 60_000 } })
    const source = (await addDirectory(w.blockstore, src)).cid.toString()
    const requester = generateSigningKey()
    const first = jobOf(requester, source, 1, {}, { resources: LONG })
    w.records.add(first)
    await w.worker.start()
    try {
      await w.until(() => w.inSandbox() === 1, 'the first build in the sandbox')
      await vi.advanceTimersByTimeAsync(HOUR)
      const mine = w.claims.filter(c => c.claim.jobId === first.jobId)
      // 360 at the fixed 10 s cadence
      expect(mine.length).toBeGreaterThan(80)
      expect(mine.length).toBeLessThanOrEqual(113)
      const ls = leases(mine)
      // the first claim is today's 30 s lease (nothing known yet); later ones grow with the run, up to MAX_LEASE_MS
      expect(ls[0]!.until).toBe(LEASE_MS)
      expect(Math.max(...ls.map(l => l.until - l.at))).toBe(MAX_LEASE_MS)
      // renewed before each lease ends, with room for two lost renewals
      for (let i = 0; i + 2 < ls.length; i++) expect(ls[i]!.until).toBeGreaterThan(ls[i + 2]!.at)
      expect(takenSlots(mine.map(c => c.claim), [], Date.now())).toBe(1)

      w.finish()
      await w.until(() => w.attestations.length === 1, 'the first build attested')
      const second = jobOf(requester, source, 2, {}, { resources: LONG })
      w.records.add(second)
      await w.until(() => w.inSandbox() === 1, 'the second build (same environment) in the sandbox')
      await vi.advanceTimersByTimeAsync(HOUR)
      const again = w.claims.filter(c => c.claim.jobId === second.jobId)
      // the environment's last build took an hour: a 120 s lease from the first claim, renewed every 40 s
      expect(again.length).toBeLessThanOrEqual(91)
      expect(leases(again).every(l => l.until - l.at === MAX_LEASE_MS)).toBe(true)
      w.finish()
      await w.until(() => w.attestations.length === 2, 'the second build attested')
    } finally {
      await w.worker.stop()
    }
  })
})
