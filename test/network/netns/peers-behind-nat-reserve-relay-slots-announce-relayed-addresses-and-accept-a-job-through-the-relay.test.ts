/**
 * Home routers, simulated: a bootstrap node (and relay) on the public
 * segment, three workers each behind its own NAT, a requester behind a
 * fourth. Nobody behind a NAT can be dialled: each reserves a slot on the
 * bootstrap's relay (they listen on all interfaces, none public: `--relay
 * auto`), announces its relayed address and not its private one, and the
 * NAT'd peers connect to one another through the relay; and the devnet's
 * job is accepted 3 of 3: the workers fetch the source from the requester,
 * and the requester the artifact from them, through the relay (or directly
 * where DCUtR's hole punch works). The public segment
 * uses a TEST-NET range the dial policy classes public, so no --dial-private:
 * the loopback exemptions play no part.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { cleanupAll, waitFor } from '../../helpers/processes.ts'
import { apiIn, concurIn, startIn } from '../../helpers/netns-concur.ts'
import { EXAMPLE_PROJECT } from '../../../node/commands/devnet.ts'
import type { RequestView } from '../../../node/api/types.ts'
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

  // Once 1 run in 9 took 245 s: the requester's bundle waited on a pin that
  // walked the artifact through bitswap over the relay. The artifact now comes
  // by the DAG transfer first (src/requester/outcomes.ts); the job takes 7-12 s.
  it('accepts the example job: 3 of 3 trusted workers agree', async () => {
    const t = await concurIn(net, 'req', req.home, ['trust', 'add', ...workers.map(w => w.did)])
    expect(t.code, t.stderr).toBe(0)
    const p = await concurIn(net, 'req', req.home, ['policy', 'set', '--threshold', '3'])
    expect(p.code, p.stderr).toBe(0)
    await waitFor(async () => {
      const r = await concurIn<{ subscribers: { jobs: string[] } }>(net, 'req', req.home, ['peers'])
      return workers.every(w => r.json?.subscribers.jobs.includes(w.peerId)) || undefined
    }, 'the workers on the requester\'s jobs topic', 120_000)
    const submit = await concurIn<RequestView>(net, 'req', req.home, ['submit', EXAMPLE_PROJECT, '--out', 'out', '--replicas', '3', '--wait', '--timeout', '240', '--', 'sh', 'build.sh'], 300_000)
    const why = JSON.stringify({ reasons: submit.json?.record.reasons, releases: submit.json?.record.releases, attestations: submit.json?.attestations?.length })
    expect(submit.json?.record.status, `${why}\n${submit.stderr.slice(-2000)}\n${workers.map(w => w.stderr().slice(-1500)).join('\n---\n')}`).toBe('accepted')
    const trusted = submit.json.attestations.filter(a => a.trusted && a.result.status === 'success')
    expect(new Set(trusted.map(a => a.worker)).size).toBe(3)
    expect(new Set(trusted.map(a => a.result.status === 'success' ? a.result.artifact : ''))).toEqual(new Set([submit.json.record.artifact]))
  }, 480_000)
})
