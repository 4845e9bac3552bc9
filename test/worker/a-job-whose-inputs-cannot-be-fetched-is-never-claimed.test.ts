/**
 * Claim only once able to start (issue 13): a worker used to publish its
 * claim first and fetch the job's inputs after, so a job naming a source no
 * peer holds took a replica slot (and one of the volunteer's build slots)
 * for the whole fetch timeout, 120 s. Now the worker first fetches the root
 * block of the source (and of the rootfs) within a short bound; a job whose
 * inputs do not come is not claimed, and is tried again later, a bounded
 * number of times, before the worker gives it up.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { fakeTreeCid } from '../protocol/fixtures.ts'
import { inProcessWorker, jobOf } from './in-process-worker.ts'

describe('a job whose inputs cannot be fetched', () => {
  afterAll(async () => { await cleanupAll() })

  it('is never claimed: tried a bounded number of times, then given up', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50, inputProbeMs: 100, inputRetryMs: 20, maxInputProbes: 3 } })
    const job = jobOf(generateSigningKey(), fakeTreeCid(`held by nobody ${Math.random()}`), 1)
    w.records.add(job)
    await w.worker.start()
    try {
      await w.until(() => w.claimedJobs().length > 0 || w.events.some(e => e.type === 'job:declined' && e.jobId === job.jobId), 'a claim, or the worker giving the job up')
      // (what it published are releases saying why: a-worker-tells-why-it-is-not-building-with-a-signed-release)
      expect(w.claimedJobs()).toEqual([])
      // tried again after each failed probe but the last (the retries are bounded)
      expect(w.events.filter(e => e.type === 'job:inputs-unavailable' && e.jobId === job.jobId)).toHaveLength(2)
      expect(w.events.find(e => e.type === 'job:declined')).toMatchObject({ jobId: job.jobId, reason: expect.stringMatching(/could not be fetched/) as string })
    } finally {
      await w.worker.stop()
    }
  })

  it('a rootfs no peer holds keeps the job unclaimed too, and a source that turns up later is claimed at a retry', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50, inputProbeMs: 100, inputRetryMs: 20, maxInputProbes: 100 } })
    const src = await tempDir()
    await writeFile(join(src, 'label'), 'late source\n')
    const late = await addDirectory(new (await import('blockstore-core/memory')).MemoryBlockstore(), src)
    const requester = generateSigningKey()
    const rootfsJob = jobOf(requester, late.cid.toString(), 1, { environment: { kind: 'rootfs', rootfs: fakeTreeCid(`rootfs held by nobody ${Math.random()}`), platform: 'linux/amd64' } })
    const job = jobOf(requester, late.cid.toString(), 2)
    w.records.add(rootfsJob)
    w.records.add(job)
    await w.worker.start()
    try {
      await w.until(() => w.claimedJobs().length > 0 || w.events.some(e => e.type === 'job:inputs-unavailable' && e.jobId === job.jobId), 'a claim, or a failed probe of the source')
      expect(w.claimedJobs()).toEqual([])
      // the source turns up (a requester that was offline comes back)
      await addDirectory(w.blockstore, src)
      await w.until(() => w.claimedJobs().includes(job.jobId), 'the job claimed once its source can be had')
      expect(w.claimedJobs()).toEqual([job.jobId])
      expect(w.events.some(e => e.type === 'job:inputs-unavailable' && e.jobId === rootfsJob.jobId)).toBe(true)
    } finally {
      await w.worker.stop()
    }
  })
})
