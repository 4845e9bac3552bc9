/**
 * Fetching a DAG over `/concur/dag/1.0.0` from one or several peers at once.
 *
 * 1. What is missing: the local blocks under the root are walked and the
 *    CIDs not held form the frontier (a fetch cut by a crash or a timeout
 *    resumes where it stopped, at block granularity).
 * 2. Who holds it: candidates are asked for the frontier's first block alone
 *    (mode blocks); those that send it are the providers.
 * 3. Enough pieces to share: while the frontier has fewer subtrees than four
 *    per provider, its dag-pb nodes are fetched alone and replaced by their
 *    children.
 * 4. Shared out: each provider takes batches of subtrees from one queue as
 *    it finishes the last (a fast peer takes more), two batches in flight
 *    each so a round trip does not idle the link.
 * 5. Failures: a batch a provider did not finish goes back to the queue; a
 *    provider that sent a wrong block or broke the wire is not asked again;
 *    a subtree every provider says it lacks is left (to bitswap and the
 *    export, which fetch what is still missing). Nothing here is an error for
 *    the caller: the result says whether the DAG is complete.
 */
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { TransferStalledError } from '../errors.ts'
import { readAnswer } from './read-answer.ts'
import type { AnswerResult, TransferBudget } from './read-answer.ts'
import { MODE, encodeRequest, keyOf, linksOf, transferable, MAX_REQUEST_CIDS } from './wire.ts'
import type { TransferMode } from './wire.ts'
import { readBounded } from '../stream-flow.ts'

const log = logger('concur:dag-transfer')

/** subtrees per provider before the frontier is shared out (fewer: its nodes are opened) */
const PIECES_PER_PROVIDER = 4
/** a batch is this many subtrees at most, or as many as the declared sizes put near BATCH_BYTES */
const BATCH_MAX_SUBTREES = 64
const BATCH_BYTES = 16 * 1024 * 1024
/** the smallest batch asked for while the queue has more (a request is a round trip) */
const MIN_BATCH_BYTES = 1024 * 1024
/** batches in flight per provider: one being answered, one queued behind it */
const IN_FLIGHT = 2
/** candidates asked whether they hold the root */
export const MAX_CANDIDATES = 8

export interface LocalStore {
  has: (cid: CID, options?: AbortOptions) => Promise<boolean>
  /** a held block's bytes (only called for CIDs `has` said are held) */
  get: (cid: CID, options?: AbortOptions) => Promise<Uint8Array>
}

export interface FetchDagOptions extends AbortOptions {
  /** the peers to ask (at most MAX_CANDIDATES are) */
  candidates: PeerId[]
  maxBlocks: number
  maxBytes: number
  /** opens a stream to `peer` for the protocol */
  open: (peer: PeerId, options?: AbortOptions) => Promise<Stream>
  /** a checked block to store (awaited; it may be queued) */
  store: (cid: CID, bytes: Uint8Array) => Promise<void>
  /** everything `store` was given is in the local store (called before each walk of it) */
  flush: () => Promise<void>
  /** counted as it arrives (progress) */
  onBlock?: (cid: CID, block: Uint8Array) => void
  /** see STALL_MS and MIN_BYTES_PER_WINDOW */
  stallMs?: number
  minBytesPerWindow?: number
}

export interface ProviderReport { peer: string, blocks: number, bytes: number, failed?: string }

export interface FetchDagResult {
  /** every block under the root is now held (or was already) */
  complete: boolean
  blocks: number
  bytes: number
  providers: ProviderReport[]
  /** why it stopped short, when it did */
  stopped?: string
}

interface Piece { cid: CID, declared?: number }

/** the frontier: CIDs under `root` this node does not hold, walking only what it holds */
export async function missingUnder (local: LocalStore, root: CID, maxVisits: number, options: AbortOptions = {}): Promise<Piece[]> {
  const out: Piece[] = []
  const seen = new Set<string>()
  const stack: Piece[] = [{ cid: root }]
  while (stack.length > 0 && seen.size < maxVisits) {
    options.signal?.throwIfAborted()
    const piece = stack.pop() as Piece
    const key = keyOf(piece.cid)
    if (seen.has(key) || transferable(piece.cid) !== 'send') continue
    seen.add(key)
    if (!await local.has(piece.cid, options)) { out.push(piece); continue }
    // a raw leaf has no links: reading it (1 MiB, checked by the store) on every walk was wasted I/O
    if (piece.cid.code === raw.code) continue
    let links: ReturnType<typeof childPieces> = []
    try { links = childPieces(piece.cid, await local.get(piece.cid, options)) } catch { /* not a node we can open: the export judges it */ }
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i] as Piece)
  }
  return out
}

