/**
 * Volunteers behind NAT reach one another through the bootstrap's relay, so
 * every one of their connections carries the relay's IP
 * (`/ip4/RELAY/…/p2p-circuit/p2p/PEER`). gossipsub's IP-colocation penalty
 * counts peers per IP: past 10 at one IP each loses 5 × surplus², and at 15
 * each scored -125, under the graylist (-80), so everything they sent (their
 * attestations too) was dropped unread. Here a concur node behind one NAT is
 * reached by 15 peers behind another, all through the relay: none of them is
 * scored below 0. (Peers that connect directly from one IP still pay: that
 * penalty is kept; see src/net/relay-blind-score.ts.)
 */
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { cleanupAll, waitFor } from '../../helpers/processes.ts'
import { apiIn, startIn } from '../../helpers/netns-concur.ts'
import type { NsDaemon } from '../../helpers/netns-concur.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

const CROWD = fileURLToPath(new URL('../../helpers/relayed-crowd.ts', import.meta.url))
// 15: gossipsub's threshold is 10 peers per IP; 15 put each at -5 × 5² = -125
const COUNT = 15

type Peers = { peers: Array<{ peerId: string, addr: string, score: number }> }

describe.skipIf(skip != null)(`${COUNT} peers reaching a node through one relay`, () => {
  let net: TestNetwork
  let boot: NsDaemon
  let obs: NsDaemon

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' }, h1: { nat: true }, h2: { nat: true } },
      hosts: { boot: { segment: 'public' }, obs: { segment: 'h1' }, crowd: { segment: 'h2' } }
    })
    boot = await startIn(net, 'boot', ['bootstrap'])
    obs = await startIn(net, 'obs', ['daemon', '--bootstrap', `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}`])
  }, 120_000)

  afterAll(async () => {
    await net?.teardown()
    await cleanupAll()
  })

  it('are scored on what they send, not as one IP past the colocation threshold', async () => {
    const relayed = await waitFor(async () => {
      const r = await apiIn<{ multiaddrs: string[] }>(net, 'obs', obs.home, '/v1/id')
      return r.multiaddrs.find(a => a.includes(`/p2p/${boot.peerId}/p2p-circuit`))
    }, 'the observer\'s relayed address')
    const crowd = net.spawnIn('crowd', [process.execPath, CROWD, String(COUNT), relayed])
    let out = ''
    let err = ''
    crowd.stderr?.on('data', (c: Buffer) => { err += c.toString() })
    await new Promise<void>((resolve, reject) => {
      crowd.stdout?.on('data', (c: Buffer) => { out += c.toString(); if (out.includes(`connected ${COUNT}`)) resolve() })
      crowd.once('exit', (code) => { reject(new Error(`the crowd exited (${code ?? 'signal'}): ${out}${err}`)) })
    })

    // the crowd as the observer sees it: COUNT peers, every one through the relay
    const crowdPeers = (r: Peers): Peers['peers'] => r.peers.filter(p => p.peerId !== boot.peerId && p.addr.includes('/p2p-circuit'))
    await waitFor(async () => crowdPeers(await apiIn<Peers>(net, 'obs', obs.home, '/v1/peers')).length >= COUNT || undefined, `${COUNT} relayed peers at the observer`).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify((await apiIn<Peers>(net, 'obs', obs.home, '/v1/peers')).peers)}\n${obs.stderr().slice(-3000)}`)
    })
    // gossipsub caches a score for one heartbeat (1 s): read them for three
    let lowest = Infinity
    const until = Date.now() + 3_000
    let samples = 0
    while (Date.now() < until || samples < 4) {
      const seen = crowdPeers(await apiIn<Peers>(net, 'obs', obs.home, '/v1/peers'))
      expect(seen.length).toBeGreaterThanOrEqual(COUNT)
      for (const p of seen) lowest = Math.min(lowest, p.score)
      samples++
    }
    // without the fix: -125 for each (graylisted)
    expect(lowest).toBeGreaterThanOrEqual(0)
  }, 180_000)
})
