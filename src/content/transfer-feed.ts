/**
 * The blocks of a DAG transfer still running, handed to an export as they
 * arrive, so that writing the tree out overlaps fetching it.
 *
 * Why: an export used to start once the transfer had ended, so a fetch took
 * the transfer's time plus the export's (64 MiB on loopback: ~700 ms, then
 * ~150-250 ms of reading every block back, checking it and writing it), and
 * meanwhile the providers idled. Now the export walks the tree from the
 * start; a block it asks for is
 *   1. the bytes the transfer just brought, if still held here (they were
 *      checked against their CID on arrival: not read back nor hashed again);
 *   2. else, once the store holds it, the store's (checked) copy;
 *   3. else, while the fetching runs (the transfer, then the prefetch of
 *      what it left), awaited: any arrival or the fetching's end wakes the
 *      reader to look again;
 *   4. else (the fetching ended without it) the store as before, which may
 *      go to bitswap.
 * Nothing is ever fetched twice by this: a block is asked of the network
 * (step 4) only once the fetching has ended.
 *
 * Memory: an arrival is held until the export reads it, at most
 * MAX_HELD_BYTES in all (past that, new arrivals are not held: the export
 * reads in about the order the transfer brings, depth first, so the oldest
 * are the ones it wants next), and nothing once the export has ended
 * (close()); a block not held is read from the store (step 2) once its
 * batch is written, at worst when the transfer ends (it flushes
 * everything).
 */
import type { AbortOptions } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import { FeedClosedError } from './errors.ts'
import { getBlock } from './stores.ts'
import type { ReadableBlockstore } from './stores.ts'

/** arrivals held for the export at most (the transfer's own writer holds as much again until written) */
export const MAX_HELD_BYTES = 32 * 1024 * 1024

export type LocalHas = Pick<Blockstore, 'has'>

export class TransferFeed {
  private readonly base: ReadableBlockstore
  private readonly local: LocalHas
  private readonly maxHeldBytes: number
  /** insertion order is arrival order: the first key is the oldest */
  private readonly held = new Map<string, Uint8Array>()
  private heldBytes = 0
  private readonly waiters = new Set<() => void>()
  /** running: the fetching may still bring blocks; ended: it will not; closed: the export is over */
  private state: 'running' | 'ended' | 'closed' = 'running'

  constructor (base: ReadableBlockstore, local: LocalHas, init: { maxHeldBytes?: number } = {}) {
    this.base = base
    this.local = local
    this.maxHeldBytes = init.maxHeldBytes ?? MAX_HELD_BYTES
  }

  /** a block the transfer checked and is storing */
  arrived (cid: CID, bytes: Uint8Array): void {
    if (this.state !== 'running') return
    const key = cid.toString()
    // when full, the newest arrival is the one not held: the export reads in
    // about arrival order, so the oldest unread blocks are the ones it wants next
    if (!this.held.has(key) && this.heldBytes + bytes.byteLength <= this.maxHeldBytes) {
      this.held.set(key, bytes)
      this.heldBytes += bytes.byteLength
    }
    this.wake()
  }

  /**
   * The fetching ended (whatever its outcome): everything it stored is in the
   * store. What is held stays for the export, which is often still behind.
   */
  ended (): void {
    if (this.state === 'running') this.state = 'ended'
    this.wake()
  }

  /**
   * The export ended: what is held is let go, and a read still running (or
   * begun later) fails instead of waiting or reaching the store.
   */
  close (): void {
    this.state = 'closed'
    this.held.clear()
    this.heldBytes = 0
    this.wake()
  }

  /** the blockstore the export reads through */
  readonly store: ReadableBlockstore = {
    get: (cid: CID, options?: AbortOptions) => this.blocks(cid, options ?? {})
  }

  private async * blocks (cid: CID, options: AbortOptions): AsyncGenerator<Uint8Array> {
    yield await this.read(cid, options)
  }

  private async read (cid: CID, options: AbortOptions): Promise<Uint8Array> {
    const key = cid.toString()
    while (true) {
      options.signal?.throwIfAborted()
      if (this.state === 'closed') throw new FeedClosedError()
      const held = this.held.get(key)
      if (held != null) {
        // read once: a block the export reads again (a subtree shared
        // within the tree) comes from the store, and nothing read stays here
        this.held.delete(key)
        this.heldBytes -= held.byteLength
        return held
      }
      if (this.state === 'ended' || await this.local.has(cid, options)) return await getBlock(this.base, cid, options)
      // looked again after the await: an arrival, the end or the close in between woke nobody yet
      if (this.state === 'running' && !this.held.has(key)) await this.next(options.signal)
    }
  }

  /** resolves at the next arrival or at the transfer's end (or rejects on abort) */
  private async next (signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      // an abort during the `has` before this would send no event
      if (signal?.aborted === true) { reject(signal.reason as Error); return }
      const done = (): void => { this.waiters.delete(done); signal?.removeEventListener('abort', onAbort); resolve() }
      const onAbort = (): void => { this.waiters.delete(done); reject(signal?.reason as Error) }
      this.waiters.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private wake (): void {
    for (const w of [...this.waiters]) w()
  }
}
