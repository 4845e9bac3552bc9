import { lpStream } from '@libp2p/utils'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, Libp2p, PeerId, Stream, Connection } from '@libp2p/interface'
import { connectedPeers, exchangeWith } from './frames.ts'
import { addressesToAnnounce } from './dial-policy.ts'

const log = logger('concur:peer-exchange')

/**
 * Peer exchange with a bootstrap node: a joining peer asks the bootstrap node
 * it dialled for a random sample of the peers connected to it, with their
 * dialable addresses, and dials some of them.
 *
 * Why not only the gossiped announcements (discovery.ts): a newcomer connected
 * to nothing but a busy bootstrap node is often outside the bootstrap node's
 * gossip mesh (the mesh is capped at D_hi peers per topic), so it hears the
 * announcements late or only through lazy gossip. Measured before this: with
 * 20 workers on one bootstrap node, the last joiners stayed at one connection.
 * The answer is an unauthenticated hint, like an announcement: dialling a peer
 * id proves it through noise.
 */
export const PEER_EXCHANGE_PROTOCOL = '/concur/peers/1.0.0'

const MAX_PEERS = 32
const MAX_ADDRS = 8
const MAX_FRAME = 64 * 1024

export interface PeerRecord { peerId: string, addrs: string[] }

export interface PeerExchange {
  /** serve the connected peers (bootstrap nodes do) */
  serve (): Promise<void>
  stop (): Promise<void>
  /** ask `peer` for a sample of its peers */
  ask (peer: PeerId, options?: AbortOptions): Promise<PeerRecord[]>
}

function notWildcard (ma: Multiaddr): boolean {
  // a wildcard listen address is not something another peer can dial
  const host = ma.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
  return host !== '0.0.0.0' && host !== '::'
}

/**
 * What a peer's addresses are worth to others, by the rule a node applies to
 * its own announcements (addressesToAnnounce): once it has a public address,
 * or a relayed one through a public relay, its private and loopback ones are
 * left out. A peer behind NAT is reachable only through its relay: relayed
 * addresses were dropped here before, and its private ones handed out, so
 * every dial a peer exchange suggested for a NAT'd peer went to a stranger's
 * LAN (issue 17; test `a-peer-exchange-hands-out-a-natd-peers-relayed-address-…`).
 */
function worthHandingOut (addrs: Multiaddr[]): Multiaddr[] {
  return addressesToAnnounce(addrs.filter(notWildcard))
}

export function peerExchange (init: { timeoutMs?: number } = {}) {
  return (components: { libp2p: Libp2p }): PeerExchange => {
    const { libp2p } = components
    const timeoutMs = init.timeoutMs ?? 5000
    let serving = false

    const sample = async (except: PeerId): Promise<PeerRecord[]> => {
      const peers = connectedPeers(libp2p, { shuffle: true, except })
      const out: PeerRecord[] = []
      for (const p of peers) {
        if (out.length >= MAX_PEERS) break
        try {
          const stored = await libp2p.peerStore.get(p)
          const addrs = worthHandingOut(stored.addresses.map(a => a.multiaddr)).slice(0, MAX_ADDRS).map(String)
          if (addrs.length > 0) out.push({ peerId: p.toString(), addrs })
        } catch { /* not in the peer store yet */ }
      }
      return out
    }

    const handler = async (stream: Stream, connection: Connection): Promise<void> => {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
      const signal = AbortSignal.timeout(timeoutMs)
      try {
        await lp.write(new TextEncoder().encode(JSON.stringify({ peers: await sample(connection.remotePeer) })), { signal })
        await stream.close({ signal })
      } catch (err) {
        log('peer exchange failed: %s', (err as Error).message)
        stream.abort(err as Error)
      }
    }

    return {
      async serve () {
        serving = true
        await libp2p.handle(PEER_EXCHANGE_PROTOCOL, handler, { maxInboundStreams: 32, runOnLimitedConnection: true })
      },
      async stop () {
        if (serving) await libp2p.unhandle(PEER_EXCHANGE_PROTOCOL)
      },
      async ask (peer, options) {
        const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options?.signal != null ? [options.signal] : [])])
        const frame = await exchangeWith(libp2p, peer, PEER_EXCHANGE_PROTOCOL, { maxFrame: MAX_FRAME, signal }, async (lp) => await lp.read({ signal }))
        const parsed = JSON.parse(new TextDecoder().decode(frame.subarray())) as { peers?: unknown }
        if (!Array.isArray(parsed.peers)) return []
        const out: PeerRecord[] = []
        for (const r of parsed.peers.slice(0, MAX_PEERS) as unknown[]) {
          const { peerId, addrs } = (r ?? {}) as Record<string, unknown>
          if (typeof peerId !== 'string' || !Array.isArray(addrs)) continue
          try {
            peerIdFromString(peerId)
            const good = addrs.slice(0, MAX_ADDRS).filter((a): a is string => typeof a === 'string' && a.length < 256)
            good.forEach(a => multiaddr(a))
            if (good.length > 0) out.push({ peerId, addrs: good })
          } catch { /* a malformed record is skipped */ }
        }
        return out
      }
    }
  }
}
