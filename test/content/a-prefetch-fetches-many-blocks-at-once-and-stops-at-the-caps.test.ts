/**
 * prefetch.ts: an export over the network read one block at a time, one
 * round trip each (a 549 MB Debian root of 12,627 files took ~4 minutes from
 * one provider on loopback). The prefetch asks for many blocks at once, and,
 * the DAG being anyone's, stops at what the export's caps allow: a DAG that
 * names more blocks than that is not walked to the end.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { UnixFS } from 'ipfs-unixfs'
import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULT_FETCH_LIMITS, addDirectory, exportToDirectory, prefetchBounds, prefetchDag } from '../../src/content/index.ts'
import { PREFETCH_MAX_BLOCKS } from '../../src/content/prefetch.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'

/** a store whose every get waits for the test to let it go, counting how many wait at once */
class GatedStore extends MemoryBlockstore {
  inFlight = 0
  maxInFlight = 0
  gets = 0
  private readonly waiting: Array<() => void> = []
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    this.gets++
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    await new Promise<void>(resolve => { this.waiting.push(resolve); queueMicrotask(() => { this.release() }) })
    this.inFlight--
    yield * super.get(cid, options)
  }

  /** let every waiting get go on the next turn, after all that can start have started */
  private release (): void {
    setImmediate(() => { for (const r of this.waiting.splice(0)) r() })
  }
}

describe('prefetch', () => {
  afterAll(async () => { await cleanupAll() })

  it('asks for many blocks at once, fetches each once, and the export that follows finds them', async () => {
    const dir = await tempDir()
    for (let i = 0; i < 200; i++) {
      await mkdir(join(dir, `d${i % 10}`), { recursive: true })
      await writeFile(join(dir, `d${i % 10}`, `f${i}`), `file ${i}\n`)
    }
    const store = new GatedStore()
    const { cid } = await addDirectory(store, dir)
    store.gets = 0
    const r = await prefetchDag(store, cid, { concurrency: 16, maxBlocks: 10_000, maxBytes: 1 << 30 })
    expect(r.stopped).toBeUndefined()
    expect(store.maxInFlight).toBeGreaterThan(8)
    expect(store.maxInFlight).toBeLessThanOrEqual(16)
    // each distinct block once: the root, 10 directories, 200 files
    expect(r.blocks).toBe(211)
    expect(store.gets).toBe(211)
    const out = join(await tempDir(), 'out')
    const exported = await exportToDirectory(store, cid, out, { prefetch: 16 })
    expect(exported.files).toBe(200)
  })

  it('stops at the bounds of the caps: a node linking 100,000 distinct blocks is not walked to its end', async () => {
    const store = new MemoryBlockstore()
    const links: dagPb.PBLink[] = []
    for (let i = 0; i < 100_000; i++) {
      const bytes = new TextEncoder().encode(`leaf ${i}`)
      const leaf = CID.createV1(raw.code, await sha256.digest(bytes))
      await store.put(leaf, bytes)
      links.push({ Hash: leaf, Tsize: bytes.byteLength })
    }
    const node = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file' }).marshal(), Links: links }))
    const root = CID.createV1(dagPb.code, await sha256.digest(node))
    await store.put(root, node)
    const r = await prefetchDag(store, root, { concurrency: 8, maxBlocks: 1_000, maxBytes: 1 << 30 })
    expect(r.stopped).toBe('1000 blocks')
    expect(r.blocks).toBeLessThanOrEqual(1_000 + 8)
    // the bounds follow the export's caps
    expect(prefetchBounds({ maxBytes: 1024, maxEntries: 10, maxDirectoryBytes: 1024 })).toEqual({ maxBlocks: 10 + 8, maxBytes: 2048 })
    // and whatever the caps allow, never more CIDs held than PREFETCH_MAX_BLOCKS (the default caps allowed ~4 million)
    expect(prefetchBounds(DEFAULT_FETCH_LIMITS).maxBlocks).toBe(PREFETCH_MAX_BLOCKS)
  })

  it('an abort ends it at once, with the abort', async () => {
    const missing = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode('held by nobody')))
    // a store that never answers for a missing block, as a network nobody serves
    const never = { get: async function * (_cid: CID, options?: { signal?: AbortSignal }) { await new Promise((_resolve, reject) => { options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }) }); yield new Uint8Array(0) } }
    await expect(prefetchDag(never as unknown as MemoryBlockstore, missing, { maxBlocks: 10, maxBytes: 10, signal: AbortSignal.timeout(50) })).rejects.toThrow()
  })
})
