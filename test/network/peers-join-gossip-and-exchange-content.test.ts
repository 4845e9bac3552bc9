import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import type { ConcurProcess } from '../helpers/processes.ts'
import { signedJob, wronglySignedJob } from '../helpers/fixtures.ts'
import { JOBS_TOPIC } from '../../src/net/topics.ts'

interface Ready { peerId: string, multiaddrs: string[], api: string }

describe('a bootstrap node and three daemons as separate processes on loopback', () => {
  let boot: ConcurProcess
  const daemons: ConcurProcess[] = []
  const ready: Ready[] = []

  beforeAll(async () => {
    boot = startConcur(['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { home: await tempDir() })
    const b = await boot.ready as unknown as Ready
    const bootAddr = b.multiaddrs[0] as string
    expect(bootAddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    for (let i = 0; i < 3; i++) {
      // the first one plays a hostile peer with the test-only publish-raw route
      daemons.push(startConcur(['daemon', ...(i === 0 ? ['--enable-test-routes'] : []), '--bootstrap', bootAddr], { home: await tempDir() }))
    }
    for (const d of daemons) ready.push(await d.ready as unknown as Ready)
  })

  afterAll(async () => { await cleanupAll() })

  it('every daemon finds the other two through the bootstrap node alone', async () => {
    for (const [i, r] of ready.entries()) {
      const others = ready.filter((_, j) => j !== i).map(o => o.peerId)
      await waitFor(async () => {
        const p = await api<{ peers: Array<{ peerId: string }> }>(r.api, 'GET', '/v1/peers')
        const connected = new Set(p.peers.map(x => x.peerId))
        return others.every(o => connected.has(o))
      }, `daemon ${i} connected to both other daemons`)
    }
  })

  it('a signed job announcement published on one daemon reaches the other two', async () => {
    const [a, b, c] = ready as [Ready, Ready, Ready]
    // wait for the gossip mesh: every daemon sees the others subscribed to the jobs topic
    await waitFor(async () => {
      const p = await api<{ subscribers: { jobs: string[] } }>(a.api, 'GET', '/v1/peers')
      return p.subscribers.jobs.includes(b.peerId) && p.subscribers.jobs.includes(c.peerId)
    }, 'jobs-topic subscriptions')
    const job = signedJob()
    await api(a.api, 'POST', '/v1/gossip/publish', { kind: 'job', envelope: job.envelope })
    for (const r of [b, c]) {
      await waitFor(async () => {
        const j = await api<{ jobs: Array<{ jobId: string }> }>(r.api, 'GET', '/v1/jobs')
        return j.jobs.some(x => x.jobId === job.jobId)
      }, `job on ${r.peerId}`)
    }
  })

  it('a directory added on one daemon is fetched by CID on another, byte-identical, symlinks kept as links', async () => {
    const [a, , c] = ready as [Ready, Ready, Ready]
    const src = await tempDir()
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true })
    await writeFile(join(src, 'a.txt'), 'alpha\n')
    await writeFile(join(src, 'sub', 'b.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7))
    await writeFile(join(src, 'sub', 'deeper', 'empty'), '')
    await symlink('../a.txt', join(src, 'sub', 'link-to-a'))
    await symlink('/etc/passwd', join(src, 'outside'))
    const added = await api<{ cid: string }>(a.api, 'POST', '/v1/content/add', { path: src })
    const out = join(await tempDir(), 'fetched')
    await api(c.api, 'POST', '/v1/content/get', { cid: added.cid, out, timeoutMs: 60_000 })
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('alpha\n')
    expect(Buffer.compare(await readFile(join(out, 'sub', 'b.bin')), Buffer.alloc(3 * 1024 * 1024 + 17, 7))).toBe(0)
    expect(await readFile(join(out, 'sub', 'deeper', 'empty'), 'utf8')).toBe('')
    expect(await readlink(join(out, 'sub', 'link-to-a'))).toBe('../a.txt')
    expect(await readlink(join(out, 'outside'))).toBe('/etc/passwd')
    expect((await readdir(out)).sort()).toEqual(['a.txt', 'outside', 'sub'])

    // a fetch larger than its cap fails with a clear error and leaves nothing behind
    const [, b] = ready as [Ready, Ready]
    const capped = join(await tempDir(), 'capped')
    await expect(api(b.api, 'POST', '/v1/content/get', { cid: added.cid, out: capped, maxBytes: 1024 * 1024 })).rejects.toThrow(/413/)
    const res = await runConcur(['get', added.cid, '-o', capped, '--max-bytes', '1048576'], { home: daemons[1]!.home })
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/1048576|too large|exceed/i)
  })

  it('a CID that no peer has ends in a clear timeout error', async () => {
    const [, b] = ready as [Ready, Ready]
    const missing = 'bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba'
    const res = await runConcur(['get', missing, '-o', join(await tempDir(), 'x'), '--timeout', '2'], { home: daemons[1]!.home })
    expect(res.code).not.toBe(0)
    expect(res.stderr).toMatch(/within 2000 ms/)
    expect(b).toBeDefined()
  })

  it('a malformed and a wrongly signed message are rejected and never delivered to the application', async () => {
    const [a, b, c] = ready as [Ready, Ready, Ready]
    const before = await Promise.all([b, c].map(async r => await api<{ gossip: { rejected: number } }>(r.api, 'GET', '/v1/stats')))
    const jobsBefore = await Promise.all([b, c].map(async r => (await api<{ jobs: unknown[] }>(r.api, 'GET', '/v1/jobs')).jobs.length))
    const malformed = Buffer.from('{"payload": "not base64 !!", "payloadType": 7')
    const forged = Buffer.from(JSON.stringify(wronglySignedJob()))
    await api(a.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: malformed.toString('base64') })
    await api(a.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: forged.toString('base64') })
    for (const [i, r] of [b, c].entries()) {
      const stats = await waitFor(async () => {
        const s = await api<{ gossip: { rejected: number, lastRejections: Array<{ code: string }> } }>(r.api, 'GET', '/v1/stats')
        return s.gossip.rejected >= before[i]!.gossip.rejected + 2 ? s : null
      }, 'both bad messages rejected')
      const codes = stats.gossip.lastRejections.map(x => x.code)
      expect(codes).toContain('ERR_BAD_SIGNATURE')
      expect(codes.some(c => c === 'ERR_MALFORMED' || c === 'ERR_SCHEMA')).toBe(true)
      const jobs = (await api<{ jobs: unknown[] }>(r.api, 'GET', '/v1/jobs')).jobs.length
      expect(jobs).toBe(jobsBefore[i])
    }
  })
})
