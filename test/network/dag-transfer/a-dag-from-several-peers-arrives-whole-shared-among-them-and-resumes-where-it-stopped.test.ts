import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { addDirectory, dagSize, walkDag } from '../../../src/content/index.ts'
import { fetchDag } from '../../../src/net/dag-transfer/fetch-dag.ts'
import type { FetchDagOptions, LocalStore } from '../../../src/net/dag-transfer/fetch-dag.ts'
import { getBlock } from '../../../src/content/stores.ts'
import { MemoryBlockstore, keystream, withTempDir } from '../../content/helpers.ts'
import { PEERS, fakeNetwork, servedFrom } from './helpers.ts'
import type { CID } from 'multiformats/cid'

const MiB = 1024 * 1024

async function tree (tmp: string, files: number, size: number): Promise<{ store: MemoryBlockstore, root: CID }> {
  const src = join(tmp, 'src')
  await mkdir(join(src, 'sub'), { recursive: true })
  for (let i = 0; i < files; i++) await writeFile(join(src, i % 2 === 0 ? 'sub' : '', `f${i}.bin`), keystream(`f${i}`)(size + i))
  const store = new MemoryBlockstore()
  const { cid } = await addDirectory(store, src)
  return { store, root: cid }
}

function localOf (store: MemoryBlockstore): LocalStore {
  return { has: async (cid) => await store.has(cid), get: async (cid) => await getBlock(store, cid) }
}

function options (net: ReturnType<typeof fakeNetwork>, into: MemoryBlockstore, over: Partial<FetchDagOptions> = {}): FetchDagOptions {
  return {
    candidates: PEERS.slice(0, 3),
    maxBlocks: 100_000,
    maxBytes: 1024 * MiB,
    open: net.open,
    store: async (cid, bytes) => { await into.put(cid, bytes) },
    flush: async () => {},
    ...over
  }
}

describe('fetching a DAG over /concur/dag/1.0.0', () => {
  it('from three providers: every block arrives once, the tree is whole, and each provider sent a share', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp, 12, 3 * MiB)
      const net = fakeNetwork(new Map(PEERS.slice(0, 3).map(p => [p.toString(), servedFrom(store)])))
      const into = new MemoryBlockstore()
      const r = await fetchDag(localOf(into), root, options(net, into))
      const size = await dagSize(store, root)
      expect(r.complete).toBe(true)
      expect(await dagSize(into, root)).toEqual(size)
      // each block stored once (the three probes of the root store it once)
      expect(r.blocks).toBe(size.blocks)
      expect(r.providers.every(p => p.blocks > 0)).toBe(true)
      // shared: no provider sent more than 3/4 of the bytes
      for (const p of r.providers) expect(p.bytes).toBeLessThan(0.75 * size.bytes)
    })
  })

  it('a fetch stopped at its caps keeps what it checked, and the next fetch asks only for the rest', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp, 6, 2 * MiB)
      const size = await dagSize(store, root)
      const net = fakeNetwork(new Map([[PEERS[0]!.toString(), servedFrom(store)]]))
      const into = new MemoryBlockstore()
      const first = await fetchDag(localOf(into), root, options(net, into, { candidates: PEERS.slice(0, 1), maxBytes: 5 * MiB }))
      expect(first.complete).toBe(false)
      expect(first.stopped).toBe('the fetch caps')
      expect(first.bytes).toBeLessThanOrEqual(5 * MiB)
      const held = into.blocks.size
      expect(held).toBeGreaterThan(1)
      const second = await fetchDag(localOf(into), root, options(net, into, { candidates: PEERS.slice(0, 1) }))
      expect(second.complete).toBe(true)
      // nothing held was sent again
      expect(second.blocks).toBe(size.blocks - held)
      expect(await dagSize(into, root)).toEqual(size)
    })
  })

  it('a subtree one provider lacks comes from another; one no provider holds is left, and the result says so', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp, 4, MiB + 100)
      // provider 0 lacks every raw leaf of one file; provider 1 holds everything
      const cids: CID[] = []
      for await (const c of walkDag(store, root)) cids.push(c)
      const leaves = cids.filter(c => c.code === 0x55)
      const partial = new MemoryBlockstore()
      for (const c of cids) if (!leaves.slice(0, 2).some(l => l.equals(c))) await partial.put(c, await getBlock(store, c))
      const net = fakeNetwork(new Map([[PEERS[0]!.toString(), servedFrom(partial)], [PEERS[1]!.toString(), servedFrom(store)]]))
      const into = new MemoryBlockstore()
      const r = await fetchDag(localOf(into), root, options(net, into, { candidates: PEERS.slice(0, 2) }))
      expect(r.complete).toBe(true)
      expect(await dagSize(into, root)).toEqual(await dagSize(store, root))

      const alone = fakeNetwork(new Map([[PEERS[0]!.toString(), servedFrom(partial)]]))
      const into2 = new MemoryBlockstore()
      const r2 = await fetchDag(localOf(into2), root, options(alone, into2, { candidates: PEERS.slice(0, 1) }))
      expect(r2.complete).toBe(false)
      expect(r2.stopped).toMatch(/subtree\(s\) no provider sent/)
      expect(into2.blocks.size).toBe(cids.length - 2)
    })
  })
})
