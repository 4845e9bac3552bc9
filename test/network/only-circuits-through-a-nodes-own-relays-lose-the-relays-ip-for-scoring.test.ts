/**
 * gossipsub scores a relayed peer without the relay's IP only when the relay
 * is one of this node's own (its bootstrap nodes): libp2p's relay transport
 * takes a circuit from any connected peer, so a host connected to us could
 * otherwise bring any number of peer ids "through" itself, none with an IP
 * (review finding; the namespace test `relayed-peers-are-not-penalised-…`
 * shows the own-relay case end to end). A circuit through any other relay
 * keeps the relay's IP, and with it gossipsub's colocation penalty.
 */
import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { ownRelays, relayOf, withoutRelayAddress } from '../../src/net/relay-blind-score.ts'

const OURS = '12D3KooWLDaqnsuNNnGyxSThkwp1GtewpegUAuNyF56RQFEm6vHL'
const ROGUE = '12D3KooWMFuyPJGYLh7GpmrHS7X6QNvTXm4QhLp5EH9uYg1T2jJx'
const PEER = '12D3KooWN9nYRShupfr2LR8Y1ApNoLyB26eFjPyLxmbTn3295XkF'

function connection (addr: string): Connection {
  return { remoteAddr: multiaddr(addr), remotePeer: { toString: () => PEER }, newStream: function (this: unknown) { return this } } as unknown as Connection
}

describe('which relayed connections reach gossipsub without an IP', () => {
  const isOwn = ownRelays([`/ip4/203.0.113.10/tcp/4001/p2p/${OURS}`, '/dns4/boot.example/tcp/4001'])

  it('own relays are the bootstrap addresses\' peer ids', () => {
    expect(isOwn(OURS)).toBe(true)
    expect(isOwn(ROGUE)).toBe(false)
    expect(relayOf(connection(`/ip4/203.0.113.10/tcp/4001/p2p/${OURS}/p2p-circuit/p2p/${PEER}`))).toBe(OURS)
    expect(relayOf(connection('/ip4/203.0.113.7/tcp/4001'))).toBeUndefined()
  })

  it('a circuit through our relay loses the relay\'s IP; the proxy still calls the connection\'s methods on it', () => {
    const c = connection(`/ip4/203.0.113.10/tcp/4001/p2p/${OURS}/p2p-circuit/p2p/${PEER}`)
    const blind = withoutRelayAddress(c, isOwn)
    expect(blind.remoteAddr.toString()).toBe(`/p2p-circuit/p2p/${PEER}`)
    expect(blind.remoteAddr.toString()).not.toMatch(/ip4|ip6/)
    expect((blind as unknown as { newStream: () => unknown }).newStream()).toBe(c)
  })

  it('a circuit through any other relay, and a direct connection, keep their IP', () => {
    const rogue = connection(`/ip4/198.51.100.66/tcp/4001/p2p/${ROGUE}/p2p-circuit/p2p/${PEER}`)
    expect(withoutRelayAddress(rogue, isOwn)).toBe(rogue)
    const direct = connection('/ip4/203.0.113.7/tcp/4001')
    expect(withoutRelayAddress(direct, isOwn)).toBe(direct)
  })
})
