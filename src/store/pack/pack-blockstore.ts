/**
 * A blockstore made for 1 MiB blocks: append-only pack files and an index in
 * memory, instead of one file per block (blockstore-fs: mkdir + temp file +
 * rename per block, which held an import to ~0.5 of sha256's speed).
 *
 * Layout of `<dir>`:
 *   packs/NNNNNNNN.pack  records (record.ts), appended, rolled at maxPackBytes
 *   tombstones           one entry per dead record location (tombstones.ts)
 *   index                a snapshot of the index, a cache (index-file.ts)
 *
 * Writes: putMany/put queue their blocks; one writer (under the write lock)
 * takes everything queued, appends it with one pwritev and one fdatasync,
 * then indexes it and resolves. Concurrent puts (bitswap storing blocks as
 * they arrive) share one fsync: group commit. A block is acknowledged only
 * once it is durable.
 *
 * Reads: a lookup in the index and one pread on the pack's open handle, then
 * a check of the bytes against the record (by default the CID's own
 * sha2-256, or a crc32): a block that does not match is never served
 * (CorruptBlockError) and is dropped from the index so it can be fetched
 * again.
 *
 * Deletes append tombstones (fsynced) and drop the entries; the bytes stay in
 * their pack until compact() rewrites packs with enough dead bytes and
 * removes the old files. stats() answers from counters.
 *
 * Crash safety (a SIGKILL or power loss at any point): on open, the index
 * file is read, every pack tail it does not cover is scanned record by record
 * (each body checked), a torn tail is truncated, and the tombstone log is
 * applied. See recover.ts and compact.ts for what each step may leave behind.
 */
import { mkdir, readdir, rm, open } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { blockKey, recordLength } from './entry.ts'
import { BlockTooLargeError, CorruptBlockError, NotFoundError, StoreClosedError, StoreFailedError } from './errors.ts'
import { fsyncDir, writeDurably } from './file-io.ts'
import { INDEX_FILE, loadIndex, saveIndex } from './index-file.ts'
import { PACKS_DIR, PackFile, packFileName, parsePackFileName, parseTempPackFileName } from './pack-file.ts'
import { bodyMatches, checkKindFor, encodeHeader, MAX_BLOCK_BYTES } from './record.ts'
import { scanPack } from './recover.ts'
import { PackState } from './state.ts'
import { TombstoneLog, TOMBSTONES_FILE } from './tombstones.ts'
import { WriteLock } from './write-lock.ts'
import { compactPacks } from './compact.ts'
import type { CompactOptions, CompactResult } from './compact.ts'
import type { BlockEntry } from './entry.ts'
import type { ChecksumPolicy } from './record.ts'
import type { CompactionHost } from './state.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Blockstore, InputPair, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

const log = logger('concur:pack-store')

const MiB = 1024 * 1024
/** default pack size: large enough that a 1 MiB-block store has few files, small enough that compacting one is quick */
export const DEFAULT_MAX_PACK_BYTES = 256 * MiB
/** default bytes per pwritev + fdatasync: bounds the memory a writer holds and the time one fsync takes */
export const DEFAULT_MAX_BATCH_BYTES = 64 * MiB
/** a pack is rewritten once this share of its bytes is dead (compact() can be asked for another) */
export const DEFAULT_COMPACT_THRESHOLD = 0.3
/** putMany hands blocks to the writer in chunks this large, so one caller's blocks are written while it reads more */
const PUT_CHUNK_BYTES = 16 * MiB
const PUT_CHUNK_BLOCKS = 1024
/** deleteMany hands keys to the writer in chunks this large (one append to the tombstone log each) */
const DELETE_CHUNK = 1024
/**
 * Tombstones of plain deletes are fsynced this long after they are written,
 * together. Why not at once: helia's gc deletes through a wrapper
 * (blockstore-core's BaseBlockstore.deleteMany) that calls delete() one block
 * at a time, so an fsync per delete was measured at 0.3 ms a block (1 GiB of
 * 1 MiB blocks: gc 314 ms; blockstore-fs, which never fsyncs, 160 ms). A
 * written tombstone survives the process being killed; a power cut within
 * this window can only bring back a block that was garbage anyway.
 */
export const TOMBSTONE_SYNC_DELAY_MS = 100

