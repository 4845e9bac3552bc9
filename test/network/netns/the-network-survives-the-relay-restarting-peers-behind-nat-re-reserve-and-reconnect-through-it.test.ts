/**
 * The bootstrap node (the relay) restarts, once stopped (SIGTERM) and once
 * killed (SIGKILL, no shutdown at all), each time with the same home (same
 * key, same peer id) on the same address. Two peers behind their own NATs
 * held reservations on it: when it goes, they withdraw their relayed
 * addresses (nobody can use them); when it is back, each reserves a slot on
 * it again and announces the new relayed address, and they connect to one
 * another through it again. Every step waits on the daemons' state, with a
 * bound; no sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { cleanupAll, waitFor } from '../../helpers/processes.ts'
import { apiIn, startIn, stopIn } from '../../helpers/netns-concur.ts'
import type { NsDaemon } from '../../helpers/netns-concur.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

interface Peers { peers: Array<{ peerId: string, addr: string }> }

describe.skipIf(skip != null)('the relay restarts under two peers behind NAT', () => {
  let net: TestNetwork
  let boot: NsDaemon
  let a: NsDaemon
  let b: NsDaemon
  let circuit: string

  const relayed = async (n: NsDaemon): Promise<string[]> =>
    (await apiIn<{ multiaddrs: string[] }>(net, n.host, n.home, '/v1/id')).multiaddrs.filter(x => x.includes('/p2p-circuit'))

  /** n holds a reservation on the (restarted) bootstrap: its relayed address goes through it */
  const reserved = async (n: NsDaemon, what: string): Promise<void> => {
    await waitFor(async () => (await relayed(n)).some(x => x.startsWith(circuit)), `${n.host}'s relayed address through the bootstrap node (${what})`, 45_000)
  }

  /** n and o are connected, through the bootstrap's relay or directly (a hole punch); returns n's view of it */
  const connected = async (n: NsDaemon, o: NsDaemon, what: string): Promise<string[]> =>
    await waitFor(async () => {
      const r = await apiIn<Peers>(net, n.host, n.home, '/v1/peers')
      const via = r.peers.filter(p => p.peerId === o.peerId).map(p => p.addr)
      return via.length > 0 ? via : undefined
    }, `${n.host} connected to ${o.host} (${what})`, 45_000)

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' }, h1: { nat: true }, h2: { nat: true } },
      hosts: { boot: { segment: 'public' }, a: { segment: 'h1' }, b: { segment: 'h2' } }
    })
    boot = await startIn(net, 'boot', ['bootstrap'])
    const bootAddr = `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}`
    circuit = `${bootAddr}/p2p-circuit`
    ;[a, b] = await Promise.all([startIn(net, 'a', ['daemon', '--bootstrap', bootAddr]), startIn(net, 'b', ['daemon', '--bootstrap', bootAddr])])
  })

  afterAll(async () => {
    await net?.teardown()
    await cleanupAll()
  })

  it('before: both reserve a slot and connect to one another', async () => {
    for (const n of [a, b]) await reserved(n, 'first start')
    await connected(a, b, 'first start')
    await connected(b, a, 'first start')
  })

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`after the relay was ${signal === 'SIGTERM' ? 'stopped (SIGTERM)' : 'killed (SIGKILL)'} and restarted: both re-reserve on it and reconnect`, async () => {
      const before = boot
      const t0 = Date.now()
      const lap = (what: string): void => { console.log(`${signal} +${Date.now() - t0} ms: ${what}`) }
      await stopIn(before, signal)
      lap('stopped')
      // the reservation went with the relay's connection: its address is withdrawn, not left for others to dial in vain
      for (const n of [a, b]) {
        await waitFor(async () => (await relayed(n)).length === 0 || undefined, `${n.host} to withdraw its relayed address once the relay is gone (${signal})`, 30_000)
      }
      // and the circuits between them through it are gone (a direct connection, had DCUtR made one, would stay)
      for (const [n, o] of [[a, b], [b, a]] as const) {
        await waitFor(async () => {
          const r = await apiIn<Peers>(net, n.host, n.home, '/v1/peers')
          return r.peers.every(p => p.peerId !== o.peerId || !p.addr.includes('/p2p-circuit')) || undefined
        }, `${n.host}'s circuit to ${o.host} closed with the relay (${signal})`, 30_000)
      }
      lap('withdrawn')
      boot = await startIn(net, 'boot', ['bootstrap'], { home: before.home })
      lap('restarted')
      expect(boot.peerId, 'the same home keeps the same peer id').toBe(before.peerId)
      for (const n of [a, b]) await reserved(n, `after ${signal}`)
      lap('reserved')
      // and the bootstrap node (peer exchange, announcements) brings them together again
      for (const [n, o] of [[a, b], [b, a]] as const) {
        const via = await connected(n, o, `after ${signal}`)
        expect(via.some(x => x.startsWith(circuit) || !x.includes('/p2p-circuit')), via.join(' ')).toBe(true)
        console.log(`${n.host} → ${o.host} after ${signal}: ${via.map(x => x.includes('/p2p-circuit') ? 'relayed' : 'direct (DCUtR)').join(', ')}`)
      }
      lap('connected')
      // each knows the other by its new relayed address (what the bootstrap node hands out)
      const known = await waitFor(async () => {
        const r = await apiIn<{ announced: Record<string, string[]> }>(net, 'boot', boot.home, '/v1/peers')
        return [a, b].every(n => (r.announced[n.peerId] ?? []).some(x => x.startsWith(circuit))) ? r : undefined
      }, `both relayed addresses announced at the restarted bootstrap node (${signal})`, 45_000)
      expect(Object.keys(known.announced)).toEqual(expect.arrayContaining([a.peerId, b.peerId]))
    })
  }
})
