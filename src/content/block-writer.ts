/**
 * Batches the importer's one-block-at-a-time `put()` calls into `putMany()`
 * calls. The importer awaits every `put`; going to disk for each 1 MiB chunk
 * (or each 50-byte directory shard) one by one serializes the import on
 * filesystem latency. Here `put()` resolves as soon as the block is queued,
 * and the put that fills a batch waits only for the batch before it, which
 * bounds memory to about one batch filling, one queued and one being written.
 *
 * Callers MUST `await writer.flush()` at the end: blocks still queued are not
 * durable before that.
 */
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** What a blockstore must offer to be written to; putMany and has are used when present. */
export type WritableBlockstore = Pick<Blockstore, 'put'> & Partial<Pick<Blockstore, 'putMany' | 'has'>>

export interface BlockWriterOptions {
  signal?: AbortSignal
  /** flush once this many bytes are queued (default 16 MiB) */
  maxBatchBytes?: number
  /** flush once this many blocks are queued (default 512) */
  maxBatchBlocks?: number
}

interface QueuedBlock { cid: CID, bytes: Uint8Array }

export class BlockWriter {
  private readonly store: WritableBlockstore
  private readonly signal: AbortSignal | undefined
  private readonly maxBatchBytes: number
  private readonly maxBatchBlocks: number
  private queue: QueuedBlock[] = []
  private queuedKeys = new Set<string>()
  private queuedBytes = 0
  // flushes run one after another, so a failed batch is reported to every
  // later flush and nothing is reported as stored after a failure
  private tail: Promise<void> = Promise.resolve()
  /** number of distinct blocks handed to the store (after de-duplication) */
  blocksWritten = 0

  constructor (store: WritableBlockstore, options: BlockWriterOptions = {}) {
    this.store = store
    this.signal = options.signal
    this.maxBatchBytes = options.maxBatchBytes ?? 16 * 1024 * 1024
    this.maxBatchBlocks = options.maxBatchBlocks ?? 512
  }

  /** Matches `Blockstore.put`, so the writer can be handed to the importer. */
  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<CID> {
    this.signal?.throwIfAborted()
    const block = bytes instanceof Uint8Array ? bytes : await collect(bytes)
    const key = cid.toString()
    // identical blocks (e.g. many identical small files) are written once per batch
    if (!this.queuedKeys.has(key)) {
      this.queuedKeys.add(key)
      this.queue.push({ cid, bytes: block })
      this.queuedBytes += block.byteLength
    }
    if (this.queuedBytes >= this.maxBatchBytes || this.queue.length >= this.maxBatchBlocks) {
      // double buffering: the full batch starts writing and the importer goes
      // on filling the next one; only the batch before it must be on disk.
      // Waiting for the batch just queued kept hashing and writing from ever
      // overlapping (measured, 256 MiB import ÷ sha256: 0.49 → see README).
      const previous = this.tail
      this.enqueue()
      await previous
    }
    return cid
  }

  /** Writes everything queued so far; resolves when it (and every earlier batch) is stored. */
  async flush (): Promise<void> {
    this.enqueue()
    await this.tail
  }

  private enqueue (): void {
    const batch = this.queue
    this.queue = []
    this.queuedKeys = new Set()
    this.queuedBytes = 0
    if (batch.length > 0) {
      this.tail = this.tail.then(async () => { await this.write(batch) })
      // reported by the next put that waits for it, or by flush(); never unhandled meanwhile
      this.tail.catch(() => {})
    }
  }

  private async write (batch: QueuedBlock[]): Promise<void> {
    this.signal?.throwIfAborted()
    const options = { signal: this.signal }
    let todo = batch
    const has = this.store.has
    if (has != null) {
      // skipping blocks the store already holds saves a temp-file write and
      // rename per block in blockstore-fs (re-adding an unchanged tree)
      const present = await Promise.all(batch.map(async ({ cid }) => has.call(this.store, cid, options)))
      todo = batch.filter((_, i) => present[i] !== true)
    }
    if (todo.length === 0) return
    if (this.store.putMany != null) {
      for await (const _ of this.store.putMany(todo, options)) { /* drain */ }
    } else {
      await Promise.all(todo.map(async ({ cid, bytes }) => this.store.put(cid, bytes, options)))
    }
    this.blocksWritten += todo.length
  }
}

async function collect (source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let length = 0
  for await (const part of source) {
    parts.push(part)
    length += part.byteLength
  }
  // a store that yields a block in one piece (the pack store: one pread) needs no copy:
  // a 1 MiB copy per block read was 5% of a fetch's receiving side, and its garbage more
  if (parts.length === 1) return parts[0] as Uint8Array
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

export { collect as concatChunks }