function childPieces (cid: CID, bytes: Uint8Array): Piece[] {
  if (cid.code !== dagPb.code) return linksOf(cid, bytes).map(c => ({ cid: c }))
  // with the sizes the node declares for its links: for batching only, never trusted for a limit
  return dagPb.decode(bytes).Links.map(l => ({ cid: CID.asCID(l.Hash) ?? CID.decode(l.Hash.bytes), ...(l.Tsize != null ? { declared: l.Tsize } : {}) }))
}

class Provider {
  readonly peer: PeerId
  blocks = 0
  bytes = 0
  failed: string | undefined
  constructor (peer: PeerId) { this.peer = peer }
  report (): ProviderReport { return { peer: this.peer.toString(), blocks: this.blocks, bytes: this.bytes, ...(this.failed != null ? { failed: this.failed } : {}) } }
}

/**
 * A provider that sends nothing for this long is given up (its batch goes to
 * the others, or to bitswap): a stalled peer must not spend the whole fetch's
 * time, which is all the fallback has.
 */
export const STALL_MS = 15_000

/**
 * The least an answer must carry in every STALL_MS window: a peer that
 * trickles a byte now and then (a slow-loris) would otherwise hold its batch,
 * and the whole fetch, until the fetch's own deadline. 256 KiB per 15 s is
 * about 17 KB/s: below any link worth fetching from; its share goes to the
 * other providers, or to bitswap.
 */
export const MIN_BYTES_PER_WINDOW = 256 * 1024

/** the chunks of `stream`, ended (the stream aborted) by an abort of `signal` or a window of stallMs carrying fewer than minBytes */
async function * guarded (stream: Stream, signal: AbortSignal | undefined, stallMs: number, minBytes: number): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  let inWindow = 0
  // also handed to the reader: aborting a stream that has already closed
  // sends no event, and a reader waiting on it would never wake
  const stop = new AbortController()
  const end = (err: Error): void => { stop.abort(err); stream.abort(err) }
  const timer = setInterval(() => {
    if (inWindow < minBytes) end(new TransferStalledError(stallMs, inWindow))
    inWindow = 0
  }, stallMs)
  const onAbort = (): void => { end(signal?.reason as Error ?? new Error('aborted')) }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    // not the stream's own iterator: it queues all that arrives, and a
    // provider faster than our store would pile its answer up in memory
    for await (const chunk of readBounded(stream, { signal: stop.signal })) {
      inWindow += chunk.byteLength
      yield chunk
    }
  } finally {
    clearInterval(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

/** how long a provider has to close its answer after the end frame before the stream is cut */
const CLOSE_GRACE_MS = 2_000

/**
 * An answer is read to its end frame; what the provider does after it must
 * cost nothing: a stream it never closes would hold a read buffer (up to
 * 4 MiB) and one of the connection's streams for as long as the connection
 * lasts. The stream is given a moment to close, then cut.
 */
async function finish (stream: Stream): Promise<void> {
  if (stream.status !== 'open' || stream.remoteWriteStatus === 'closed') return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); stream.removeEventListener('remoteCloseWrite', done); stream.removeEventListener('close', done); resolve() }
    const timer = setTimeout(done, CLOSE_GRACE_MS)
    stream.addEventListener('remoteCloseWrite', done)
    stream.addEventListener('close', done)
  })
  // (read again: the wait above may have changed both)
  const now = stream as Pick<Stream, 'status' | 'remoteWriteStatus'>
  if (now.status === 'open' && now.remoteWriteStatus !== 'closed') stream.abort(new Error('the answer went on past its end frame'))
}

