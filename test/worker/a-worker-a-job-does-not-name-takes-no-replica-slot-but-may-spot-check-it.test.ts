/**
 * A job that names its builders (PROTOCOL.md §5.1, §7 rule 3) is built as a
 * replica only by them: a worker the job does not name never claims a replica
 * slot on it (its build could never count for that requester, and its claim
 * would count for no one), while a job naming it, or naming no one, is built
 * as before. A rebuilder's spot check is not a replica, so it still checks a
 * job that does not name it. In process, on fakes (see in-process-worker.ts).
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createJobAnnouncement, generateSigningKey } from '../../protocol/index.ts'
import type { SignedJob, SigningKey } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { inProcessWorker } from './in-process-worker.ts'
import type { InProcessWorker } from './in-process-worker.ts'

const MiB = 1024 * 1024

async function withSource (w: InProcessWorker): Promise<string> {
  const src = await tempDir()
  await writeFile(join(src, 'label'), 'builders\n')
  return (await addDirectory(w.blockstore, src)).cid.toString()
}

function jobNaming (requester: SigningKey, source: string, n: number, builders: string[] | undefined): SignedJob {
  const t = Date.now()
  return createJobAnnouncement({
    definition: { version: 1, source, environment: { kind: 'host', platform: 'linux/amd64' }, command: ['sh', '-c', `echo ${n}`], env: { SOURCE_DATE_EPOCH: '1700000000' }, output: 'out' },
    requester: requester.did,
    replicas: 1,
    ...(builders !== undefined ? { builders } : {}),
    resources: { memoryBytes: 64 * MiB, cpus: 1, diskBytes: 16 * MiB, wallSeconds: 60, processes: 64 },
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + 3_600_000).toISOString()
  }, requester)
}

describe('job builders, as a worker sees them', () => {
  afterAll(async () => { await cleanupAll() })

  it('a worker claims no replica slot on a job naming other keys, and builds the ones naming it or no one', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50 } })
    const source = await withSource(w)
    const requester = generateSigningKey()
    const others = [generateSigningKey().did, generateSigningKey().did]
    // one requester's jobs are taken in the order heard: the job naming others comes up first
    const notMine = jobNaming(requester, source, 1, others)
    const mine = jobNaming(requester, source, 2, [...others, w.key.did])
    const open = jobNaming(requester, source, 3, undefined)
    w.records.add(notMine)
    w.records.add(mine)
    w.records.add(open)
    await w.worker.start()
    try {
      // one build slot: the first build is the first job this worker may replicate
      await w.until(() => w.inSandbox() === 1, 'a first build')
      expect(w.claimedJobs()).toEqual([mine.jobId])
      w.finish()
      await w.until(() => w.claimedJobs().includes(open.jobId) && w.inSandbox() === 1, 'the open job claimed and building')
      w.finish()
      // the job naming others had its turn first, and more scans since
      expect(w.claimedJobs()).toEqual([mine.jobId, open.jobId])
      expect(w.claims.every(c => c.claim.purpose === undefined)).toBe(true)
    } finally {
      await w.worker.stop()
    }
  })

  it('a rebuilder still spot-checks a job that does not name it', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50, rebuild: { requesters: [], sample: 1, only: true } } })
    const source = await withSource(w)
    const notMine = jobNaming(generateSigningKey(), source, 4, [generateSigningKey().did])
    w.records.add(notMine)
    await w.worker.start()
    try {
      await w.until(() => w.claimedJobs().includes(notMine.jobId) && w.inSandbox() === 1, 'the spot check claimed and building')
      expect(w.claims.filter(c => c.claim.jobId === notMine.jobId).every(c => c.claim.purpose === 'spot-check')).toBe(true)
      w.finish()
    } finally {
      await w.worker.stop()
    }
  })
})