export interface PackBlockstoreInit {
  /** roll to a new pack file beyond this many bytes (default DEFAULT_MAX_PACK_BYTES) */
  maxPackBytes?: number
  /** at most this many bytes per write + fdatasync (default DEFAULT_MAX_BATCH_BYTES) */
  maxBatchBytes?: number
  /**
   * How block bytes are checked on every read, on recovery and when compacted
   * (default 'multihash'): 'multihash' computes nothing at write time and
   * hashes a sha2-256 block against its CID on every read, so a served block
   * is checked against its name; 'crc32' keeps a crc32 of every block,
   * computed at write time on the main thread, cheaper to check. Measured
   * (2-core VM, Node 24, 256 MiB of 1 MiB blocks, same run, alternated):
   * import 479-724 ms (median 498) with multihash, 544-745 ms (median 686)
   * with crc32: the importer's main thread is what bounds an import, and a
   * crc32 there costs it; reading back, crc32 is faster (0.65 against 0.47
   * of sha256's speed). Import is the figure with a target. Blocks whose CID
   * is not sha2-256 always get a crc32.
   */
  checksum?: ChecksumPolicy
  /** compact() rewrites packs at least this dead (0..1, default DEFAULT_COMPACT_THRESHOLD) */
  compactThreshold?: number
}

export interface PackStoreStats {
  /** blocks stored */
  blocks: number
  /** bytes of those blocks */
  liveBytes: number
  /** bytes of every file of the store: packs, tombstone log, index file */
  diskBytes: number
  /** bytes of dead records still in packs: what compact() with threshold 0 would return */
  reclaimableBytes: number
  packs: number
}

/** What the last open() found: how it recovered. */
export interface RecoveryReport {
  /** why the index file was not used ('' when it was) */
  indexUnusable: string
  /** bytes of pack tails read and checked record by record */
  scannedBytes: number
  /** torn tails cut off, per pack */
  truncated: Array<{ pack: number, bytes: number, reason: string }>
  /** complete records that failed their check (never indexed) */
  corrupt: Array<{ pack: number, offset: number, reason: string }>
  /** bytes of a torn tombstone-log tail cut off */
  tombstonesTruncatedBytes: number
  /** second copies of a block (a compaction cut short) now marked dead */
  duplicates: number
}

interface QueuedBlock { key: string, cid: CID, body: Uint8Array }
interface PendingPut { kind: 'put', blocks: QueuedBlock[], bytes: number, resolve: () => void, reject: (err: Error) => void }
interface PendingDelete { kind: 'delete', keys: string[], resolve: () => void, reject: (err: Error) => void }
type PendingWrite = PendingPut | PendingDelete
type Status = 'closed' | 'opening' | 'open' | 'closing'

export class PackBlockstore implements Blockstore {
  readonly dir: string
  readonly maxPackBytes: number
  private readonly maxBatchBytes: number
  private readonly checksum: ChecksumPolicy
  private readonly compactThreshold: number
  private readonly lock = new WriteLock()
  private status: Status = 'closed'
  private st: PackState | undefined
  private tomb: TombstoneLog | undefined
  private active: PackFile | undefined
  private nextPackId = 1
  private indexFileBytes = 0
  /**
   * Puts and deletes waiting for the writer, in the order they were asked
   * for: the writer takes runs of one kind, so a delete asked after a put of
   * the same block is never applied before it (nor the other way round).
   */
  private pending: PendingWrite[] = []
  /** set when a write failed and could not be undone: every later write is refused */
  private failure: StoreFailedError | undefined
  /** the writer has closed its files: anything still queued is refused */
  private filesClosed = false
  private tombstoneSyncTimer: ReturnType<typeof setTimeout> | undefined
  private compaction: Promise<CompactResult> | undefined
  private compactionAbort: AbortController | undefined
  recovery: RecoveryReport | undefined

  constructor (dir: string, init: PackBlockstoreInit = {}) {
    this.dir = dir
    this.maxPackBytes = init.maxPackBytes ?? DEFAULT_MAX_PACK_BYTES
    this.maxBatchBytes = init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.checksum = init.checksum ?? 'multihash'
    this.compactThreshold = init.compactThreshold ?? DEFAULT_COMPACT_THRESHOLD
  }

