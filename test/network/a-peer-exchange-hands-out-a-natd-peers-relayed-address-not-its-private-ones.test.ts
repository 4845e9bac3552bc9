/**
 * A bootstrap node answers peer exchange with the peers connected to it and
 * their addresses. For a peer behind NAT it knows a private address (what
 * the peer listens on) and a relayed one (through the bootstrap's public
 * relay): only the relayed one is any use to others. Before, relayed
 * addresses were dropped from the answer and the private and loopback ones
 * handed out, so a newcomer dialled a stranger's LAN and never the peer.
 * Now the answer follows the rule a node applies to its own announcements.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { peerExchange } from '../../src/net/peer-exchange.ts'

describe('peer exchange', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('hands out a NAT\'d peer\'s relayed address, not its private or loopback ones; a public peer keeps its public address', async () => {
    const make = async (): Promise<Awaited<ReturnType<typeof createLibp2p>>> => {
      const n = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
      nodes.push(n)
      return n
    }
    const boot = await make()
    const natd = await make()
    const open = await make()
    const asker = await make()
    for (const n of [natd, open, asker]) await n.dial(boot.getMultiaddrs()[0]!)
    // what the bootstrap node knows of them: the NAT'd peer's LAN address and
    // its relayed one; the public peer's public address (and, for both, the
    // loopback address they connected from here)
    const relayed = `/ip4/203.0.113.10/tcp/4001/p2p/${boot.peerId.toString()}/p2p-circuit`
    await boot.peerStore.merge(natd.peerId, { multiaddrs: [multiaddr('/ip4/10.1.0.5/tcp/4001'), multiaddr('/ip4/0.0.0.0/tcp/4001'), multiaddr(relayed)] })
    await boot.peerStore.merge(open.peerId, { multiaddrs: [multiaddr('/ip4/203.0.113.7/tcp/4001'), multiaddr('/ip4/192.168.1.9/tcp/4001')] })

    const served = peerExchange()({ libp2p: boot })
    await served.serve()
    const records = await peerExchange()({ libp2p: asker }).ask(boot.peerId)
    await served.stop()

    const of = (id: string): string[] => records.find(r => r.peerId === id)?.addrs ?? []
    expect(of(natd.peerId.toString())).toEqual([relayed])
    expect(of(open.peerId.toString())).toEqual(['/ip4/203.0.113.7/tcp/4001'])
  })
})
