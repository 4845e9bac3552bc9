/** Who this node is, whom it talks to, and what it has seen: id, peers, stats, routes, events. */
import type { ConcurPeer } from '../../../src/net/peer.ts'
import type { RecordStore } from '../../../src/store/records.ts'
import type { EventHub } from '../../events.ts'
import type { Router } from '../server.ts'
import type { EventsResponse, IdResponse, StatsResponse } from '../types.ts'

export interface NodeRouteDeps {
  identity: { did: string, peerId: string }
  peer: Pick<ConcurPeer, 'libp2p' | 'gossip' | 'discovery' | 'dialGate' | 'scoreOf' | 'dag'>
  events: EventHub
  /** the record store's usage against its limits (absent on a bootstrap node, which keeps none) */
  store?: Pick<RecordStore, 'usage'>
}

/** the longest one long-poll of /v1/events holds the connection */
const MAX_WAIT_MS = 30_000

export function nodeRoutes (router: Router, deps: NodeRouteDeps): void {
  const { identity, peer, events, store } = deps

  router.on('GET', '/v1/id', async (): Promise<IdResponse> => ({
    did: identity.did,
    peerId: identity.peerId,
    multiaddrs: peer.libp2p.getMultiaddrs().map(String)
  }))

  router.on('GET', '/v1/peers', async () => ({
    // score: this node's gossipsub score of the peer (below -80 everything it sends is dropped unread)
    peers: peer.libp2p.getConnections().map(c => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction, score: peer.scoreOf(c.remotePeer.toString()) })),
    subscribers: {
      jobs: peer.gossip.subscribers('job').map(String),
      attestations: peer.gossip.subscribers('attestation').map(String)
    },
    discovered: peer.discovery.known(),
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
