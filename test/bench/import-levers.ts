/**
 * Import levers, measured against the same sha256 baseline as the import row.
 * Experimental stores only (nothing here is used by concur itself):
 *
 * - `memory`: MemoryBlockstore — the importer with the store cost removed (the ceiling);
 * - `fs`: blockstore-fs as openStores opens it (one temp file + rename per block) — today;
 * - `fs-pipelined`: the same FsBlockstore, but a batch is written while the importer fills
 *   the next one (what a double-buffered BlockWriter would do: today the put that fills
 *   a batch waits until that batch is on disk, so hashing and writing never overlap);
 * - `pack`: one append-only pack file per import plus an in-memory index (a store layout
 *   that is not one file per block), also pipelined.
 *
 * - `*-readahead`: the same importer, options and BlockWriter as addFile, but the file is
 *   read one 1 MiB chunk ahead (the next read is in flight while the importer hashes the
 *   current chunk; addFile awaits each read before the importer can go on, so reading
 *   and hashing never overlap on the main thread).
 *
 * Every variant except `*-readahead` goes through src/content addFile, so the CID profile is unchanged;
 * each import checks it produced the same root CID.
 */
import { open, mkdtemp, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core'
import type { CID } from 'multiformats/cid'
import { importer } from 'ipfs-unixfs-importer'
import { BlockWriter, CHUNK_SIZE, addFile, importerOptions, openStores } from '../../src/content/index.ts'
import type { WritableBlockstore } from '../../src/content/index.ts'
import { median, repeat, spread, timeMs } from './stats.ts'
import type { Spread } from './stats.ts'

interface Pair { cid: CID, bytes: Uint8Array }
type Drainable = WritableBlockstore & { drain: () => Promise<void> }

/** Wraps a putMany so that one batch is written in the background while the next is filled. */
function pipelined (write: (batch: Pair[]) => Promise<void>): Drainable {
  let inFlight: Promise<void> = Promise.resolve()
  return {
    async put (cid: CID, bytes: Uint8Array) { await write([{ cid, bytes }]); return cid },
    async * putMany (source: AsyncIterable<Pair> | Iterable<Pair>) {
      const batch: Pair[] = []
      for await (const p of source) batch.push(p)
      // wait for the previous batch (bounds memory to two batches), start this one, return
      await inFlight
      inFlight = write(batch)
      inFlight.catch(() => {})
      for (const p of batch) yield p.cid
    },
    async drain () { await inFlight }
  } as unknown as Drainable
}

/** One append-only file; index cid → (offset, length) in memory. */
async function packStore (path: string): Promise<Drainable & { close: () => Promise<void> }> {
  const fh: FileHandle = await open(path, 'w')
  const index = new Map<string, [number, number]>()
  let offset = 0
  const write = async (batch: Pair[]): Promise<void> => {
    const bufs: Uint8Array[] = []
    for (const { cid, bytes } of batch) {
      const key = cid.toString()
      if (index.has(key)) continue
      index.set(key, [offset, bytes.byteLength])
      offset += bytes.byteLength
      bufs.push(bytes)
    }
    if (bufs.length > 0) await fh.writev(bufs)
  }
  const store = pipelined(write)
  return Object.assign(store, { async close () { await store.drain(); await fh.close() } })
}

/** Reads `path` in 1 MiB chunks, keeping one read in flight ahead of the consumer. */
async function * readAhead (path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    const next = async (): Promise<Uint8Array | null> => {
      const buf = Buffer.allocUnsafe(CHUNK_SIZE)
      const { bytesRead } = await fh.read(buf, 0, CHUNK_SIZE, null)
      return bytesRead === 0 ? null : buf.subarray(0, bytesRead)
    }
    let pending = next()
    while (true) {
      const chunk = await pending
      if (chunk == null) break
      pending = next()
      yield chunk
    }
  } finally {
    await fh.close()
  }
}

/** addFile's pipeline (same profile, same BlockWriter) with a read-ahead source. */
async function addFileReadAhead (store: WritableBlockstore, path: string): Promise<CID> {
  const writer = new BlockWriter(store)
  let last: CID | undefined
  for await (const r of importer([{ content: readAhead(path) }], writer, importerOptions())) last = r.cid
  await writer.flush()
  if (last == null) throw new Error('no result')
  return last
}

export interface ImportLever { name: string, ms: Spread, ratio: number }

export async function importLevers (opts: { file: string, dir: string, runs: number, sha256Ms: number }): Promise<ImportLever[]> {
  let root: string | undefined
  const check = (cid: CID): void => {
    root ??= cid.toString()
    if (cid.toString() !== root) throw new Error(`import lever changed the root CID: ${cid.toString()} vs ${root}`)
  }
  const variants: Array<[string, () => Promise<number>]> = [
    ['memory', async () => {
      const bs = new MemoryBlockstore()
      return await timeMs(async () => { check((await addFile(bs, opts.file)).cid) })
    }],
    ['fs', async () => {
      const home = await mkdtemp(join(opts.dir, 'lever-'))
      const stores = await openStores(home)
      const t = await timeMs(async () => { check((await addFile(stores.blockstore, opts.file)).cid) })
      await stores.close()
      await rm(home, { recursive: true, force: true })
      return t
    }],
    ['fs-pipelined', async () => {
      const home = await mkdtemp(join(opts.dir, 'lever-'))
      const stores = await openStores(home)
      const fs = stores.blockstore
      const store = pipelined(async (batch) => { for await (const _ of fs.putMany(batch as Parameters<typeof fs.putMany>[0])) { /* drain */ } })
      const t = await timeMs(async () => { check((await addFile(store, opts.file)).cid); await store.drain() })
      await stores.close()
      await rm(home, { recursive: true, force: true })
      return t
    }],
    ['pack', async () => {
      const home = await mkdtemp(join(opts.dir, 'lever-'))
      const store = await packStore(join(home, 'pack'))
      const t = await timeMs(async () => { check((await addFile(store, opts.file)).cid); await store.close() })
      await rm(home, { recursive: true, force: true })
      return t
    }],
    ['fs-readahead', async () => {
      const home = await mkdtemp(join(opts.dir, 'lever-'))
      const stores = await openStores(home)
      const t = await timeMs(async () => { check(await addFileReadAhead(stores.blockstore, opts.file)) })
      await stores.close()
      await rm(home, { recursive: true, force: true })
      return t
    }],
    ['pack-readahead', async () => {
      const home = await mkdtemp(join(opts.dir, 'lever-'))
      const store = await packStore(join(home, 'pack'))
      const t = await timeMs(async () => { check(await addFileReadAhead(store, opts.file)); await store.close() })
      await rm(home, { recursive: true, force: true })
      return t
    }]
  ]
  const out: ImportLever[] = []
  for (const [name, fn] of variants) {
    const ms = await repeat(opts.runs, 1, fn)
    out.push({ name, ms: spread(ms), ratio: opts.sha256Ms / median(ms) })
  }
  return out
}
