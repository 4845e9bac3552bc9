/**
 * Fair scheduling and per-requester limits in the worker (issue 13): one
 * requester announcing 1,000 jobs used to take every build slot, in store
 * order, for as long as its jobs lasted. Now a worker picks the next job
 * round-robin over requesters (the least recently served first), never
 * lets one requester hold every slot while others wait, and starts at most
 * so many builds per requester per hour. In process, on fakes (see
 * in-process-worker.ts): each build ends when the test says.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { inProcessWorker, jobOf } from './in-process-worker.ts'
import type { InProcessWorker } from './in-process-worker.ts'

const FLOOD = 1000

async function withSource (w: InProcessWorker): Promise<string> {
  const src = await tempDir()
  await writeFile(join(src, 'label'), 'fair\n')
  return (await addDirectory(w.blockstore, src)).cid.toString()
}

describe('a worker serves requesters in turn', () => {
  afterAll(async () => { await cleanupAll() })

  it(`one slot: after ${FLOOD} jobs of one requester, another requester's job is the next one started`, async () => {
    const w = await inProcessWorker({ init: { scanMs: 50 } })
    const source = await withSource(w)
    const flooder = generateSigningKey()
    const flood = Array.from({ length: FLOOD }, (_, i) => jobOf(flooder, source, i))
    for (const j of flood) w.records.add(j)
    await w.worker.start()
    try {
      await w.until(() => w.inSandbox() === 1, 'the first flood build')
      const before = w.claimedJobs().length
      const honest = jobOf(generateSigningKey(), source, 0)
      w.records.add(honest)
      // end builds one at a time (bounded) until the honest job is claimed
      for (let i = 0; i < 10 && !w.claimedJobs().includes(honest.jobId); i++) {
        w.finish()
        await w.until(() => w.inSandbox() === 1 || w.claimedJobs().includes(honest.jobId), 'the next build')
      }
      const order = w.claimedJobs()
      const floodAfter = order.slice(before, order.includes(honest.jobId) ? order.indexOf(honest.jobId) : order.length)
      // the round-robin rule: with one slot, at most one flood job (the one
      // being started when the honest job arrived) goes before it
      expect(order).toContain(honest.jobId)
      expect(floodAfter.length).toBeLessThanOrEqual(1)
    } finally {
      await w.worker.stop()
    }
  })

  it('three slots: one requester takes at most two while the third waits for anyone else', async () => {
    const w = await inProcessWorker({ policy: { maxConcurrent: 3 }, init: { scanMs: 50 } })
    const source = await withSource(w)
    const flooder = generateSigningKey()
    for (let i = 0; i < 50; i++) w.records.add(jobOf(flooder, source, i))
    await w.worker.start()
    try {
      await w.until(() => w.inSandbox() >= 2, 'the flood taking two slots')
      const honest = jobOf(generateSigningKey(), source, 0)
      w.records.add(honest)
      await w.until(() => w.claimedJobs().includes(honest.jobId), 'the honest job claimed')
      // no build ended: the honest job got the slot the flood was never given
      expect(w.claimedJobs().filter(j => j !== honest.jobId)).toHaveLength(2)
    } finally {
      await w.worker.stop()
    }
  })

  it('at most maxPerRequesterPerHour builds of one requester start in an hour; the hour passing lets the next start', async () => {
    let clock = Date.now()
    const w = await inProcessWorker({ policy: { maxPerRequesterPerHour: 3 }, init: { scanMs: 50, now: () => clock } })
    const source = await withSource(w)
    const flooder = generateSigningKey()
    for (let i = 0; i < 10; i++) w.records.add(jobOf(flooder, source, i))
    await w.worker.start()
    try {
      for (let i = 1; i <= 3; i++) {
        await w.until(() => w.inSandbox() === 1, `flood build ${i}`)
        w.finish()
      }
      // the slot is free and seven flood jobs wait: the next start is someone else's
      const honest = jobOf(generateSigningKey(), source, 0)
      w.records.add(honest)
      await w.until(() => w.claimedJobs().includes(honest.jobId), 'the honest job claimed')
      expect(w.claimedJobs()).toHaveLength(4)
      await w.until(() => w.inSandbox() === 1, 'the honest build')
      w.finish()
      clock += 61 * 60_000
      await w.until(() => w.claimedJobs().length === 5, 'a fourth flood build, an hour later')
    } finally {
      await w.worker.stop()
    }
  })
})
