/** Who this node is, whom it talks to, and what it has seen: id, peers, stats, routes, events. */
import type { ConcurPeer } from '../../../src/net/peer.ts'
import type { RecordStore } from '../../../src/store/records.ts'
import type { EventHub } from '../../events.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import type { EventsResponse, IdResponse, PeerRole, StatsResponse } from '../types.ts'
import { DAG_TRANSFER_PROTOCOL } from '../../../src/net/dag-transfer/wire.ts'
import { JOB_SYNC_PROTOCOL } from '../../../src/net/job-sync.ts'

export interface NodeRouteDeps {
  identity: { did: string, peerId: string }
  peer: Pick<ConcurPeer, 'libp2p' | 'gossip' | 'discovery' | 'dialGate' | 'scoreOf' | 'dag'>
  events: EventHub
  /** the record store's usage against its limits (absent on a bootstrap node, which keeps none) */
  store?: Pick<RecordStore, 'usage'>
}

/** the longest one long-poll of /v1/events holds the connection */
const MAX_WAIT_MS = 30_000

/** a comment line this often keeps proxies and the browser from calling an idle stream dead */
const STREAM_HEARTBEAT_MS = 15_000
/**
 * Event streams open at once. A stream holds a connection for as long as its
 * reader wants, and the API serves at most 256 (server.maxConnections): with
 * no cap, open streams could leave none for the CLI. A few dashboard tabs
 * need a few; the rest are refused (503), the CLI's long-polls unaffected.
 */
export const MAX_EVENT_STREAMS = 8
/** events written between two waits for the socket to drain: what a stalled reader can hold */
const STREAM_SLICE = 500

/** the roles a peer's identify protocols name (a list of our own words, never the peer's strings) */
export function rolesOf (protocols: string[]): PeerRole[] {
  const roles: PeerRole[] = []
  if (protocols.includes('/libp2p/circuit/relay/0.2.0/hop')) roles.push('relay')
  if (protocols.some(p => p.startsWith('/meshsub/'))) roles.push('gossip')
  // a full concur node answers job catch-up; a bootstrap node keeps no records and does not
  if (protocols.includes(JOB_SYNC_PROTOCOL)) roles.push('concur')
  if (protocols.includes(DAG_TRANSFER_PROTOCOL)) roles.push('dag')
  return roles
}

