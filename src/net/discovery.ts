import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { PEERS_TOPIC } from './topics.ts'
import { isGraylisted } from './score.ts'
import { addressesToAnnounce } from './dial-policy.ts'
import { peerExchange } from './peer-exchange.ts'

const log = logger('concur:discovery')

/** ticks one second apart after joining (or rejoining), before the slow interval */
const JOIN_TICKS = 10
/** the first redial of a bootstrap node we lost; each one after waits twice as long, up to REDIAL_MAX_MS */
const REDIAL_FIRST_MS = 500
/** the longest wait between two redials while backing off (before jitter: ×0.5 to ×1.5) */
const REDIAL_MAX_MS = 4000
/** redials with backoff (~1 minute of them), then the interval's own redial carries on: a bootstrap node gone for good is not dialled every few seconds for ever */
const REDIAL_ATTEMPTS = 16

/** A peer announcement is tiny; anything bigger is not one. */
const MAX_ANNOUNCEMENT_BYTES = 4096
const MAX_ADDRS = 16

export interface PeerDiscoveryInit {
  bootstrap: string[]
  /** publish our own addresses on the peers topic */
  announce: boolean
  /** stop dialling announced peers beyond this many connections */
  targetConnections?: number
  /** ms between announcements once settled */
  interval?: number
  /** answer peer-exchange requests with a sample of our peers (bootstrap nodes) */
  servePeers?: boolean
}

export interface PeerDiscoveryService {
  start (): Promise<void>
  stop (): Promise<void>
  /** peers we learnt of through announcements, by peer id string */
  known (): string[]
  /** the addresses a peer announced (as heard; capped in count by the announcement's own bound) */
  addressesOf (peerId: string): string[] | undefined
}

interface Announcement { peerId: string, addrs: string[], at: number }

function parseAnnouncement (data: Uint8Array): Announcement | null {
  if (data.byteLength > MAX_ANNOUNCEMENT_BYTES) return null
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
    if (typeof value !== 'object' || value == null) return null
    const { peerId, addrs, at } = value as Record<string, unknown>
    if (typeof peerId !== 'string' || !Array.isArray(addrs) || addrs.length > MAX_ADDRS || typeof at !== 'number') return null
    if (!addrs.every((a): a is string => typeof a === 'string' && a.length < 256)) return null
    peerIdFromString(peerId)
    addrs.forEach(a => multiaddr(a))
    return { peerId, addrs, at }
  } catch {
    return null
  }
}

/**
 * How peers find each other with nothing but a bootstrap node: each peer dials
 * the bootstrap list (and re-dials it when the link drops), then announces its
 * own dialable addresses on a gossip topic; peers that hear an announcement
 * dial the announcer until they have enough connections. Announcements are
 * unauthenticated hints only: dialling a peer id proves it through noise.
 */
