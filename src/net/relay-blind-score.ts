/**
 * gossipsub's IP-colocation penalty (P6) without the relay's address.
 *
 * gossipsub scores peers by the IP of the address it was handed with their
 * connection: more than 10 peers at one IP cost each of them 5 × surplus²
 * (score.ts). A peer behind NAT is reached through a circuit relay, and its
 * connection's remote address is then the relay's:
 * `/ip4/RELAY-IP/tcp/4001/p2p/RELAY/p2p-circuit/p2p/PEER`. Every NAT'd
 * volunteer reached through the bootstrap's relay would count as one IP
 * (the relay's own direct connection too): at 12 each would fall under gossipsub's
 * gossip threshold (-10), at 15 under the graylist (measured: 15 relayed
 * peers and the relay, -180 each < -80), and everything they sent (their attestations
 * included) was dropped unread (issue 17; test
 * `relayed-peers-are-not-penalised-as-one-ip-…`). The relay's IP says nothing
 * about where the peer is, so a relayed connection is handed to gossipsub
 * with an address that has no IP (`/p2p-circuit/p2p/PEER`): it is scored on
 * its behaviour alone. Direct connections keep their IP and the penalty.
 *
 * Only circuits through this node's own relays (its bootstrap nodes) are
 * blanked, and only those are accepted inbound (peer.ts,
 * denyInboundRelayedConnection): libp2p's relay transport takes a circuit
 * from any connected peer, reservation or not, so one host connected to us
 * could otherwise bring any number of fresh peer ids "through" itself, each
 * without an IP. A circuit through any other relay keeps that relay's IP and
 * the penalty with it. What this still gives up: peers reaching us through
 * our own bootstrap relay are not counted by IP at all (the relay sees their
 * real address; we do not). P6 only slows a farm taking over a mesh; it was
 * never what keeps a wrong artifact out: attestations count by trusted key,
 * not by peer, and invalid traffic still costs each peer its own score.
 *
 * Done by wrapping the registrar gossipsub is given (the two places it reads
 * a connection: its stream handler and its topology), public interfaces only.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, StreamHandler, Topology } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

const CIRCUIT = '/p2p-circuit'

/** the peer id of the relay a connection runs through (the `/p2p/ID` before `/p2p-circuit`), or undefined for a direct one */
export function relayOf (connection: Pick<Connection, 'remoteAddr'>): string | undefined {
  const addr = connection.remoteAddr.toString()
  const at = addr.indexOf(CIRCUIT)
  if (at === -1) return undefined
  const m = /\/p2p\/([^/]+)$/.exec(addr.slice(0, at))
  return m?.[1] ?? ''
}

/** which relays are this node's own: the peer ids of its bootstrap addresses */
export function ownRelays (bootstrap: readonly string[]): (relay: string) => boolean {
  const ids = new Set<string>()
  for (const a of bootstrap) {
    const m = /\/p2p\/([^/]+)$/.exec(a.split(CIRCUIT)[0] ?? '')
    if (m?.[1] != null) ids.add(m[1])
  }
  return (relay) => ids.has(relay)
}

/** the connection, its remote address without the relay's IP if it runs through one of our relays; the same object otherwise */
export function withoutRelayAddress (connection: Connection, isOwnRelay: (relay: string) => boolean): Connection {
  const relay = relayOf(connection)
  if (relay == null || !isOwnRelay(relay)) return connection
  const remoteAddr = multiaddr(`${CIRCUIT}/p2p/${connection.remotePeer.toString()}`)
  return new Proxy(connection, {
    get (target, key) {
      if (key === 'remoteAddr') return remoteAddr
      const v: unknown = Reflect.get(target, key, target)
      // methods run on the connection itself (its private state is not on the proxy)
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v
    }
  })
}

/** a registrar that hands every connection through withoutRelayAddress to its handlers and topologies */
export function relayBlindRegistrar (registrar: Registrar, isOwnRelay: (relay: string) => boolean): Registrar {
  return new Proxy(registrar, {
    get (target, key) {
      if (key === 'handle') {
        return async (protocol: string, handler: StreamHandler, options?: Parameters<Registrar['handle']>[2]) => {
          const wrapped: StreamHandler = async (stream, connection) => { await handler(stream, withoutRelayAddress(connection, isOwnRelay)) }
          await target.handle(protocol, wrapped, options)
        }
      }
      if (key === 'register') {
        return async (protocol: string, topology: Topology) => {
          const onConnect = topology.onConnect
          return await target.register(protocol, onConnect == null ? topology : { ...topology, onConnect: (peer, connection) => { onConnect(peer, withoutRelayAddress(connection, isOwnRelay)) } })
        }
      }
      const v: unknown = Reflect.get(target, key, target)
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v
    }
  })
}

/**
 * A service factory whose service sees the registrar through relayBlindRegistrar
 * (gossipsub: `relayBlind(gossipsub(init), ownRelays(bootstrap))`).
 */
export function relayBlind<C extends { registrar: Registrar }, S> (factory: (components: C) => S, isOwnRelay: (relay: string) => boolean): (components: C) => S {
  return (components) => {
    const registrar = relayBlindRegistrar(components.registrar, isOwnRelay)
    return factory(new Proxy(components, {
      get: (target, key) => key === 'registrar' ? registrar : Reflect.get(target, key, target)
    }))
  }
}
