/**
 * The worker's environment cache (src/worker/env-cache.ts): a rootfs named by
 * CID is exported once, shared by every job naming it (two jobs at once
 * export it once), kept across restarts, never half-written (a partial left
 * by a crash is removed at start), and bounded: least recently used entries
 * not in use go once the cache is over its bytes. Before it, each job
 * exported its environment anew into its own work directory.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { CID } from 'multiformats/cid'
import { afterAll, describe, expect, it } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
import { EnvCache } from '../../src/worker/env-cache.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'

/** a block store that counts the blocks read from it */
class CountingBlockstore extends MemoryBlockstore {
  reads = 0
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    this.reads++
    yield * super.get(cid, options)
  }
}

async function envTree (bs: MemoryBlockstore, label: string, bytes: number): Promise<string> {
  const dir = await tempDir('concur-env-tree-')
  await mkdir(join(dir, 'bin'))
  await writeFile(join(dir, 'bin', 'tool'), `${label}\n${'x'.repeat(bytes)}`, { mode: 0o755 })
  await mkdir(join(dir, 'etc'))
  await writeFile(join(dir, 'etc', 'os-release'), `NAME="${label}"\n`)
  return (await addDirectory(bs, dir)).cid.toString()
}

describe('environments by CID', () => {
  afterAll(async () => { await cleanupAll() })

  it('two jobs at once export it once; a later job finds it without reading a block', async () => {
    const bs = new CountingBlockstore()
    const cid = await envTree(bs, 'shared', 10_000)
    const cache = new EnvCache({ dir: join(await tempDir(), 'envs'), maxBytes: 1024 ** 3 })
    await cache.start()
    bs.reads = 0
    const [a, b] = await Promise.all([cache.acquire(bs, cid), cache.acquire(bs, cid)])
    const readsForOne = bs.reads
    expect(readsForOne).toBeGreaterThan(0)
    expect(a.path).toBe(b.path)
    expect([a.cached, b.cached].sort()).toEqual([false, true])
    expect((await readdir(join(a.path, 'bin')))).toEqual(['tool'])
    a.release()
    b.release()
    const c = await cache.acquire(bs, cid)
    expect(c.cached).toBe(true)
    expect(bs.reads).toBe(readsForOne)
    c.release()
    expect(cache.list()).toEqual([expect.objectContaining({ cid, files: 2, users: 0 })])
  })

  it('evicts the least recently used entry not in use once over its bytes; never one in use', async () => {
    const bs = new MemoryBlockstore()
    const [x, y, z] = await Promise.all([envTree(bs, 'x', 60_000), envTree(bs, 'y', 60_000), envTree(bs, 'z', 60_000)])
    const cache = new EnvCache({ dir: join(await tempDir(), 'envs'), maxBytes: 130_000 })
    await cache.start()
    const lx = await cache.acquire(bs, x)
    lx.release()
    const ly = await cache.acquire(bs, y)
    ly.release()
    // two fit; a third sends the least recently used (x) away
    const lz = await cache.acquire(bs, z)
    expect(cache.list().map(e => e.cid).sort()).toEqual([y, z].sort())
    await expect(stat(lx.path)).rejects.toThrow()
    // y and z in use: x comes back and nothing in use goes, though the cache is over
    const ly2 = await cache.acquire(bs, y)
    const lx2 = await cache.acquire(bs, x)
    expect(cache.list().map(e => e.cid).sort()).toEqual([x, y, z].sort())
    expect(cache.bytes()).toBeGreaterThan(130_000)
    // released: back within the bound, the least recently used first
    lz.release()
    await new Promise(resolve => setImmediate(resolve))
    await expect.poll(() => cache.list().map(e => e.cid).sort()).toEqual([x, y].sort())
    ly2.release()
    lx2.release()
  })

  it('a restart keeps complete entries and removes what a crash left half-written', async () => {
    const bs = new MemoryBlockstore()
    const cid = await envTree(bs, 'kept', 1_000)
    const dir = join(await tempDir(), 'envs')
    let clock = 1_000
    const first = new EnvCache({ dir, maxBytes: 1024 ** 3, now: () => clock })
    await first.start()
    const used = await first.acquire(bs, cid)
    clock = 5_000
    used.release()
    // (the note of its last use is written without waiting: let it land)
    await expect.poll(async () => await readFile(join(dir, `${cid}.json`), 'utf8').catch(() => '')).toContain('"lastUsed":5000')
    // what a SIGKILL in the middle of an export leaves
    await mkdir(join(dir, `${cid}.concur-partial-0123456789ab`, 'bin'), { recursive: true })
    await writeFile(join(dir, `${cid}.concur-partial-0123456789ab`, 'bin', 'half'), 'half')
    const again = new EnvCache({ dir, maxBytes: 1024 ** 3 })
    await again.start()
    expect((await readdir(dir)).sort()).toEqual([cid, `${cid}.json`])
    // when it was last used survives the restart (least recently used goes first after it too)
    expect(again.list()).toEqual([expect.objectContaining({ cid, files: 2, lastUsed: 5_000 })])
    // found without any block: this store is empty
    const lease = await again.acquire(new MemoryBlockstore(), cid)
    expect(lease.cached).toBe(true)
    lease.release()
  })

  it('a failed export leaves nothing behind, and the next job tries again', async () => {
    const full = new MemoryBlockstore()
    const cid = await envTree(full, 'late', 1_000)
    const empty = new MemoryBlockstore()
    const dir = join(await tempDir(), 'envs')
    const cache = new EnvCache({ dir, maxBytes: 1024 ** 3 })
    await cache.start()
    await expect(cache.acquire(empty, cid, { signal: AbortSignal.timeout(200) })).rejects.toThrow()
    expect(await readdir(dir)).toEqual([])
    expect(cache.list()).toEqual([])
    const lease = await cache.acquire(full, cid)
    expect(lease.cached).toBe(false)
    lease.release()
  })
})
