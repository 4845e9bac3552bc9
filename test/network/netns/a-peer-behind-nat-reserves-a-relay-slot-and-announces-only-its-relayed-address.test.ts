/**
 * Home routers, simulated: a bootstrap node (and relay) on the public
 * segment, three workers each behind its own NAT, a requester behind a
 * fourth. Nobody behind a NAT can be dialled: each reserves a slot on the
 * bootstrap's relay (they listen on all interfaces, none public: `--relay
 * auto`), announces its relayed address and not its private one, and the
 * NAT'd peers connect to one another through the relay. The public segment
 * uses a TEST-NET range the dial policy classes public, so no --dial-private:
 * the loopback exemptions play no part.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { cleanupAll, waitFor } from '../../helpers/processes.ts'
import { apiIn, startIn } from '../../helpers/netns-concur.ts'
import type { NsDaemon } from '../../helpers/netns-concur.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

describe.skipIf(skip != null)('three workers behind their own NATs, the requester behind a fourth', () => {
  let net: TestNetwork
  let boot: NsDaemon
  let workers: NsDaemon[]
  let req: NsDaemon

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' }, h1: { nat: true }, h2: { nat: true }, h3: { nat: true }, h4: { nat: true } },
      hosts: { boot: { segment: 'public' }, w1: { segment: 'h1' }, w2: { segment: 'h2' }, w3: { segment: 'h3' }, req: { segment: 'h4' } }
    })
    boot = await startIn(net, 'boot', ['bootstrap'])
    const bootAddr = `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}`
    workers = await Promise.all(['w1', 'w2', 'w3'].map(async h => await startIn(net, h, ['daemon', '--worker', '--bootstrap', bootAddr])))
    req = await startIn(net, 'req', ['daemon', '--bootstrap', bootAddr])
  })

  afterAll(async () => {
    await net?.teardown()
    await cleanupAll()
  })

  it('each NAT\'d node is reachable through the relay and announces that address, not its private one', async () => {
    for (const n of [...workers, req]) {
      const id = await waitFor(async () => {
        const r = await apiIn<{ multiaddrs: string[] }>(net, n.host, n.home, '/v1/id')
        return r.multiaddrs.some(a => a.includes('/p2p-circuit')) ? r : undefined
      }, `a relayed address for ${n.host}`)
      expect(id.multiaddrs.some(a => a.includes(`/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}/p2p-circuit`))).toBe(true)
    }
    // what the bootstrap node hands out (announcements it heard): relayed addresses, no private ones
    const known = await waitFor(async () => {
      const r = await apiIn<{ announced: Record<string, string[]> }>(net, 'boot', boot.home, '/v1/peers')
      return [...workers, req].every(n => (r.announced[n.peerId] ?? []).some(a => a.includes('/p2p-circuit'))) ? r : undefined
    }, 'every NAT\'d node\'s relayed address announced at the bootstrap node')
    for (const n of [...workers, req]) {
      const addrs = known.announced[n.peerId] ?? []
      // only what others can use: through the public relay; no 10.x, no loopback
      expect(addrs.length).toBeGreaterThan(0)
      for (const a of addrs) expect(a.startsWith(`/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}/p2p-circuit`), a).toBe(true)
    }
  })

  it('NAT\'d peers connect to one another through the relay', async () => {
    for (const n of [...workers, req]) {
      const others = [...workers, req].filter(o => o !== n).map(o => o.peerId)
      const peers = await waitFor(async () => {
        const r = await apiIn<{ peers: Array<{ peerId: string, addr: string }> }>(net, n.host, n.home, '/v1/peers')
        return others.every(id => r.peers.some(p => p.peerId === id)) ? r.peers : undefined
      }, `${n.host} connected to every other NAT'd peer`)
      for (const id of others) {
        // through the bootstrap's relay, or direct where a hole punch (DCUtR) made one
        const via = peers.filter(p => p.peerId === id).map(p => p.addr)
        expect(via.some(a => a.includes(`/p2p/${boot.peerId}/p2p-circuit`) || !a.includes('/p2p-circuit')), via.join(' ')).toBe(true)
      }
    }
  })
})
