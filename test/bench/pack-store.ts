/**
 * `npm exec -- node test/bench/pack-store.ts [--quick]`: the pack blockstore
 * (src/store/pack) against blockstore-fs, each as a ratio to a baseline
 * measured in the same run:
 *
 * - import: a random file (256 MiB; 32 with --quick) through src/content
 *   addFile into (i) `fs`: blockstore-fs as openStores opens it (it never
 *   fsyncs), (ii) `pack`: a PackBlockstore as it would be opened (blocks
 *   checked against their CIDs, fdatasync per batch), (iii) `pack-crc32`: the
 *   same keeping a crc32 per block, (iv) `memory`: MemoryBlockstore, the
 *   importer's ceiling; (v, vi) `pack-via-helia`, `fs-via-helia`: the same
 *   stores under helia.blockstore, as the daemon's content API adds (helia's
 *   wrapper hands the store one put at a time: one fdatasync per block); and
 *   two levers that hash leaves in worker threads
 *   instead of src/content/leaf-importer.ts's WebCrypto (see HASH_WORKER):
 *   (vii) `pack-workers`, (viii) `memory-workers`. Each ÷ sha256 of the same
 *   file with 1 MiB reads; median of 3 after one warm-up, the variants
 *   interleaved round by round so drift hits all alike.
 * - read back: every block of the imported DAG through `get` (checked against
 *   its CID by the pack store, not by blockstore-fs), ÷ sha256.
 * - GC: 1 GiB (128 MiB with --quick) of unpinned 1 MiB blocks beside a pinned
 *   file, helia.gc() then compact(): time, and disk bytes before and after.
 *
 * Prints a table and writes bench-results/pack-store.json (git-ignored).
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core'
import { FsBlockstore } from 'blockstore-fs'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { BlockWriter, addFile, importerOptions, walkDag } from '../../src/content/index.ts'
import { directoryBytes } from '../../src/store/block-quota.ts'
import { createHeliaNode } from '../../src/net/helia-node.ts'
import { pin } from '../../src/store/pin.ts'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { MiB, median, sha256File, spread, timeMs } from './stats.ts'
import type { Spread } from './stats.ts'
import type { Blockstore } from 'interface-blockstore'
import type { BufferImporter } from 'ipfs-unixfs-importer'

const quick = process.argv.includes('--quick')
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const started = Date.now()
const say = (s: string): void => { process.stderr.write(`[pack-store ${((Date.now() - started) / 1000).toFixed(0)}s] ${s}\n`) }

interface Opened {
  store: Blockstore
  close: () => Promise<void>
  diskBytes: () => Promise<number>
  /** how this variant imports (default: src/content addFile) */
  add?: (path: string) => Promise<CID>
}

type Variant = [name: string, open: (dir: string) => Promise<Opened>]

const variants: Variant[] = [
  ['fs', async (dir) => {
    const store = new FsBlockstore(join(dir, 'blocks'))
    await store.open()
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')) }
  }],
  ['pack', async (dir) => {
    const store = new PackBlockstore(join(dir, 'blocks'))
    await store.open()
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')) }
  }],
  ['pack-crc32', async (dir) => {
    const store = new PackBlockstore(join(dir, 'blocks'), { checksum: 'crc32' })
    await store.open()
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')) }
  }],
  // what the daemon does today: node/api/routes/content.ts adds through helia.blockstore, whose
  // wrapper (blockstore-core's BaseBlockstore.putMany) hands the store one put at a time
  ['pack-via-helia', async (dir) => {
    const store = new PackBlockstore(join(dir, 'blocks'))
    await store.open()
    const helia = await createHeliaNode({ blockstore: store, datastore: new MemoryDatastore(), libp2p: {} })
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')), add: async (path: string) => (await addFile(helia.blockstore, path)).cid }
  }],
  ['fs-via-helia', async (dir) => {
    const store = new FsBlockstore(join(dir, 'blocks'))
    await store.open()
    const helia = await createHeliaNode({ blockstore: store, datastore: new MemoryDatastore(), libp2p: {} })
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')), add: async (path: string) => (await addFile(helia.blockstore, path)).cid }
  }],
  ['pack-workers', async (dir) => {
    const store = new PackBlockstore(join(dir, 'blocks'))
    await store.open()
    return { store, close: async () => { await store.close() }, diskBytes: async () => await directoryBytes(join(dir, 'blocks')), add: async (path: string) => await addFileWorkerHashed(store, path, hashPool) }
  }],
  ['memory', async () => {
    const store = new MemoryBlockstore()
    return { store, close: async () => {}, diskBytes: async () => 0 }
  }],
  ['memory-workers', async () => {
    const store = new MemoryBlockstore()
    return { store, close: async () => {}, diskBytes: async () => 0, add: async (path: string) => await addFileWorkerHashed(store, path, hashPool) }
  }]
]

/**
 * Lever (not what concur runs): leaves hashed in worker threads, each 1 MiB
 * chunk transferred to a worker and back (no copy). On Node 24,
 * crypto.subtle.digest copies its input on the main thread before hashing on
 * the thread pool (measured: 64 MiB, 40-60 ms of the call is synchronous, as
 * long as a memcpy of it), so src/content/leaf-importer.ts still spends
 * ~0.7 ms per MiB of main-thread time per leaf. Same importer options, same
 * BlockWriter, same CIDs (the root is checked against the other variants).
 */
