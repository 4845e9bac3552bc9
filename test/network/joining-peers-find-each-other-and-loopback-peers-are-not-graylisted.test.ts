/**
 * Two rules of how peers come together, each measured failing before its fix
 * (README, Scaling), in one process on loopback:
 *
 * - peer exchange (`/concur/peers/1.0.0`, PROTOCOL.md §16): a peer that knows
 *   only the bootstrap node, and hears no peer announcements, still gets to
 *   the other peers, because it asks the bootstrap node for some of them;
 * - gossipsub's IP-colocation penalty does not apply to loopback: more than
 *   ten peers behind 127.0.0.1 used to be graylisted, so the hub ignored the
 *   subscriptions of the last ones and never sent them a job.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { waitFor } from '../helpers/processes.ts'

const peers: ConcurPeer[] = []

// no announcements from anyone (`discovery: false`): a peer learns of others only through peer exchange
async function peer (opts: { bootstrap?: ConcurPeer, bootstrapNode?: boolean } = {}): Promise<ConcurPeer> {
  const p = await createConcurPeer({
    privateKey: await generateKeyPair('Ed25519'),
    blockstore: new MemoryBlockstore(),
    datastore: new MemoryDatastore(),
    discovery: false,
    relayServer: opts.bootstrapNode === true,
    bootstrap: opts.bootstrap != null ? [opts.bootstrap.libp2p.getMultiaddrs()[0]!.toString()] : []
  })
  peers.push(p)
  return p
}

describe('joining peers', () => {
  afterEach(async () => {
    await Promise.allSettled(peers.splice(0).map(async p => { await p.stop() }))
  })

  it('a peer that knows only the bootstrap node connects to other peers through peer exchange', async () => {
    const boot = await peer({ bootstrapNode: true })
    const leaves: ConcurPeer[] = []
    for (let i = 0; i < 4; i++) leaves.push(await peer({ bootstrap: boot }))
    const others = (p: ConcurPeer): number => p.libp2p.getConnections().filter(c => !c.remotePeer.equals(boot.libp2p.peerId)).length
    await waitFor(async () => leaves.every(l => others(l) > 0), 'every leaf connected to another leaf', 20_000)
    expect(Math.min(...leaves.map(others))).toBeGreaterThan(0)
  }, 40_000)

  it('a hub with 16 loopback peers hears every one of them subscribe (none graylisted)', async () => {
    const hub = await peer()
    const leaves: ConcurPeer[] = []
    for (let i = 0; i < 16; i++) leaves.push(await peer({ bootstrap: hub }))
    await waitFor(async () => hub.libp2p.getConnections().length >= 16, 'all 16 leaves connected to the hub', 20_000)
    await waitFor(async () => hub.gossip.subscribers('job').length === 16, 'all 16 leaves subscribed in the hub\'s view', 10_000)
    expect(hub.gossip.subscribers('job')).toHaveLength(16)
  }, 60_000)
})
