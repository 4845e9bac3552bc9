import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { addDirectory, dagSize, exportToDirectory, trackFetchProgress } from '../../src/content/index.ts'
import type { FetchProgress } from '../../src/content/index.ts'
import { MemoryBlockstore, keystream, putDagPb, withTempDir } from './helpers.ts'
import { UnixFS } from 'ipfs-unixfs'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

// The progress `concur get` and a worker's input fetches show: what was read,
// each block once although the prefetch and the export both read it, and the
// size the DAG declares (root block + its links' Tsize), for a bar and an ETA.
describe('fetch progress', () => {
  it('an export with prefetch reports every distinct block once, ends with done, and the declared size equals the real one for an honest DAG', async () => {
    await withTempDir(async (tmp) => {
      const src = join(tmp, 'src')
      await mkdir(join(src, 'sub'), { recursive: true })
      await writeFile(join(src, 'a.bin'), keystream('a')(3 * 1024 * 1024 + 17))
      await writeFile(join(src, 'sub', 'b.bin'), keystream('b')(1024 * 1024 + 5))
      await writeFile(join(src, 'sub', 'c.txt'), 'small\n')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      const size = await dagSize(bs, cid)
      const reports: FetchProgress[] = []
      await exportToDirectory(bs, cid, join(tmp, 'out'), { prefetch: 8, onFetchProgress: p => reports.push(p) })
      const last = reports.at(-1) as FetchProgress
      expect(last.done).toBe(true)
      expect(reports.filter(r => r.done)).toHaveLength(1)
      // counted once each, although read twice (prefetch, then export)
      expect(last.blocks).toBe(size.blocks)
      expect(last.bytes).toBe(size.bytes)
      expect(last.declaredBytes).toBe(size.bytes)
      // the first block read (the root) is reported at once: the display starts before the bulk arrives
      expect(reports[0]?.done).toBe(false)
      expect(reports[0]?.blocks).toBe(1)
      // never backwards
      for (let i = 1; i < reports.length; i++) expect((reports[i] as FetchProgress).bytes).toBeGreaterThanOrEqual((reports[i - 1] as FetchProgress).bytes)
    })
  })

  it('reports at most once per interval while running, and the declared size is left out when the root states none', async () => {
    const bs = new MemoryBlockstore()
    // a directory whose link states no Tsize
    const leaf = await putDagPb(bs, new UnixFS({ type: 'file', data: new TextEncoder().encode('x') }))
    const rootBytes = dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'x', Hash: leaf }] })
    const root = CID.createV1(dagPb.code, await sha256.digest(rootBytes))
    await bs.put(root, rootBytes)
    let t = 0
    const reports: FetchProgress[] = []
    const tracker = trackFetchProgress(bs, root, p => reports.push(p), { intervalMs: 100, now: () => t })
    const read = async (c: CID): Promise<void> => { for await (const _ of tracker.store.get(c)) { /* drain */ } }
    await read(root)
    t = 50
    await read(leaf)
    await read(leaf)
    t = 150
    tracker.finish()
    tracker.finish()
    expect(reports.map(r => [r.blocks, r.done, r.elapsedMs])).toEqual([[1, false, 0], [2, true, 150]])
    expect(reports[0]?.declaredBytes).toBeUndefined()
  })
})