const HASH_WORKER = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', ({ id, buf }) => {
  const digest = createHash('sha256').update(buf).digest()
  parentPort.postMessage({ id, buf, digest }, [buf.buffer])
})`

class HashPool {
  private readonly workers: Worker[]
  private readonly pending = new Map<number, { resolve: (r: { buf: Uint8Array, digest: Uint8Array }) => void, reject: (err: Error) => void }>()
  private next = 0
  constructor (size: number) {
    this.workers = Array.from({ length: size }, () => {
      const w = new Worker(HASH_WORKER, { eval: true })
      w.on('message', (m: { id: number, buf: Uint8Array, digest: Uint8Array }) => { this.pending.get(m.id)?.resolve(m); this.pending.delete(m.id) })
      w.on('error', (err) => { for (const p of this.pending.values()) p.reject(err); this.pending.clear() })
      return w
    })
  }

  async hash (block: Uint8Array): Promise<{ buf: Uint8Array, digest: Uint8Array }> {
    // only a view that owns its whole ArrayBuffer can be transferred without detaching others' bytes
    const own = block.byteOffset === 0 && block.byteLength === block.buffer.byteLength ? block : Uint8Array.from(block)
    const id = this.next++
    const w = this.workers[id % this.workers.length] as Worker
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      w.postMessage({ id, buf: own }, [own.buffer as ArrayBuffer])
    })
  }

  async close (): Promise<void> { await Promise.all(this.workers.map(async w => await w.terminate())) }
}

function workerLeafImporter (pool: HashPool): BufferImporter {
  return async function * (file, blockstore) {
    for await (const block of file.content) {
      yield async () => {
        const { buf, digest } = await pool.hash(block)
        const cid = CID.createV1(raw.code, createDigest(0x12, digest))
        await blockstore.put(cid, buf)
        return { cid, size: BigInt(buf.byteLength), block: buf }
      }
    }
  }
}

async function * readChunks (path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    while (true) {
      const buf = Buffer.allocUnsafe(MiB)
      const { bytesRead } = await fh.read(buf, 0, MiB, null)
      if (bytesRead === 0) break
      yield bytesRead < MiB ? Uint8Array.prototype.slice.call(buf, 0, bytesRead) : buf
    }
  } finally {
    await fh.close()
  }
}

async function addFileWorkerHashed (store: Blockstore, path: string, pool: HashPool): Promise<CID> {
  const writer = new BlockWriter(store)
  let last: CID | undefined
  for await (const r of importer([{ content: readChunks(path) }], writer, { ...importerOptions(), bufferImporter: workerLeafImporter(pool) })) last = r.cid
  await writer.flush()
  if (last == null) throw new Error('the importer yielded nothing')
  return last
}

const hashPool = new HashPool(2)

async function importRows (work: string): Promise<Record<string, unknown>> {
  const size = (quick ? 32 : 256) * MiB
  const file = join(work, 'random.bin')
  const fh = await open(file, 'w')
  for (let i = 0; i < size / MiB; i++) await fh.write(randomBytes(MiB))
  await fh.close()
  const rounds = 4 // the first is the warm-up
  const sha: number[] = []
  const imports = new Map<string, number[]>(variants.map(([n]) => [n, []]))
  const reads = new Map<string, number[]>(variants.map(([n]) => [n, []]))
  let root: string | undefined
  execFileSync('sync')
  for (let r = 0; r < rounds; r++) {
    const t = await timeMs(async () => { await sha256File(file) })
    if (r > 0) sha.push(t)
    for (const [name, openStore] of variants) {
      const dir = await mkdtemp(join(work, `${name}-`))
      const s = await openStore(dir)
      let cid: CID | undefined
      const ti = await timeMs(async () => { cid = s.add != null ? await s.add(file) : (await addFile(s.store, file)).cid })
      root ??= cid?.toString()
      if (cid?.toString() !== root) throw new Error(`${name} produced root ${cid?.toString()}, not ${root}`)
      // read back every block (what an export or a bitswap peer asks the store for)
      const tr = await timeMs(async () => {
        for await (const c of walkDag(s.store, cid as CID)) {
          for await (const _ of s.store.get(c)) { /* drain */ }
        }
      })
      await s.close()
      await rm(dir, { recursive: true, force: true })
      // blockstore-fs never fsyncs: without this its 256 MiB of dirty pages are
      // written back (and trimmed, once removed) while the next variant runs,
      // which then pays for them (measured: the variant after fs 0.34, else 0.46)
      execFileSync('sync')
      if (r > 0) { imports.get(name)?.push(ti); reads.get(name)?.push(tr) }
      say(`round ${r}: ${name} import ${ti.toFixed(0)} ms, read back ${tr.toFixed(0)} ms (sha256 ${t.toFixed(0)} ms)`)
    }
  }
  await rm(file, { force: true })
  const base = median(sha)
  const out: Record<string, { importMs: Spread, importRatio: number, readMs: Spread, readRatio: number, mbps: number }> = {}
  for (const [name] of variants) {
    const im = imports.get(name) as number[]
    const rd = reads.get(name) as number[]
    out[name] = { importMs: spread(im), importRatio: base / median(im), readMs: spread(rd), readRatio: base / median(rd), mbps: size / MiB / (median(im) / 1000) }
  }
  return { sizeMiB: size / MiB, sha256Ms: spread(sha), sha256Mbps: size / MiB / (base / 1000), variants: out }
}

async function gcRow (work: string, kind: 'pack' | 'fs'): Promise<Record<string, unknown>> {
  const unpinnedMiB = quick ? 128 : 1024
  const dir = await mkdtemp(join(work, `gc-${kind}-`))
  const blocksDir = join(dir, 'blocks')
  const pack = kind === 'pack' ? new PackBlockstore(blocksDir) : undefined
  const fs = kind === 'fs' ? new FsBlockstore(blocksDir) : undefined
  const store = (pack ?? fs) as Blockstore & { open: () => Promise<void>, close: () => Promise<void> }
  await store.open()
  const helia = await createHeliaNode({ blockstore: store, datastore: new MemoryDatastore(), libp2p: {} })
  // pinned: a 16 MiB file imported and pinned
  const src = join(dir, 'pinned.bin')
  await writeFile(src, randomBytes(16 * MiB))
  const { cid: pinned } = await addFile(store, src)
  await pin(helia.pins, pinned)
  // unpinned: 1 MiB blocks, as fetched for builds and for others
  const base = randomBytes(MiB)
  const batch: Array<{ cid: CID, bytes: Uint8Array }> = []
  const flush = async (): Promise<void> => {
    for await (const _ of store.putMany(batch)) { /* drain */ }
    batch.length = 0
  }
  for (let i = 0; i < unpinnedMiB; i++) {
    const bytes = Buffer.from(base)
    bytes.writeUInt32LE(i, 0)
    batch.push({ cid: CID.createV1(raw.code, createDigest(0x12, createHash('sha256').update(bytes).digest())), bytes })
    if (batch.length === 64) await flush()
  }
  await flush()
  const before = await directoryBytes(blocksDir)
  const tGc = await timeMs(async () => { await helia.gc() })
  const afterGc = await directoryBytes(blocksDir)
  let tCompact = 0
  if (pack != null) tCompact = await timeMs(async () => { await pack.compact() })
  const after = await directoryBytes(blocksDir)
  const stats = pack?.stats()
  // the pinned file is still whole
  let pinnedBlocks = 0
  for await (const c of walkDag(store, pinned)) { for await (const _ of store.get(c)) { /* drain */ } pinnedBlocks++ }
  await store.close()
  await rm(dir, { recursive: true, force: true })
  say(`gc ${kind}: ${unpinnedMiB} MiB unpinned, gc ${tGc.toFixed(0)} ms, compact ${tCompact.toFixed(0)} ms, disk ${before} -> ${afterGc} -> ${after}`)
  return { unpinnedMiB, gcMs: tGc, compactMs: tCompact, totalMs: tGc + tCompact, diskBefore: before, diskAfterGc: afterGc, diskAfter: after, returned: before - after, pinnedBlocksIntact: pinnedBlocks, ...(stats != null ? { stats } : {}) }
}

const work = await mkdtemp(join(tmpdir(), 'concur-bench-pack-'))
try {
  const imports = await importRows(work)
  const gcPack = await gcRow(work, 'pack')
  const gcFs = await gcRow(work, 'fs')
  const result = { date: new Date().toISOString(), quick, import: imports, gc: { pack: gcPack, fs: gcFs } }
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', 'pack-store.json'), JSON.stringify(result, null, 2) + '\n')
  const v = imports.variants as Record<string, { importRatio: number, readRatio: number, mbps: number }>
  const lines = [
    `import ${String(imports.sizeMiB)} MiB (sha256 ${(imports.sha256Mbps as number).toFixed(0)} MB/s):`,
    ...Object.entries(v).map(([n, r]) => `  ${n.padEnd(11)} import ${r.importRatio.toFixed(2)} of sha256 (${r.mbps.toFixed(0)} MB/s), read back ${r.readRatio.toFixed(2)} of sha256`),
    `gc of ${String(gcPack.unpinnedMiB)} MiB unpinned:`,
    `  pack  gc ${(gcPack.gcMs as number).toFixed(0)} ms + compact ${(gcPack.compactMs as number).toFixed(0)} ms, disk ${((gcPack.diskBefore as number) / MiB).toFixed(0)} -> ${((gcPack.diskAfter as number) / MiB).toFixed(0)} MiB`,
    `  fs    gc ${(gcFs.gcMs as number).toFixed(0)} ms, disk ${((gcFs.diskBefore as number) / MiB).toFixed(0)} -> ${((gcFs.diskAfter as number) / MiB).toFixed(0)} MiB`
  ]
  process.stdout.write(lines.join('\n') + '\n')
} finally {
  await hashPool.close()
  await rm(work, { recursive: true, force: true })
}