export function nodeRoutes (router: Router, deps: NodeRouteDeps): void {
  const { identity, peer, events, store } = deps

  router.on('GET', '/v1/id', async (): Promise<IdResponse> => ({
    did: identity.did,
    peerId: identity.peerId,
    multiaddrs: peer.libp2p.getMultiaddrs().map(String)
  }))

  router.on('GET', '/v1/peers', async () => ({
    // score: this node's gossipsub score of the peer (below -80 everything it sends is dropped unread);
    // roles: what the peer said it serves (identify): a relay, a holder of DAGs, a gossip node
    peers: await Promise.all(peer.libp2p.getConnections().map(async c => ({
      peerId: c.remotePeer.toString(),
      addr: c.remoteAddr.toString(),
      direction: c.direction,
      score: peer.scoreOf(c.remotePeer.toString()),
      roles: rolesOf(await peer.libp2p.peerStore.get(c.remotePeer).then(p => p.protocols, () => []))
    }))),
    subscribers: {
      jobs: peer.gossip.subscribers('job').map(String),
      attestations: peer.gossip.subscribers('attestation').map(String),
      equivocations: peer.gossip.subscribers('equivocation').map(String)
    },
    // the shards whose topics this node reads besides the unsharded ones (PROTOCOL.md §6.1)
    shards: peer.gossip.shards(),
    discovered: peer.discovery.known(),
    // what each of them announced: the addresses this node would hand out and dial
    announced: Object.fromEntries(peer.discovery.known().slice(0, 256).map(id => [id, peer.discovery.addressesOf(id) ?? []])),
    dialPolicy: peer.dialGate.stats()
  }))

  router.on('GET', '/v1/stats', async (): Promise<StatsResponse> => ({
    gossip: peer.gossip.stats(),
    memory: process.memoryUsage(),
    ...(store != null ? { store: store.usage() } : {}),
    // blocks sent and fetched over /concur/dag/1.0.0 (bitswap's are helia's)
    dag: peer.dag.stats()
  }))

  // every route this daemon serves, the ones added after this line included
  // (like kubo's `ipfs commands`); behind the token like every other route
  router.on('GET', '/v1/routes', async () => ({ routes: router.table() }))

  // the feed as server-sent events (the dashboard's live view): `id:` is the
  // seq, so a reader that reconnects asks for `after` its last id. Events are
  // taken from the ring only once the previous ones were written out (the
  // socket drained): a reader that stops reading holds one batch in memory,
  // never a growing queue; if it falls behind the ring it is told (`gap`)
  // and reloads, like a long-poller whose `after` is older than `first`.
  let streams = 0
  router.on('GET', '/v1/events/stream', async (req, res) => {
    if (streams >= MAX_EVENT_STREAMS) throw new HttpError(503, 'ERR_TOO_MANY_STREAMS', `${MAX_EVENT_STREAMS} event streams are open already: close a dashboard tab, or use GET /v1/events (long-poll)`)
    streams++
    res.on('close', () => { streams-- })
    const given = Number(req.query.get('after') ?? req.raw.headers['last-event-id'] ?? events.last)
    let after = Number.isSafeInteger(given) && given >= 0 ? given : events.last
    const ac = new AbortController()
    res.on('close', () => { ac.abort() })
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.write(`: concur event stream, last ${events.last}\n\n`)
    const drained = async (): Promise<void> => {
      if (!res.writableNeedDrain) return
      await new Promise<void>((resolve) => {
        const done = (): void => { res.off('drain', done); ac.signal.removeEventListener('abort', done); resolve() }
        res.on('drain', done)
        ac.signal.addEventListener('abort', done)
      })
    }
    while (!ac.signal.aborted) {
      const batch = await events.wait(after, STREAM_HEARTBEAT_MS, { signal: ac.signal })
      if (ac.signal.aborted) break
      // events the ring no longer holds were missed (`after` is older than `first`), or the
      // reader's `after` is past the feed's end (not this feed's seqs): it reloads either way
      if ((batch.first > after + 1 && after > 0) || batch.last < after) res.write(`event: gap\ndata: ${JSON.stringify({ after, first: batch.first })}\n\n`)
      if (batch.events.length === 0) res.write(': ping\n\n')
      // JSON.stringify leaves no raw newline: one event is one `data:` line
      for (let i = 0; i < batch.events.length && !ac.signal.aborted; i += STREAM_SLICE) {
        for (const e of batch.events.slice(i, i + STREAM_SLICE)) res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`)
        await drained()
      }
      after = batch.last
      await drained()
    }
    res.end()
  })

  // the feed, long-polled: answers as soon as an event after `after` (of
  // `jobId`, or of the fetch `progress`, when given) exists, or after `wait` ms with none
  router.on('GET', '/v1/events', async (req, res): Promise<EventsResponse> => {
    const after = Number(req.query.get('after') ?? '0')
    const wait = Math.min(Number(req.query.get('wait') ?? '0'), MAX_WAIT_MS)
    const jobId = req.query.get('jobId')
    const progress = req.query.get('progress')
    // the caller went away: stop waiting for it (the request itself was read
    // to its end before the route ran, so it is the response that closes)
    const ac = new AbortController()
    res.on('close', () => { if (!res.writableFinished) ac.abort() })
    return await events.wait(Number.isFinite(after) ? after : 0, Number.isFinite(wait) ? wait : 0, {
      signal: ac.signal,
      ...(jobId != null ? { match: e => 'jobId' in e && e.jobId === jobId } : {}),
      // one `concur get`'s progress (its progressId)
      ...(progress != null ? { match: e => e.type === 'content:progress' && e.id === progress } : {})
    })
  })
}
