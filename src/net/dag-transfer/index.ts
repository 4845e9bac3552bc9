/**
 * The DAG transfer service (`/concur/dag/1.0.0`, PROTOCOL.md §17): serves
 * the DAGs this node holds, block after block in one stream, and fetches a
 * DAG from several peers at once. Bitswap stays: it is the fallback for what
 * no peer sends here and what other IPFS nodes speak.
 */
import { logger } from '@libp2p/logger'
import type { AbortOptions, Libp2p, PeerId, Startable } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import { BlockWriter } from '../../content/block-writer.ts'
import { getBlock } from '../../content/stores.ts'
import { answerRequest, readRequest } from './serve.ts'
import { fetchDag } from './fetch-dag.ts'
import type { FetchDagResult, LocalStore } from './fetch-dag.ts'
import { DAG_TRANSFER_PROTOCOL } from './wire.ts'
import { connectedPeers, openStream } from '../frames.ts'

export { DAG_TRANSFER_PROTOCOL } from './wire.ts'
export type { FetchDagResult, ProviderReport } from './fetch-dag.ts'

const log = logger('concur:dag-transfer')

/** fetches asked again after providers failed (a stream reset): each continues from what is stored */
const RESET_RETRIES = 2

export interface DagTransferInit {
  /** answers served at once to all peers (each reads blocks and fills a stream): default 8 */
  maxInboundStreams?: number
  /** an answer must be read within this time (a stalled asker frees its slot): default 5 min */
  answerTimeoutMs?: number
}

export interface DagTransferComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections' | 'peerStore'>
  /** this node's own store: never the networked one (a request must not make this node fetch) */
  blockstore: Pick<Blockstore, 'get' | 'has' | 'put'> & Partial<Pick<Blockstore, 'putMany'>>
}

export interface DagFetchOptions extends AbortOptions {
  maxBlocks: number
  maxBytes: number
  /** whom to ask; default: connected peers that speak the protocol */
  providers?: PeerId[]
  onBlock?: (cid: CID, block: Uint8Array) => void
}

/** what this node's DAG transfer did since it started */
export interface DagTransferStats {
  served: { answers: number, failed: number, blocks: number, bytes: number }
  fetched: { fetches: number, complete: number, blocks: number, bytes: number }
}

export class DagTransfer implements Startable {
  private readonly init: DagTransferInit
  private readonly components: DagTransferComponents
  private readonly local: LocalStore
  private readonly counters: DagTransferStats = { served: { answers: 0, failed: 0, blocks: 0, bytes: 0 }, fetched: { fetches: 0, complete: 0, blocks: 0, bytes: 0 } }

  constructor (init: DagTransferInit, components: DagTransferComponents) {
    this.init = init
    this.components = components
    const store = components.blockstore
    this.local = {
      has: async (cid, options) => await store.has(cid, options),
      get: async (cid, options) => await getBlock(store, cid, options)
    }
  }

  async start (): Promise<void> {
    const timeoutMs = this.init.answerTimeoutMs ?? 5 * 60_000
    await this.components.libp2p.handle(DAG_TRANSFER_PROTOCOL, async (stream) => {
      const signal = AbortSignal.timeout(timeoutMs)
      try {
        const request = await readRequest(stream, { signal })
        // nothing after the request is read: unread bytes would sit in the
        // stream's buffer (up to 4 MiB, eight answers per connection) until it ends
        await stream.closeRead({ signal })
        const stats = await answerRequest(stream, request, {
          get: async (cid, options) => (await this.local.has(cid, options)) ? await this.local.get(cid, options) : undefined
        }, { signal })
        await stream.close({ signal })
        this.counters.served.answers++
        this.counters.served.blocks += stats.blocks
        this.counters.served.bytes += stats.bytes
        log.trace('answered %d blocks (%d bytes), %d missing', stats.blocks, stats.bytes, stats.missing)
      } catch (err) {
        this.counters.served.failed++
        log('answer failed: %s', (err as Error).message)
        stream.abort(err as Error)
      }
    }, { maxInboundStreams: this.init.maxInboundStreams ?? 8, maxOutboundStreams: 64, runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    await this.components.libp2p.unhandle(DAG_TRANSFER_PROTOCOL)
  }

  stats (): DagTransferStats {
    return structuredClone(this.counters)
  }

  /** connected peers whose identify says they speak the protocol */
  async speakers (): Promise<PeerId[]> {
    const out: PeerId[] = []
    for (const peer of connectedPeers(this.components.libp2p, { shuffle: true })) {
      try {
        const p = await this.components.libp2p.peerStore.get(peer)
        // no protocols yet: identify has not finished; asking costs one stream
        if (p.protocols.length === 0 || p.protocols.includes(DAG_TRANSFER_PROTOCOL)) out.push(peer)
      } catch {
        // not in the peer store yet (just connected): asked too
        out.push(peer)
      }
    }
    return out
  }

  /** Fetches what this node lacks under `root` into its store; see fetch-dag.ts. */
  async fetch (root: CID, options: DagFetchOptions): Promise<FetchDagResult> {
    let r = await this.fetchOnce(root, options)
    // A provider's stream can be reset mid-way while the peer stays reachable:
    // a relayed connection replaced by another (a second relay circuit, or a
    // direct one after a hole punch). What was stored is kept; ask again, on
    // the connections there are now, for what is still missing.
    for (let again = 0; again < RESET_RETRIES && !r.complete && options.signal?.aborted !== true && r.providers.some(p => p.failed != null); again++) {
      log('fetch of %c stopped with %d provider(s) failed (%s): asking again', root, r.providers.filter(p => p.failed != null).length, r.stopped)
      const next = await this.fetchOnce(root, options)
      r = { ...next, blocks: r.blocks + next.blocks, bytes: r.bytes + next.bytes }
    }
    return r
  }

  private async fetchOnce (root: CID, options: DagFetchOptions): Promise<FetchDagResult> {
    const writer = new BlockWriter(this.components.blockstore, options.signal != null ? { signal: options.signal } : {})
    const candidates = options.providers ?? await this.speakers()
    try {
      const r = await fetchDag(this.local, root, {
        candidates,
        maxBlocks: options.maxBlocks,
        maxBytes: options.maxBytes,
        ...(options.signal != null ? { signal: options.signal } : {}),
        ...(options.onBlock != null ? { onBlock: options.onBlock } : {}),
        // on the connection we hold (openStream says why): a peer behind NAT may be
        // reachable only through a relay (a limited connection), and DAGs go that way too
        open: async (peer, o) => await openStream(this.components.libp2p, peer, DAG_TRANSFER_PROTOCOL, o),
        store: async (cid, bytes) => { await writer.put(cid, bytes) },
        flush: async () => { await writer.flush() }
      })
      this.counters.fetched.fetches++
      if (r.complete) this.counters.fetched.complete++
      this.counters.fetched.blocks += r.blocks
      this.counters.fetched.bytes += r.bytes
      log('fetched %d blocks (%d bytes) under %c from %d of %d candidate(s) (%o): %s', r.blocks, r.bytes, root, r.providers.filter(p => p.blocks > 0).length, candidates.length, r.providers, r.complete ? 'complete' : r.stopped)
      return r
    } finally {
      // what was checked is kept, whatever stopped the fetch
      await writer.flush()
    }
  }
}

export function dagTransfer (init: DagTransferInit = {}) {
  return (components: DagTransferComponents): DagTransfer => new DagTransfer(init, components)
}
