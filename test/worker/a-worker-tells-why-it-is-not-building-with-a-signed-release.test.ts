/**
 * Failures reach the requester (issue 18): a worker that declined a job, or
 * could not fetch its inputs, or gave a build up, said so only in its own
 * event stream; the requester saw "pending" until the job expired. Now it
 * publishes a signed release (PROTOCOL.md §5.3, §7 rule 6): a claim with a
 * higher seq than its others, carrying the kind and the reason, which takes
 * no replica slot. Declines are said aloud only on jobs that name the worker
 * in `builders`, and a worker publishes at most RELEASES_PER_MINUTE.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { MAX_RELEASE_REASON, generateSigningKey, takenSlots } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { RELEASES_PER_MINUTE, RELEASES_PER_REQUESTER_PER_MINUTE, releaseReason } from '../../src/worker/worker.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { fakeTreeCid } from '../protocol/fixtures.ts'
import { inProcessWorker, jobOf } from './in-process-worker.ts'

const MiB = 1024 * 1024

async function sourceIn (bs: MemoryBlockstore, label: string): Promise<string> {
  const src = await tempDir()
  await writeFile(join(src, 'label'), `${label}\n`)
  return (await addDirectory(bs, src)).cid.toString()
}

describe('a worker tells why it is not building a job, with a signed release', () => {
  afterAll(async () => { await cleanupAll() })

  it('declines aloud a job that names it and asks too much; a job naming no builders is declined silently', async () => {
    const w = await inProcessWorker({ policy: { cpus: 1 }, init: { scanMs: 50 } })
    const requester = generateSigningKey()
    const source = await sourceIn(w.blockstore, 'declined')
    const tooBig = { memoryBytes: 64 * MiB, cpus: 2, diskBytes: 16 * MiB, wallSeconds: 60, processes: 64 }
    const named = jobOf(requester, source, 1, {}, { resources: tooBig, builders: [w.key.did] })
    const open = jobOf(requester, source, 2, {}, { resources: tooBig })
    w.records.add(open)
    w.records.add(named)
    await w.worker.start()
    try {
      await w.until(() => w.events.filter(e => e.type === 'job:declined').length === 2, 'both jobs declined')
      await w.until(() => w.claims.some(c => c.claim.jobId === named.jobId), 'the release of the job that names it')
      const released = w.claims.filter(c => c.claim.jobId === named.jobId)
      expect(released).toHaveLength(1)
      expect(released[0]?.claim.release).toEqual({ kind: 'declined', reason: 'asks for more than this volunteer allows: cpus 2 > 1' })
      // signed by the worker, as any claim
      expect(released[0]?.claim.worker).toBe(w.key.did)
      expect(w.claims.filter(c => c.claim.jobId === open.jobId)).toEqual([])
    } finally {
      await w.worker.stop()
    }
  })

  it('says, at each failed probe, that the inputs did not come, and at the last that it will not try again', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50, inputProbeMs: 100, inputRetryMs: 20, maxInputProbes: 3 } })
    const requester = generateSigningKey()
    const job = jobOf(requester, fakeTreeCid(`held by nobody ${Math.random()}`), 1, {}, { builders: [w.key.did] })
    // the same on a job naming no builders: given up as well, but not said aloud (every worker would say it, each try)
    const open = jobOf(requester, fakeTreeCid(`held by nobody either ${Math.random()}`), 2)
    w.records.add(open)
    w.records.add(job)
    await w.worker.start()
    try {
      await w.until(() => [job, open].every(j => w.events.some(e => e.type === 'job:declined' && e.jobId === j.jobId)), 'the worker giving both jobs up')
      await w.until(() => w.claims.length === 3, 'three releases')
      expect(w.claims.every(c => c.claim.jobId === job.jobId)).toBe(true)
      const releases = w.claims.map(c => c.claim.release)
      expect(releases.map(r => r?.kind)).toEqual(['inputs-unavailable', 'inputs-unavailable', 'inputs-unavailable'])
      expect(releases[0]?.reason).toMatch(/^the source \S+ could not be fetched: no peer delivered its root block within 100 ms \(try 1 of 3; trying again in 0 s\)$/)
      expect(releases[2]?.reason).toMatch(/\(tried 3 times; not trying again\)$/)
      // never a claim that takes a slot
      expect(takenSlots(w.claims.map(c => c.claim), [], Date.now())).toBe(0)
      // each newer than the last
      const seqs = w.claims.map(c => c.claim.seq)
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)
      expect(new Set(seqs).size).toBe(3)
    } finally {
      await w.worker.stop()
    }
  })

  it('releases a claimed job whose rootfs stops coming mid-fetch: its slot is free at once, not when its lease lapses', async () => {
    const w = await inProcessWorker({ init: { scanMs: 50, fetchTimeoutMs: 200 } })
    const source = await sourceIn(w.blockstore, 'mid-fetch')
    // a rootfs whose root block is held (the probe passes) but whose files are not
    const elsewhere = new MemoryBlockstore()
    const dir = await tempDir()
    await mkdir(join(dir, 'bin'))
    await writeFile(join(dir, 'bin', 'tool'), 'x'.repeat(4096))
    const rootfs = await addDirectory(elsewhere, dir)
    for await (const block of elsewhere.get(rootfs.cid)) await w.blockstore.put(rootfs.cid, block)
    const job = jobOf(generateSigningKey(), source, 1, { environment: { kind: 'rootfs', rootfs: rootfs.cid.toString(), platform: 'linux/amd64' } })
    w.records.add(job)
    await w.worker.start()
    try {
      await w.until(() => w.claims.some(c => c.claim.release != null), 'a release after the failed fetch')
      const mine = w.claims.filter(c => c.claim.jobId === job.jobId)
      const last = mine[mine.length - 1]?.claim
      expect(last?.release?.kind).toBe('inputs-unavailable')
      expect(last?.release?.reason).toMatch(new RegExp(`^could not fetch the rootfs ${rootfs.cid.toString()}: no peer delivered it within 200 ms`))
      // the release is the worker's newest claim: its lease is live, yet the slot is free
      expect(mine.every(c => c.claim === last || c.claim.seq < (last?.seq ?? 0))).toBe(true)
      expect(Date.parse(last?.leaseUntil ?? '')).toBeGreaterThan(Date.now())
      expect(takenSlots(mine.map(c => c.claim), [], Date.now())).toBe(0)
      expect(w.events.some(e => e.type === 'build:abandoned' && e.jobId === job.jobId)).toBe(true)
    } finally {
      await w.worker.stop()
    }
  })

  it(`publishes at most ${RELEASES_PER_REQUESTER_PER_MINUTE} releases at once for one requester: its flood of jobs does not use up the others' releases`, async () => {
    const w = await inProcessWorker({ policy: { cpus: 1 }, init: { scanMs: 50 } })
    const flooder = generateSigningKey()
    const other = generateSigningKey()
    const source = await sourceIn(w.blockstore, 'one requester')
    const tooBig = { memoryBytes: 64 * MiB, cpus: 2, diskBytes: 16 * MiB, wallSeconds: 60, processes: 64 }
    for (let i = 0; i < 25; i++) w.records.add(jobOf(flooder, source, i, {}, { resources: tooBig, builders: [w.key.did] }))
    const theirs = jobOf(other, source, 100, {}, { resources: tooBig, builders: [w.key.did] })
    w.records.add(theirs)
    await w.worker.start()
    try {
      await w.until(() => w.events.filter(e => e.type === 'job:released' || e.type === 'job:release-suppressed').length === 26, 'every release published or suppressed')
      const byFlooder = w.claims.filter(c => c.claim.jobId !== theirs.jobId).length
      expect(byFlooder).toBeGreaterThanOrEqual(RELEASES_PER_REQUESTER_PER_MINUTE)
      expect(byFlooder).toBeLessThan(RELEASES_PER_REQUESTER_PER_MINUTE + 3)
      expect(w.claims.filter(c => c.claim.jobId === theirs.jobId)).toHaveLength(1)
    } finally {
      await w.worker.stop()
    }
  })

  it(`publishes at most ${RELEASES_PER_MINUTE} releases at once in all: a flood of jobs it declines is not answered by a flood`, async () => {
    const w = await inProcessWorker({ policy: { cpus: 1 }, init: { scanMs: 50 } })
    const requesters = Array.from({ length: 5 }, () => generateSigningKey())
    const source = await sourceIn(w.blockstore, 'flood')
    const tooBig = { memoryBytes: 64 * MiB, cpus: 2, diskBytes: 16 * MiB, wallSeconds: 60, processes: 64 }
    const n = RELEASES_PER_MINUTE + 20
    for (let i = 0; i < n; i++) w.records.add(jobOf(requesters[i % 5]!, source, i, {}, { resources: tooBig, builders: [w.key.did] }))
    await w.worker.start()
    try {
      await w.until(() => w.events.filter(e => e.type === 'job:declined').length === n, `all ${n} jobs declined`)
      await w.until(() => w.events.filter(e => e.type === 'job:released' || e.type === 'job:release-suppressed').length === n, 'every release published or suppressed')
      // within the minute the bucket refills by less than one per two seconds: a test taking a few seconds may gain one or two
      expect(w.claims.length).toBeGreaterThanOrEqual(RELEASES_PER_MINUTE)
      expect(w.claims.length).toBeLessThan(RELEASES_PER_MINUTE + 5)
      expect(w.events.filter(e => e.type === 'job:release-suppressed').length).toBe(n - w.claims.length)
    } finally {
      await w.worker.stop()
    }
  })

  it('a reason goes out whole-charactered, without NUL, within the limit and without this machine\'s paths', () => {
    const emoji = '😀'
    const long = 'x'.repeat(MAX_RELEASE_REASON - 2) + emoji + emoji
    const cut = releaseReason(long)
    // what the claim checks: UTF-16 units
    expect(cut.length).toBeLessThanOrEqual(MAX_RELEASE_REASON)
    expect(cut.isWellFormed()).toBe(true)
    expect(cut.endsWith('…')).toBe(true)
    expect(releaseReason('a\u0000b')).toBe('ab')
    expect(releaseReason('cannot read /tmp/concur-sandbox-0/work-1-abc/job/x in /home/vol', { workDir: '/tmp/concur-sandbox-0/work-1-abc', home: '/home/vol' })).toBe('cannot read <work>/job/x in ~')
    expect(releaseReason('')).toBe('no reason given')
    // a lone surrogate (a cut in the middle of a pair) would make the claim refuse the reason
    expect(releaseReason('ab\ud83d').isWellFormed()).toBe(true)
  })
})
