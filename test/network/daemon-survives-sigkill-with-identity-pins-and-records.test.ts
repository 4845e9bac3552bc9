import { afterAll, describe, expect, it } from 'vitest'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { signedJob } from '../helpers/fixtures.ts'

interface Ready { peerId: string, did: string, multiaddrs: string[], api: string }

describe('a daemon killed with SIGKILL and restarted on the same home', () => {
  afterAll(async () => { await cleanupAll() })

  it('keeps its peer id, did:key, pinned content and the jobs it had received', async () => {
    const home = await tempDir()
    const first = startConcur(['daemon'], { home })
    const r1 = await first.ready as unknown as Ready

    const src = await tempDir()
    await mkdir(join(src, 'd'))
    await writeFile(join(src, 'd', 'f.txt'), 'persist me\n')
    const added = await api<{ cid: string }>(r1.api, 'POST', '/v1/content/add', { path: src })
    const job = signedJob()
    await api(r1.api, 'POST', '/v1/gossip/publish', { kind: 'job', envelope: job.envelope })
    await waitFor(async () => (await api<{ jobs: Array<{ jobId: string }> }>(r1.api, 'GET', '/v1/jobs')).jobs.some(j => j.jobId === job.jobId), 'job stored')

    // no chance to clean up: the stores must already hold everything
    first.child.kill('SIGKILL')
    await first.exited

    const second = startConcur(['daemon'], { home })
    const r2 = await second.ready as unknown as Ready
    expect(r2.peerId).toBe(r1.peerId)
    expect(r2.did).toBe(r1.did)
    const pins = await api<{ pins: string[] }>(r2.api, 'GET', '/v1/pins')
    expect(pins.pins).toContain(added.cid)
    const jobs = await api<{ jobs: Array<{ jobId: string }> }>(r2.api, 'GET', '/v1/jobs')
    expect(jobs.jobs.map(j => j.jobId)).toContain(job.jobId)
    // the pinned content is still readable from the restarted node's store
    const out = join(await tempDir(), 'out')
    await api(r2.api, 'POST', '/v1/content/get', { cid: added.cid, out, timeoutMs: 5000 })
    const id = await runConcur(['id'], { home })
    expect(id.json()).toMatchObject({ did: r1.did, peerId: r1.peerId })
    await second.kill()
  })

  it('a corrupt config is reported with the file name, and a port in use with a clear message', async () => {
    const home = await tempDir()
    expect((await runConcur(['init'], { home })).code).toBe(0)
    await writeFile(join(home, 'config.json'), '{ not json')
    const bad = await runConcur(['daemon', '--no-init'], { home })
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain(join(home, 'config.json'))

    const home2 = await tempDir()
    const holder = startConcur(['daemon'], { home: home2 })
    const r = await holder.ready as unknown as Ready
    const port = (r.multiaddrs[0] as string).split('/')[4] as string
    const home3 = await tempDir()
    const clash = await runConcur(['daemon', '--listen', `/ip4/127.0.0.1/tcp/${port}`], { home: home3 })
    expect(clash.code).not.toBe(0)
    expect(clash.stderr).toMatch(/address already in use/)
    const apiClash = await runConcur(['daemon', '--api', r.api], { home: home3 })
    expect(apiClash.code).not.toBe(0)
    expect(apiClash.stderr).toMatch(/address already in use: API/)
  })
})