export function peerDiscovery (init: PeerDiscoveryInit) {
  return (components: { libp2p: Libp2p<{ pubsub: GossipSub }> }): PeerDiscoveryService => {
    const { libp2p } = components
    const pubsub = libp2p.services.pubsub
    const target = init.targetConnections ?? 8
    const interval = init.interval ?? 10_000
    const bootstrap = init.bootstrap.map(a => {
      const ma = multiaddr(a)
      const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
      return { ma, peer: id != null ? peerIdFromString(id) : undefined }
    })
    const isBootstrap = (peer: PeerId): boolean => bootstrap.some(b => b.peer?.equals(peer) === true)
    const known = new Map<string, string[]>()
    const dialing = new Set<string>()
    let timer: ReturnType<typeof setTimeout> | undefined
    let ticks = 0
    let stopped = false
    /** a tick is under way (it schedules the next one when it ends) */
    let running = false
    /** the wait before the next redial while a bootstrap node is lost; undefined while none is (or the backoff ran out) */
    let redialMs: number | undefined
    let redials = 0
    /** the addresses the last announcement named: when ours differ from them, the node announces quickly again */
    let announced = ''

    const dialOne = async (key: string, dial: () => Promise<unknown>): Promise<void> => {
      if (dialing.has(key)) return
      dialing.add(key)
      try {
        await dial()
      } catch (err) {
        log('dial %s failed: %s', key, (err as Error).message)
      } finally {
        dialing.delete(key)
      }
    }

    const px = peerExchange()({ libp2p })
    let lastExchange = 0

    // ask a bootstrap node for some of its peers while we have too few
    // connections (at most every 5 s), and dial them up to the target
    const exchange = async (peer: PeerId): Promise<void> => {
      if (stopped || libp2p.getConnections().length >= target || Date.now() - lastExchange < 5000) return
      lastExchange = Date.now()
      try {
        const records = await px.ask(peer)
        for (const r of records) {
          if (stopped || libp2p.getConnections().length >= target) break
          const id = peerIdFromString(r.peerId)
          if (id.equals(libp2p.peerId) || libp2p.getConnections(id).length > 0) continue
          known.set(r.peerId, r.addrs)
          const addrs = r.addrs.map(s => multiaddr(s).encapsulate(`/p2p/${r.peerId}`))
          void dialOne(r.peerId, async () => await libp2p.dial(addrs, { signal: AbortSignal.timeout(5000) }))
        }
      } catch (err) {
        log('peer exchange with %p failed: %s', peer, (err as Error).message)
      }
    }

    const dialBootstrap = async (): Promise<void> => {
      await Promise.all(bootstrap.map(async ({ ma, peer }) => {
        const connected = (): boolean => peer != null && libp2p.getConnections(peer).length > 0
        if (!connected()) await dialOne(ma.toString(), async () => await libp2p.dial(ma, { signal: AbortSignal.timeout(5000) }))
        if (peer != null && connected()) await exchange(peer)
      }))
    }

    const announceable = (): string[] => addressesToAnnounce(libp2p.getMultiaddrs()).map(a => a.decapsulateCode(421).toString()).slice(0, MAX_ADDRS)

    const announce = async (): Promise<void> => {
      if (!init.announce) return
      const addrs = announceable()
      announced = addrs.join(' ')
      if (addrs.length === 0) return
      const body: Announcement = { peerId: libp2p.peerId.toString(), addrs, at: Date.now() }
      try {
        await pubsub.publish(PEERS_TOPIC, new TextEncoder().encode(JSON.stringify(body)))
      } catch (err) {
        log('announce failed: %s', (err as Error).message)
      }
    }

    const maybeDial = (a: Announcement): void => {
      if (a.peerId === libp2p.peerId.toString()) return
      known.set(a.peerId, a.addrs)
      const peer: PeerId = peerIdFromString(a.peerId)
      if (libp2p.getConnections(peer).length > 0) return
      if (libp2p.getConnections().length >= target) return
      const addrs = a.addrs.map(s => multiaddr(s).encapsulate(`/p2p/${a.peerId}`))
      void dialOne(a.peerId, async () => await libp2p.dial(addrs, { signal: AbortSignal.timeout(5000) }))
    }

    const onMessage = (evt: CustomEvent<{ topic: string, data: Uint8Array }>): void => {
      if (evt.detail.topic !== PEERS_TOPIC) return
      const a = parseAnnouncement(evt.detail.data)
      if (a != null) maybeDial(a)
    }

    const schedule = (ms: number): void => {
      if (stopped) return
      if (timer != null) clearTimeout(timer)
      timer = setTimeout(() => { timer = undefined; void tick() }, ms)
      timer.unref?.()
    }

    const nextDelay = (): number => {
      // a lost bootstrap node is redialled with backoff (a relay restarting is back
      // within seconds: it is found within REDIAL_MAX_MS × 1.5 of that), and with
      // jitter: when a relay restarts, the thousand peers it served do not all dial
      // it in the same instant
      if (redialMs != null) return Math.round(redialMs * (0.5 + Math.random()))
      // announce quickly while joining, then settle to the slow interval
      return ticks < JOIN_TICKS ? Math.min(1000, interval) : interval
    }

    const tick = async (): Promise<void> => {
      if (stopped || running) return
      running = true
      try {
        ticks++
        await dialBootstrap()
        if (redialMs != null) {
          const back = bootstrap.every(({ peer }) => peer == null || libp2p.getConnections(peer).length > 0)
          redialMs = back || ++redials >= REDIAL_ATTEMPTS ? undefined : Math.min(redialMs * 2, REDIAL_MAX_MS, interval)
        }
        await announce()
      } finally {
        running = false
      }
      schedule(nextDelay())
    }

    // The bootstrap node is our relay, and the way in for everyone: when its
    // connection drops (it restarted, a link broke), our reservation and the
    // circuits through it went with it. Waiting for the slow interval left a
    // NAT'd node unreachable for up to that long after the relay was back.
    const onDisconnect = (evt: CustomEvent<PeerId>): void => {
      if (stopped || !isBootstrap(evt.detail)) return
      log('lost bootstrap node %p: redialling with backoff', evt.detail)
      redialMs = REDIAL_FIRST_MS
      redials = 0
      if (!running) schedule(nextDelay())
    }

    // Our addresses changed (a relay reservation made or lost, a new listen
    // address): peers know us by what we last announced, and a NAT'd peer can
    // be reached at nothing else. A rejoin: announce quickly again, as at the
    // start, so an announcement lost before the gossip mesh re-formed is repeated.
    const onSelfUpdate = (): void => {
      if (stopped || !init.announce || announceable().join(' ') === announced) return
      ticks = 0
      if (!running && redialMs == null) schedule(0)
    }

    return {
      async start () {
        pubsub.topicValidators.set(PEERS_TOPIC, (peer, msg) => {
          // dropped unread like every concur topic (score.ts isGraylisted)
          if (isGraylisted(pubsub, peer.toString())) return TopicValidatorResult.Ignore
          return parseAnnouncement(msg.data) == null ? TopicValidatorResult.Reject : TopicValidatorResult.Accept
        })
        pubsub.subscribe(PEERS_TOPIC)
        pubsub.addEventListener('message', onMessage as EventListener)
        if (init.servePeers === true) await px.serve()
        libp2p.addEventListener('peer:disconnect', onDisconnect)
        libp2p.addEventListener('self:peer:update', onSelfUpdate)
        await dialBootstrap()
        void tick()
      },
      async stop () {
        stopped = true
        if (timer != null) clearTimeout(timer)
        libp2p.removeEventListener('peer:disconnect', onDisconnect)
        libp2p.removeEventListener('self:peer:update', onSelfUpdate)
        await px.stop()
        pubsub.removeEventListener('message', onMessage as EventListener)
      },
      known () {
        return [...known.keys()]
      },
      addressesOf (peerId) {
        return known.get(peerId)
      }
    }
  }
}