  // ---------------------------------------------------------------- open/close

  async open (options: AbortOptions = {}): Promise<void> {
    if (this.status === 'open') return
    if (this.status !== 'closed') throw new StoreClosedError(`open while ${this.status}`)
    this.status = 'opening'
    try {
      await this.load(options)
      this.status = 'open'
    } catch (err) {
      await this.closeFiles()
      this.status = 'closed'
      throw err
    }
  }

  private async load (options: AbortOptions): Promise<void> {
    const packsDir = join(this.dir, PACKS_DIR)
    await mkdir(packsDir, { recursive: true })
    this.filesClosed = false
    this.failure = undefined
    this.indexFileBytes = 0
    this.pending = []
    const report: RecoveryReport = { indexUnusable: '', scannedBytes: 0, truncated: [], corrupt: [], tombstonesTruncatedBytes: 0, duplicates: 0 }
    let maxId = 0
    // leftovers of a write that never completed: a compaction's pack not yet
    // renamed (its blocks are still in their old packs), temp index/log files
    const ids: number[] = []
    for (const name of await readdir(packsDir)) {
      const id = parsePackFileName(name)
      if (id != null) { ids.push(id); continue }
      const tmpId = parseTempPackFileName(name)
      if (tmpId != null) {
        maxId = Math.max(maxId, tmpId)
        await rm(join(packsDir, name), { force: true })
      }
    }
    await rm(join(this.dir, `${INDEX_FILE}.tmp`), { force: true })
    await rm(join(this.dir, `${TOMBSTONES_FILE}.tmp`), { force: true })

    const { log: tomb, truncatedBytes } = await TombstoneLog.open(this.dir)
    this.tomb = tomb
    report.tombstonesTruncatedBytes = truncatedBytes
    const st = new PackState()
    this.st = st
    ids.sort((a, b) => a - b)
    for (const id of ids) {
      st.addPack(await PackFile.openExisting(this.dir, id))
      maxId = Math.max(maxId, id)
    }

    // the index file: entries of the packs it covers, minus what the log killed since
    const covered = new Map<number, number>()
    const duplicates: BlockEntry[] = []
    const loaded = await loadIndex(this.dir)
    if (loaded.ok) {
      const { snapshot } = loaded
      for (const id of snapshot.covered.keys()) maxId = Math.max(maxId, id)
      const usable = [...snapshot.covered].every(([id, length]) => (st.packs.get(id)?.size ?? length) >= length) &&
        snapshot.entries.every(e => e.offset + recordLength(e) <= (snapshot.covered.get(e.pack) ?? -1))
      if (usable) {
        this.indexFileBytes = loaded.bytes
        for (const [id, length] of snapshot.covered) if (st.packs.has(id)) covered.set(id, length)
        for (const e of snapshot.entries) {
          if (!covered.has(e.pack) || tomb.has(e.pack, e.offset)) continue
          const key = blockKey(e.cid)
          if (st.index.has(key)) duplicates.push(e)
          else st.add(key, e)
        }
      } else {
        report.indexUnusable = 'index file disagrees with the packs on disk'
      }
    } else {
      report.indexUnusable = loaded.reason
    }

    // every pack tail the index file does not cover: read, check, truncate a torn tail
    for (const pack of st.packs.values()) {
      const from = covered.get(pack.id) ?? 0
      if (from >= pack.size) continue
      const sizeBefore = pack.size
      report.scannedBytes += pack.size - from
      const res = await scanPack(pack, from, { isDead: (offset) => tomb.has(pack.id, offset), signal: options.signal })
      st.packBytes -= sizeBefore - pack.size
      if (res.truncatedBytes > 0) {
        report.truncated.push({ pack: pack.id, bytes: res.truncatedBytes, reason: res.truncatedReason ?? '' })
        log('pack %d: torn tail of %d bytes cut off (%s)', pack.id, res.truncatedBytes, res.truncatedReason)
      }
      for (const c of res.corrupt) {
        report.corrupt.push({ pack: pack.id, ...c })
        log.error('pack %d offset %d: %s; the record is not served', pack.id, c.offset, c.reason)
      }
      for (const e of res.records) {
        const key = blockKey(e.cid)
        if (st.index.has(key)) duplicates.push(e)
        else st.add(key, e)
      }
    }
    this.nextPackId = Math.max(maxId, tomb.maxPackId()) + 1

    // a block found twice (a compaction stopped between writing its new pack
    // and removing the old one): one copy is kept, the other is killed for
    // good, so that deleting the block later cannot leave a copy to come back
    if (duplicates.length > 0) {
      await tomb.append(duplicates.map(e => ({ pack: e.pack, offset: e.offset })))
      report.duplicates = duplicates.length
    }

    // append to the newest pack while it has room
    const newest = ids.length > 0 ? st.packs.get(ids[ids.length - 1] as number) : undefined
    if (newest != null && newest.size < this.maxPackBytes) this.active = newest
    else await this.createActivePack()

    if (report.scannedBytes > 0 || report.duplicates > 0 || !loaded.ok || report.indexUnusable !== '') await this.saveIndexLocked()
    this.recovery = report
  }

