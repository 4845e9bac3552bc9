import { afterAll, describe, expect, it } from 'vitest'
import { createHash, randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, apiHeaders, cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import type { ConcurProcess } from '../helpers/processes.ts'
import { keystream } from '../content/helpers.ts'
import type { EventsResponse, StatsResponse } from '../../node/api/types.ts'
import type { StoreView } from '../../node/api/routes/store.ts'

interface Ready { peerId: string, multiaddrs: string[], api: string }
const MiB = 1024 * 1024

async function tree (files: number, size: number, seed: string): Promise<string> {
  const src = await tempDir()
  await mkdir(join(src, 'd'), { recursive: true })
  for (let i = 0; i < files; i++) await writeFile(join(src, 'd', `f${i}.bin`), keystream(`${seed}${i}`)(size))
  return src
}

async function sameTree (a: string, b: string, files: number): Promise<boolean> {
  for (let i = 0; i < files; i++) {
    const [x, y] = await Promise.all([readFile(join(a, 'd', `f${i}.bin`)), readFile(join(b, 'd', `f${i}.bin`))])
    if (!createHash('sha256').update(x).digest().equals(createHash('sha256').update(y).digest())) return false
  }
  return true
}

// The pack store acknowledges a block only once it is durable, and cuts a torn
// tail on open (test/store/pack-store-sigkilled-…). Here, whole daemons: killed
// with SIGKILL in the middle of `concur add` and of `concur get`, restarted on
// the same home, they open without error and the content completes exact.
describe('a daemon killed with SIGKILL mid-import and mid-fetch', () => {
  afterAll(async () => { await cleanupAll() })

  it('mid-import: restarts, and adding the tree again gives the CID a clean node gives', async () => {
    const src = await tree(8, 8 * MiB, 'imp')
    const clean = startConcur(['daemon'], { home: await tempDir() })
    const expected = (await api<{ cid: string }>((await clean.ready as unknown as Ready).api, 'POST', '/v1/content/add', { path: src })).cid
    await clean.kill()

    const home = await tempDir()
    const d = startConcur(['daemon'], { home })
    const r = await d.ready as unknown as Ready
    // the add runs; it is killed once some of it is on disk
    const adding = fetch(`http://${r.api}/v1/content/add`, { method: 'POST', headers: apiHeaders(r.api, 'POST'), body: JSON.stringify({ path: src }) }).catch(() => undefined)
    await waitFor(async () => (await api<StoreView>(r.api, 'GET', '/v1/store')).diskBytes > 4 * MiB, 'part of the import on disk', 60_000)
    d.child.kill('SIGKILL')
    await d.exited
    await adding

    const again = startConcur(['daemon'], { home })
    const r2 = await again.ready as unknown as Ready
    const added = await api<{ cid: string }>(r2.api, 'POST', '/v1/content/add', { path: src })
    expect(added.cid).toBe(expected)
    const out = join(await tempDir(), 'out')
    await api(r2.api, 'POST', '/v1/content/get', { cid: added.cid, out, timeoutMs: 60_000 })
    expect(await sameTree(src, out, 8)).toBe(true)
    await again.kill()
  })

  it('mid-fetch: restarts, fetches what it lacks, and what it then serves to a third node is exact', async () => {
    const src = await tree(6, 8 * MiB, 'get')
    const a = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], { home: await tempDir() })
    const ra = await a.ready as unknown as Ready
    const cid = (await api<{ cid: string }>(ra.api, 'POST', '/v1/content/add', { path: src })).cid

    const home = await tempDir()
    const start = async (): Promise<{ p: ConcurProcess, r: Ready }> => {
      const p = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', ra.multiaddrs[0] as string], { home })
      const r = await p.ready as unknown as Ready
      await waitFor(async () => (await api<{ peers: Array<{ peerId: string }> }>(r.api, 'GET', '/v1/peers')).peers.some(x => x.peerId === ra.peerId), 'connected to the holder')
      return { p, r }
    }
    const b = await start()
    // the fetch runs; it is killed at its first progress report (its root is in, the rest is coming)
    const id = randomUUID()
    const getting = fetch(`http://${b.r.api}/v1/content/get`, { method: 'POST', headers: apiHeaders(b.r.api, 'POST'), body: JSON.stringify({ cid, out: join(await tempDir(), 'cut'), timeoutMs: 60_000, progressId: id }) }).catch(() => undefined)
    const first = await api<EventsResponse>(b.r.api, 'GET', `/v1/events?after=0&wait=30000&progress=${id}`)
    expect(first.events.length).toBeGreaterThan(0)
    b.p.child.kill('SIGKILL')
    await b.p.exited
    await getting

    const b2 = await start()
    const out = join(await tempDir(), 'out')
    await api(b2.r.api, 'POST', '/v1/content/get', { cid, out, timeoutMs: 60_000 })
    expect(await sameTree(src, out, 6)).toBe(true)
    const stats = await api<StatsResponse>(b2.r.api, 'GET', '/v1/stats')
    expect(stats.dag.fetched.complete).toBe(1)

    // what the restarted node holds is served block by block to a third node, which checks each against its CID
    await a.kill()
    const c = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', b2.r.multiaddrs[0] as string], { home: await tempDir() })
    const rc = await c.ready as unknown as Ready
    await waitFor(async () => (await api<{ peers: Array<{ peerId: string }> }>(rc.api, 'GET', '/v1/peers')).peers.some(x => x.peerId === b2.r.peerId), 'C connected to B')
    const out2 = join(await tempDir(), 'out2')
    await api(rc.api, 'POST', '/v1/content/get', { cid, out: out2, timeoutMs: 60_000 })
    expect(await sameTree(src, out2, 6)).toBe(true)
    const cs = await api<StatsResponse>(rc.api, 'GET', '/v1/stats')
    expect(cs.dag.fetched.complete).toBe(1)
  })
})