/** one request to one provider: the answer is read and checked into the store */
async function ask (provider: Provider, mode: TransferMode, pieces: Piece[], budget: TransferBudget, options: FetchDagOptions, onBlock: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<AnswerResult> {
  const cids = pieces.map(p => p.cid)
  const stream = await options.open(provider.peer, options)
  try {
    stream.send(encodeRequest(mode, cids))
    // our side is complete: the answerer reads to its end. Not awaited before
    // reading: a close can wait on the muxer for as long as the peer likes,
    // and what it sends meanwhile is read (and bounded) only once we read
    const closing = stream.close(options).catch(() => {})
    const r = await readAnswer(guarded(stream, options.signal, options.stallMs ?? STALL_MS, options.minBytesPerWindow ?? MIN_BYTES_PER_WINDOW), mode, cids, {
      budget,
      ...(options.signal != null ? { signal: options.signal } : {}),
      onBlock: async (cid, bytes) => {
        provider.blocks++
        provider.bytes += bytes.byteLength
        await onBlock(cid, bytes)
      }
    })
    if (r.overBudget) stream.abort(new Error('over the fetch caps'))
    // in the background: the answer is in; a sharing round must not wait on
    // the provider's close (a probe's did, and a late joiner then found the
    // work shared out already)
    else void finish(stream).catch(() => {})
    void closing
    return r
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** Fetches what the local store lacks under `root` from the candidates that hold it. */
export async function fetchDag (local: LocalStore, root: CID, options: FetchDagOptions): Promise<FetchDagResult> {
  const budget: TransferBudget = { blocks: options.maxBlocks, bytes: options.maxBytes }
  const result: FetchDagResult = { complete: false, blocks: 0, bytes: 0, providers: [] }
  const stored = async (cid: CID, bytes: Uint8Array): Promise<void> => {
    result.blocks++
    result.bytes += bytes.byteLength
    options.onBlock?.(cid, bytes)
    await options.store(cid, bytes)
  }
  let frontier = await missingUnder(local, root, options.maxBlocks, options)
  if (frontier.length === 0) return { ...result, complete: true }

  // 2. who holds the first missing block
  const candidates = options.candidates.slice(0, MAX_CANDIDATES).map(p => new Provider(p))
  const first = frontier[0] as Piece
  let firstStored = false
  const probing = candidates.map(async (p) => {
    const r = await ask(p, MODE.blocks, [first], { blocks: 1, bytes: budget.bytes }, options, async (cid, bytes) => {
      // every provider sends it; stored (and counted) once
      if (firstStored) return
      firstStored = true
      budget.blocks--
      budget.bytes -= bytes.byteLength
      await stored(cid, bytes)
    })
    return r.blocks === 1
  })
  // the fetch starts as soon as one candidate has sent the block: a candidate
  // that answers later joins the sharing then, one that never answers holds
  // nothing up (it is given up after STALL_MS)
  const providers: Provider[] = []
  let pending = candidates.length
  let onJoin: ((p: Provider) => void) | undefined
  const firstHolder = new Promise<void>(resolve => {
    probing.forEach((pr, i) => {
      const p = candidates[i] as Provider
      void pr.then(holds => {
        if (!holds) return
        providers.push(p)
        onJoin?.(p)
      }, (err: unknown) => {
        p.failed = (err as Error).message
      }).finally(() => {
        pending--
        if (providers.length > 0 || pending === 0) resolve()
      })
    })
  })
  await firstHolder
  options.signal?.throwIfAborted()
  result.providers = candidates.map(p => p.report())
  if (providers.length === 0) return { ...result, stopped: 'no candidate holds the DAG' }

  // 3. open nodes until there are enough pieces to share (the first block is held now)
  await options.flush()
  frontier = await missingUnder(local, root, options.maxBlocks, options)
  // shared among the providers known and the candidates still answering
  for (let round = 0; round < 8 && frontier.length > 0 && frontier.length < PIECES_PER_PROVIDER * (providers.length + pending); round++) {
    const nodes = frontier.filter(p => p.cid.code === dagPb.code).slice(0, MAX_REQUEST_CIDS)
    if (nodes.length === 0) break
    try {
      await ask(providers[0] as Provider, MODE.blocks, nodes, budget, options, stored)
    } catch (err) {
      log('opening nodes failed: %s', (err as Error).message)
      break
    }
    const before = frontier.length
    await options.flush()
    frontier = await missingUnder(local, root, options.maxBlocks, options)
    // opening nodes gave no more pieces (the provider lacks them): share what there is
    if (frontier.length <= before) break
  }

  // 4. share out, in rounds: what a failed provider left is found missing again
  // and shared among the others (each round walks only what is held)
  /** providers that said they lack a CID */
  const lacking = new Map<string, Set<string>>()
  const queue: Piece[] = []
  let queueBytes = 0
  let batchBytes = BATCH_BYTES
  const sizeOf = (p: Piece): number => p.declared ?? 1024 * 1024
  const take = (provider: Provider): Piece[] => {
    // batches shrink as the queue drains (each a share of what is left, for
    // every batch in flight): the last ones are small, so no provider is
    // left with megabytes in flight while the others have nothing to do.
    // With a fixed size, 3 providers on 100 Mbit/s uplinks fetched 256 MiB at
    // 2.2 times one provider's speed, not 3 (test/bench/providers-shaped.ts)
    const live = providers.filter(p => p.failed == null).length + pending
    const limit = Math.max(MIN_BATCH_BYTES, Math.min(batchBytes, Math.ceil(queueBytes / Math.max(1, live * IN_FLIGHT))))
    const batch: Piece[] = []
    let bytes = 0
    for (let i = 0; i < queue.length && batch.length < BATCH_MAX_SUBTREES && bytes < limit;) {
      const p = queue[i] as Piece
      if (lacking.get(keyOf(p.cid))?.has(provider.peer.toString()) === true) { i++; continue }
      queue.splice(i, 1)
      queueBytes -= sizeOf(p)
      batch.push(p)
      bytes += sizeOf(p)
    }
    return batch
  }
  let capped = false
  const overBudget = (): boolean => capped || budget.blocks <= 0 || budget.bytes <= 0
  const worker = async (provider: Provider): Promise<void> => {
    while (provider.failed == null && !overBudget()) {
      options.signal?.throwIfAborted()
      const batch = take(provider)
      if (batch.length === 0) return
      try {
        const r = await ask(provider, MODE.subtrees, batch, budget, options, stored)
        if (r.overBudget) { capped = true; return }
        for (const m of r.missing) {
          const key = keyOf(m)
          const set = lacking.get(key) ?? new Set<string>()
          set.add(provider.peer.toString())
          lacking.set(key, set)
        }
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        provider.failed = (err as Error).message
        log('provider %p dropped: %s', provider.peer, provider.failed)
        // what it did not finish is found missing in the next round
      }
    }
  }
  let left = frontier
  for (let round = 0; round < 4 && left.length > 0 && !overBudget(); round++) {
    const live = providers.filter(p => p.failed == null)
    // a subtree every live provider lacks is left to bitswap
    queue.splice(0, queue.length, ...left.filter(p => live.some(pr => lacking.get(keyOf(p.cid))?.has(pr.peer.toString()) !== true)))
    queueBytes = queue.reduce((n, p) => n + sizeOf(p), 0)
    if (queue.length === 0) break
    // batches small enough that every provider gets a few: big ones left a
    // fast tree to the first provider alone; never under 1 MiB (a round trip each)
    batchBytes = Math.max(MIN_BATCH_BYTES, Math.min(BATCH_BYTES, Math.ceil(queueBytes / ((live.length + pending) * IN_FLIGHT * 2))))
    const running = live.flatMap(p => Array.from({ length: IN_FLIGHT }, async () => { await worker(p) }))
    // a candidate whose probe answers now takes its share of this round
    onJoin = (p) => { running.push(...Array.from({ length: IN_FLIGHT }, async () => { await worker(p) })) }
    for (let done = 0; done < running.length;) {
      const n = running.length
      await Promise.all(running.slice(done, n))
      done = n
    }
    onJoin = undefined
    await options.flush()
    left = await missingUnder(local, root, options.maxBlocks, options)
  }
  result.providers = candidates.map(p => p.report())
  if (overBudget()) return { ...result, stopped: 'the fetch caps' }
  return { ...result, complete: left.length === 0, ...(left.length > 0 ? { stopped: `${left.length} subtree(s) no provider sent` } : {}) }
}