  async close (): Promise<void> {
    if (this.status !== 'open') return
    this.status = 'closing'
    this.compactionAbort?.abort()
    await this.compaction?.catch(() => {})
    clearTimeout(this.tombstoneSyncTimer)
    this.tombstoneSyncTimer = undefined
    await this.lock.run(async () => {
      await this.tomb?.sync().catch((err: Error) => { log.error('tombstone log fsync on close failed: %e', err) })
      // a last index save makes the next open read no pack tail
      if (this.failure == null) await this.saveIndexLocked().catch((err: Error) => { log.error('index save on close failed: %e', err) })
      this.filesClosed = true
    })
    await this.closeFiles()
    this.status = 'closed'
  }

  private async closeFiles (): Promise<void> {
    this.filesClosed = true
    if (this.st != null) await Promise.all([...this.st.packs.values()].map(async p => { await p.close() }))
    await this.tomb?.close()
    this.active = undefined
  }

  // ---------------------------------------------------------------- reads

  has (key: CID, options?: AbortOptions): boolean {
    options?.signal?.throwIfAborted()
    return this.state('has').index.has(blockKey(key))
  }

  async * get (key: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    options?.signal?.throwIfAborted()
    yield await this.readBlock(key)
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of source) {
      options?.signal?.throwIfAborted()
      // read now, so a missing or corrupt block fails here and not in the consumer's hands later
      const bytes = await this.readBlock(cid)
      yield { cid, bytes: once(bytes) }
    }
  }

  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    // a snapshot of the keys: helia's gc deletes while it iterates
    const entries = [...this.state('getAll').index.entries()]
    for (const [key, entry] of entries) {
      options?.signal?.throwIfAborted()
      if (this.st?.index.has(key) !== true) continue
      // bytes are read only if the consumer asks (gc needs only the CIDs)
      yield { cid: entry.cid, bytes: this.get(entry.cid, options) }
    }
  }

  /** Reads and checks a block; never returns bytes that fail their record's check. */
  private async readBlock (cid: CID): Promise<Uint8Array> {
    const st = this.state('get')
    const key = blockKey(cid)
    const entry = st.index.get(key)
    if (entry == null) throw new NotFoundError(cid.toString())
    // no await between the lookup and the read starting: compaction may retire
    // the pack right after, and the read holds its handle open
    const pack = st.packs.get(entry.pack)
    if (pack == null) throw new StoreFailedError(`index entry for ${cid.toString()} names pack ${entry.pack}, which is not open`)
    const body = await pack.read(entry.offset + entry.headerLength, entry.bodyLength)
    if (body.byteLength !== entry.bodyLength || !(await bodyMatches(entry.cid, entry.checkKind, entry.bodyCrc, body))) {
      const where = body.byteLength !== entry.bodyLength ? `pack ${entry.pack} is shorter than its index says` : `pack ${entry.pack} offset ${entry.offset}`
      await this.quarantine(key, entry)
      throw new CorruptBlockError(cid.toString(), where)
    }
    return body
  }

  /** Drops a block found corrupt: from then on has() says false and helia fetches it from a peer. */
  private async quarantine (key: string, entry: BlockEntry): Promise<void> {
    try {
      await this.lock.run(async () => {
        if (this.filesClosed || this.st?.index.get(key) !== entry) return
        this.assertWritable()
        await this.tombstones.append([{ pack: entry.pack, offset: entry.offset }])
        this.st.remove(key, entry)
      })
    } catch (err) {
      log.error('could not drop corrupt block %s: %e', entry.cid, err)
    }
  }

  // ---------------------------------------------------------------- writes

  async put (key: CID, val: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID> {
    options?.signal?.throwIfAborted()
    this.state('put')
    const body = val instanceof Uint8Array ? val : await concat(val)
    await this.enqueuePuts([{ key: blockKey(key), cid: key, body }])
    return key
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    this.state('putMany')
    const inFlight: Array<{ cids: CID[], done: Promise<void> }> = []
    let chunk: QueuedBlock[] = []
    let chunkBytes = 0
    const send = (): void => {
      const done = this.enqueuePuts(chunk)
      // awaited below in order; never an unhandled rejection if the caller stops early
      done.catch(() => {})
      inFlight.push({ cids: chunk.map(b => b.cid), done })
      chunk = []
      chunkBytes = 0
    }
    for await (const { cid, bytes } of source) {
      options?.signal?.throwIfAborted()
      const body = bytes instanceof Uint8Array ? bytes : await concat(bytes)
      chunk.push({ key: blockKey(cid), cid, body })
      chunkBytes += body.byteLength
      if (chunkBytes >= PUT_CHUNK_BYTES || chunk.length >= PUT_CHUNK_BLOCKS) {
        send()
        // one chunk being written while the next is gathered: bounded memory
        while (inFlight.length > 1) {
          const first = inFlight.shift() as { cids: CID[], done: Promise<void> }
          await first.done
          yield * first.cids
        }
      }
    }
    if (chunk.length > 0) send()
    for (const f of inFlight) {
      await f.done
      yield * f.cids
    }
  }

  async delete (key: CID, options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.state('delete')
    await this.enqueueDeletes([blockKey(key)])
  }

  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<CID> {
    this.state('deleteMany')
    let cids: CID[] = []
    for await (const cid of source) {
      options?.signal?.throwIfAborted()
      cids.push(cid)
      if (cids.length >= DELETE_CHUNK) {
        await this.enqueueDeletes(cids.map(blockKey))
        yield * cids
        cids = []
      }
    }
    if (cids.length > 0) {
      await this.enqueueDeletes(cids.map(blockKey))
      yield * cids
    }
  }

  private async enqueuePuts (blocks: QueuedBlock[]): Promise<void> {
    if (blocks.length === 0) return
    let bytes = 0
    for (const b of blocks) {
      if (b.body.byteLength > MAX_BLOCK_BYTES) throw new BlockTooLargeError(b.body.byteLength, MAX_BLOCK_BYTES)
      bytes += b.body.byteLength
    }
    const done = new Promise<void>((resolve, reject) => { this.pending.push({ kind: 'put', blocks, bytes, resolve, reject }) })
    void this.lock.run(async () => { await this.writePending() })
    await done
  }

  /**
   * Under the lock: everything queued, in order. Consecutive puts go in
   * batches of up to maxBatchBytes, each one pwritev + one fdatasync, and puts
   * queued while a batch was being written go together in the next one
   * (group commit); consecutive deletes go in one append to the tombstone log.
   */
  private async writePending (): Promise<void> {
    while (this.pending.length > 0) {
      if ((this.pending[0] as PendingWrite).kind === 'delete') {
        const batch: PendingDelete[] = []
        while (this.pending[0]?.kind === 'delete') batch.push(this.pending.shift() as PendingDelete)
        await this.writeDeletes(batch)
        continue
      }
      const batch: PendingPut[] = []
      let bytes = 0
      while (this.pending[0]?.kind === 'put' && (batch.length === 0 || bytes + this.pending[0].bytes <= this.maxBatchBytes)) {
        const p = this.pending.shift() as PendingPut
        batch.push(p)
        bytes += p.bytes
      }
      try {
        await this.appendBlocks(batch.flatMap(p => p.blocks))
        for (const p of batch) p.resolve()
      } catch (err) {
        for (const p of batch) p.reject(err as Error)
      }
    }
  }

  private async appendBlocks (blocks: QueuedBlock[]): Promise<void> {
    if (this.filesClosed) throw new StoreClosedError('put')
    this.assertWritable()
    const st = this.internalState('put')
    // blocks already stored (or twice in this batch) are not written again
    const fresh: QueuedBlock[] = []
    const seen = new Set<string>()
    for (const b of blocks) {
      if (st.index.has(b.key) || seen.has(b.key)) continue
      seen.add(b.key)
      fresh.push(b)
    }
    if (fresh.length === 0) return
    const headers = fresh.map(b => encodeHeader(b.cid, checkKindFor(b.cid, this.checksum), b.body))
    const total = headers.reduce((n, h, i) => n + h.byteLength + (fresh[i] as QueuedBlock).body.byteLength, 0)
    let pack = this.activePack()
    if (pack.size > 0 && pack.size + total > this.maxPackBytes) {
      await this.rollLocked()
      pack = this.activePack()
    }
    const buffers: Uint8Array[] = []
    const entries: BlockEntry[] = []
    let at = pack.size
    fresh.forEach((b, i) => {
      const h = headers[i] as Buffer
      buffers.push(h, b.body)
      entries.push({ cid: b.cid, pack: pack.id, offset: at, headerLength: h.byteLength, bodyLength: b.body.byteLength, checkKind: h.readUInt8(5) as BlockEntry['checkKind'], bodyCrc: h.readUInt32LE(12) })
      at += h.byteLength + b.body.byteLength
    })
    const position = pack.size
    try {
      // durability before acknowledging: the blocks survive a crash from here on
      await writeDurably(pack.handle, buffers, position)
    } catch (err) {
      await this.cutBack(pack, position, err as Error)
      throw err
    }
    st.grow(pack, total)
    entries.forEach((e, i) => { st.add((fresh[i] as QueuedBlock).key, e) })
    if (pack.size >= this.maxPackBytes) await this.rollLocked()
  }

  /**
   * A failed write may have left part of its records in the file: cut them
   * off, so the next append does not land behind garbage. If that fails too
   * (or the fsync failed: Linux may have dropped the dirty pages and forgotten
   * the error), the file's state is unknown and the store stops writing.
   */
  private async cutBack (pack: PackFile, position: number, cause: Error): Promise<void> {
    try {
      await pack.handle.truncate(position)
      await pack.handle.datasync()
    } catch (err) {
      this.failure = new StoreFailedError(`pack ${pack.id}: a failed write (${cause.message}) could not be cut off (${(err as Error).message}); reopen the store`, { cause })
      throw this.failure
    }
  }

  private async enqueueDeletes (keys: string[]): Promise<void> {
    if (keys.length === 0) return
    const done = new Promise<void>((resolve, reject) => { this.pending.push({ kind: 'delete', keys, resolve, reject }) })
    void this.lock.run(async () => { await this.writePending() })
    await done
  }

  private async writeDeletes (batch: PendingDelete[]): Promise<void> {
    try {
      if (this.filesClosed) throw new StoreClosedError('delete')
      this.assertWritable()
      const st = this.internalState('delete')
      const targets = new Map<string, BlockEntry>()
      for (const p of batch) {
        for (const key of p.keys) {
          const e = st.index.get(key)
          if (e != null) targets.set(key, e)
        }
      }
      try {
        await this.tombstones.append([...targets.values()].map(e => ({ pack: e.pack, offset: e.offset })), false)
      } catch (err) {
        if (err instanceof StoreFailedError) this.failure = err
        throw err
      }
      for (const [key, e] of targets) st.remove(key, e)
      for (const p of batch) p.resolve()
      if (targets.size > 0) this.scheduleTombstoneSync()
    } catch (err) {
      for (const p of batch) p.reject(err as Error)
    }
  }

  private scheduleTombstoneSync (): void {
    if (this.tombstoneSyncTimer != null) return
    this.tombstoneSyncTimer = setTimeout(() => {
      this.tombstoneSyncTimer = undefined
      void this.lock.run(async () => {
        if (!this.filesClosed) await this.tombstones.sync()
      }).catch((err: Error) => { log.error('tombstone log fsync failed: %e', err) })
    }, TOMBSTONE_SYNC_DELAY_MS)
    // a pending fsync must not keep a process alive (close() syncs anyway)
    this.tombstoneSyncTimer.unref?.()
  }

  // ---------------------------------------------------------------- packs, index file

  private activePack (): PackFile {
    if (this.active == null) throw new StoreClosedError('write')
    return this.active
  }

  private async createActivePack (): Promise<void> {
    const st = this.internalState('write')
    const id = this.nextPackId++
    const path = join(this.dir, PACKS_DIR, packFileName(id))
    // wx+: a pack id is never reused, so the file must not exist
    const handle = await open(path, 'wx+')
    try {
      // the new name must be durable before a record in it is acknowledged
      await fsyncDir(join(this.dir, PACKS_DIR))
    } catch (err) {
      await handle.close()
      throw err
    }
    const pack = new PackFile(id, path, handle, 0)
    st.addPack(pack)
    this.active = pack
  }

  /** Under the lock: a new pack becomes the one appended to; the index file then covers the old one whole. */
  private async rollLocked (): Promise<void> {
    await this.createActivePack()
    await this.saveIndexLocked()
  }

  private async saveIndexLocked (): Promise<void> {
    const st = this.internalState('save the index')
    const covered = new Map<number, number>()
    for (const p of st.packs.values()) covered.set(p.id, p.size)
    this.indexFileBytes = await saveIndex(this.dir, covered, st.index.values())
  }

  private assertWritable (): void {
    if (this.failure != null) throw this.failure
  }

  /** the state, for a caller's operation: only while open */
  private state (operation: string): PackState {
    if (this.status !== 'open' || this.st == null) throw new StoreClosedError(operation)
    return this.st
  }

  /** the state, for the store's own work: also while opening (recovery) and closing (queued writes finish) */
  private internalState (operation: string): PackState {
    if (this.status === 'closed' || this.st == null) throw new StoreClosedError(operation)
    return this.st
  }

  private get tombstones (): TombstoneLog {
    if (this.tomb == null) throw new StoreClosedError('delete')
    return this.tomb
  }

  // ---------------------------------------------------------------- stats, compaction

  /** O(1): counters kept as blocks are written, deleted and compacted. */
  stats (): PackStoreStats {
    const st = this.state('stats')
    return {
      blocks: st.index.size,
      liveBytes: st.liveBodyBytes,
      diskBytes: this.diskBytes(),
      reclaimableBytes: st.packBytes - st.liveRecordBytes,
      packs: st.packs.size
    }
  }

  private diskBytes (): number {
    return (this.st?.packBytes ?? 0) + (this.tomb?.size ?? 0) + this.indexFileBytes
  }

  /**
   * Rewrites the packs whose dead share is at least `threshold` so the disk
   * space of deleted blocks is returned; one compaction at a time (a second
   * call joins the running one). Reads go on meanwhile; writes wait only
   * while a rewritten pack is swapped in.
   */
  async compact (options: CompactOptions = {}): Promise<CompactResult> {
    this.state('compact')
    if (this.status !== 'open') throw new StoreClosedError('compact')
    if (this.compaction != null) return await this.compaction
    const abort = new AbortController()
    this.compactionAbort = abort
    const signal = options.signal == null ? abort.signal : AbortSignal.any([abort.signal, options.signal])
    this.compaction = compactPacks(this.compactionHost(), { threshold: this.compactThreshold, ...options, signal })
    try {
      return await this.compaction
    } finally {
      this.compaction = undefined
      this.compactionAbort = undefined
    }
  }

  private compactionHost (): CompactionHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this
    return {
      dir: this.dir,
      state: this.state('compact'),
      tombstones: this.tombstones,
      lock: this.lock,
      maxPackBytes: this.maxPackBytes,
      get activePackId () { return store.activePack().id },
      allocatePackId: () => this.nextPackId++,
      rollLocked: async () => { await this.rollLocked() },
      saveIndexLocked: async () => { await this.saveIndexLocked() },
      assertWritable: () => {
        if (this.filesClosed) throw new StoreClosedError('compact')
        this.assertWritable()
      },
      diskBytes: () => this.diskBytes()
    }
  }
}

function * once (bytes: Uint8Array): Generator<Uint8Array> {
  yield bytes
}

async function concat (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let length = 0
  for await (const part of source) {
    parts.push(part)
    length += part.byteLength
  }
  if (parts.length === 1) return parts[0] as Uint8Array
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}
