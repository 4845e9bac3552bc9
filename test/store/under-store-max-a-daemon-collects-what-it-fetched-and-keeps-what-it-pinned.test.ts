import { afterAll, describe, expect, it } from 'vitest'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { keystream } from '../content/helpers.ts'
import type { StoreView } from '../../node/api/routes/store.ts'
import type { CollectResult } from '../../src/store/block-quota.ts'

interface Ready { peerId: string, multiaddrs: string[], api: string }
const MiB = 1024 * 1024

async function tree (size: number, seed: string): Promise<string> {
  const src = await tempDir()
  await mkdir(join(src, 'd'), { recursive: true })
  await writeFile(join(src, 'd', 'f.bin'), keystream(seed)(size))
  return src
}

// Nothing was ever deleted from a node's store. Now `--store-max`: after a
// fetch (and a build) over it, unpinned blocks go and their packs are
// rewritten so the disk is returned; what the node pinned never goes.
describe('a daemon with --store-max', () => {
  afterAll(async () => { await cleanupAll() })

  it('stays under it across fetches of unpinned trees, never collects what it pinned, and `concur gc` returns the rest', async () => {
    const a = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], { home: await tempDir() })
    const ra = await a.ready as unknown as Ready
    const home = await tempDir()
    const b = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', ra.multiaddrs[0] as string, '--store-max', '16M'], { home })
    const rb = await b.ready as unknown as Ready
    await waitFor(async () => (await api<{ peers: Array<{ peerId: string }> }>(rb.api, 'GET', '/v1/peers')).peers.some(x => x.peerId === ra.peerId), 'connected')

    // B's own content (pinned): 6 MiB
    const own = (await api<{ cid: string }>(rb.api, 'POST', '/v1/content/add', { path: await tree(6 * MiB, 'own') })).cid
    const cids: string[] = []
    for (let i = 0; i < 4; i++) cids.push((await api<{ cid: string }>(ra.api, 'POST', '/v1/content/add', { path: await tree(8 * MiB, `far${i}`) })).cid)
    for (const cid of cids) {
      await api(rb.api, 'POST', '/v1/content/get', { cid, out: join(await tempDir(), 'o'), timeoutMs: 60_000 })
      // the check after each fetch brings it back under the quota
      await waitFor(async () => (await api<StoreView>(rb.api, 'GET', '/v1/store')).diskBytes <= 16 * MiB, 'under --store-max')
      expect((await api<{ has: boolean }>(rb.api, 'GET', `/v1/store/blocks/${own}`)).has).toBe(true)
    }
    const view = await api<StoreView>(rb.api, 'GET', '/v1/store')
    expect(view.quotaBytes).toBe(16 * MiB)
    expect(view.pins).toBeGreaterThanOrEqual(1)

    // what `concur store` and `concur gc` say
    const shown = await runConcur(['store'], { home, json: false })
    expect(shown.stdout).toMatch(/quota +16\.0 MiB/)
    const gc = await runConcur(['gc'], { home })
    expect(gc.code).toBe(0)
    const r = gc.json() as CollectResult
    expect(r.after).toBeLessThanOrEqual(r.before)
    // only the pinned tree is left, and it is whole: it can be exported with its holder gone
    await a.kill()
    const after = await api<StoreView>(rb.api, 'GET', '/v1/store')
    expect(after.liveBytes).toBeGreaterThanOrEqual(6 * MiB)
    expect(after.liveBytes).toBeLessThan(7 * MiB)
    expect(after.diskBytes).toBeLessThan(7 * MiB)
    await api(rb.api, 'POST', '/v1/content/get', { cid: own, out: join(await tempDir(), 'mine'), timeoutMs: 10_000 })
  })
})
