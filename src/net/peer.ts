import { createHeliaNode } from './helia-node.ts'
import { ALL_CONCUR_TOPICS, PEERS_TOPIC } from './topics.ts'
import { gossipsubMetricsRegister, libp2pMetrics } from '../metrics/libp2p-metrics.ts'
import type { Registry } from '../metrics/registry.ts'
import { dagTransfer } from './dag-transfer/index.ts'
import type { DagTransfer } from './dag-transfer/index.ts'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { concurNoiseCrypto } from './noise-crypto.ts'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { Libp2p, PrivateKey, ServiceMap } from '@libp2p/interface'
import type { ServiceFactoryMap } from 'libp2p'
import type { Helia } from '@helia/interface'
import type { Blockstore } from 'interface-blockstore'
import type { Datastore } from 'interface-datastore'
import { logger } from '@libp2p/logger'
import { messageIdOf } from '../../protocol/index.ts'
import { concurGossip } from './gossip.ts'
import type { ConcurGossipInit } from './gossip.ts'
import type { ConcurGossip } from './gossip.ts'
import { DialGate, dialPolicyFor } from './dial-policy.ts'
import { GRAYLIST_THRESHOLD, concurScoreParams, scoreOf } from './score.ts'
import { ownRelays, relayBlind } from './relay-blind-score.ts'
import { YAMUX_STREAM_OPTIONS } from './stream-flow.ts'
import type { DialPolicy } from './dial-policy.ts'
import { peerDiscovery } from './discovery.ts'
import type { PeerDiscoveryService } from './discovery.ts'

const log = logger('concur:peer')

export interface ConcurServices extends ServiceMap {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  /** bootstrap nodes only (`relayServer`) */
  relay?: CircuitRelayService
}

export type ConcurLibp2p = Libp2p<ConcurServices>

export interface ConcurPeerInit {
  privateKey: PrivateKey
  blockstore: Blockstore
  datastore: Datastore
  /** multiaddrs to listen on; loopback by default so a test never leaves the machine */
  listen?: string[]
  /** multiaddrs (with /p2p/ ids) dialled at start and whenever we lose them */
  bootstrap?: string[]
  /** run a circuit-relay v2 server (bootstrap nodes) */
  relayServer?: boolean
  /** gossipsub peer exchange on PRUNE: bootstrap nodes hand out peers this way too */
  doPX?: boolean
  validator?: ConcurGossipInit
  /** publish our addresses on the peers topic and dial peers we learn of */
  discovery?: boolean
  maxConnections?: number
  /** dial loopback / private addresses even where this node does not listen (see dial-policy.ts) */
  allowDial?: Partial<DialPolicy>
  /**
   * Reserve a slot on a relay this node is connected to (the bootstrap node)
   * and listen on it: a node behind NAT, which nobody can dial, is reachable
   * through the relay, and DCUtR then tries a direct connection.
   */
  relayReservation?: boolean
  /** where libp2p's and gossipsub's own metrics go (the daemon's /debug/metrics/prometheus); none: not collected */
  metrics?: Registry
}

export interface ConcurPeer {
  helia: Helia & { libp2p: ConcurLibp2p }
  libp2p: ConcurLibp2p
  gossip: ConcurGossip
  discovery: PeerDiscoveryService
  /** what the dial policy refused */
  dialGate: Pick<DialGate, 'stats'>
  /** this node's gossipsub score of a peer (score.ts) */
  scoreOf (peerId: string): number
  /** DAGs in one stream from several peers (dag-transfer/); bitswap (helia) is the fallback */
  dag: DagTransfer
  stop (): Promise<void>
}

export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

/** reservations a bootstrap node's relay holds at once */
export const RELAY_MAX_RESERVATIONS = 1024
/** bytes one relayed connection may carry (each way, as libp2p counts) before the relay closes it */
export const RELAY_DATA_LIMIT = BigInt(512 * 1024 * 1024)
/** how long one relayed connection may stay open */
export const RELAY_DURATION_LIMIT_MS = 30 * 60_000

/**
 * One concur peer: libp2p (TCP, noise, yamux, identify, ping, gossipsub) with
 * helia on top for blocks (bitswap). Only the parts a peer needs are loaded:
 * no mDNS, UPnP, DHT, autoTLS, delegated routers or gateways, so a node
 * started in a test sends nothing beyond the addresses it is given.
 */
export async function createConcurPeer (init: ConcurPeerInit): Promise<ConcurPeer> {
  // the relays this node reserves on: its bootstrap nodes (relay-blind-score.ts)
  const isOwnRelay = ownRelays(init.bootstrap ?? [])
  const services: ServiceFactoryMap<ConcurServices> = {
    identify: identify(),
    ping: ping(),
    // a relayed peer's connection carries the relay's IP, not its own: without
    // it, gossipsub's colocation penalty counts it on behaviour alone (relay-blind-score.ts)
    pubsub: relayBlind(gossipsub({
      // application-level ed25519 signatures (DSSE) authenticate every object,
      // so gossipsub's own per-message signature is dead weight (measured, one
      // hop between two processes: median 0.6 ms signed, 0.3 ms with
      // StrictNoSign). Every node must use the same policy.
      globalSignaturePolicy: 'StrictNoSign',
      // a peer behind NAT may be connected through a relay only (a limited connection)
      runOnLimitedConnection: true,
      msgIdFn: (msg) => messageIdOf(msg.data),
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      doPX: init.doPX ?? false,
      // small networks: keep a mesh even with few peers
      D: 6,
      Dlo: 2,
      Dhi: 12,
      Dout: 1,
      // Scoring (score.ts): invalid messages cost their sender. And gossipsub
      // penalises more than 10 peers behind one IP (a cheap sybil defence on
      // the internet); every peer of a devnet, a test or a scale run
      // is on loopback, so beyond 10 daemons they were graylisted and their
      // subscriptions ignored (measured: 20 workers, the requester saw 14 of 21
      // peers subscribed, 3-4 workers heard no gossip at all). Loopback peers
      // are on this machine: exempt them, keep the penalty everywhere else.
      scoreParams: concurScoreParams(),
      scoreThresholds: { graylistThreshold: GRAYLIST_THRESHOLD },
      // only concur's topics are read at all: a message or subscription on a
      // topic a peer made up (a topic can be megabytes) is dropped before
      // gossipsub caches, scores or counts it (its metrics label by topic)
      allowedTopics: [...ALL_CONCUR_TOPICS, PEERS_TOPIC],
      // gossipsub collects its metrics only when handed a register; topics get their own names as labels
      ...(init.metrics != null ? { metricsRegister: gossipsubMetricsRegister(init.metrics), metricsTopicStrToLabel: new Map(ALL_CONCUR_TOPICS.map(t => [t, t])) } : {})
    }), isOwnRelay)
  }
  if (init.relayServer === true) {
    services.relay = circuitRelayServer({
      reservations: {
        // every volunteer behind NAT holds one (libp2p's default is 15)
        maxReservations: RELAY_MAX_RESERVATIONS,
        // a relayed connection carries gossip and, until DCUtR makes a direct
        // one, the DAG transfer: libp2p's default (128 KiB, 2 min) would cut
        // it off at once. Still bounded: the relay's bandwidth is its operator's
        defaultDataLimit: RELAY_DATA_LIMIT,
        defaultDurationLimit: RELAY_DURATION_LIMIT_MS
      }
    })
  } else {
    // upgrade a relayed connection to a direct one by hole punching where the NATs allow
    services.dcutr = dcutr()
  }

  const listen = init.listen ?? DEFAULT_LISTEN
  // '/p2p-circuit': ask relays we are connected to for a reservation and listen through it
  const listenAll = init.relayReservation === true ? [...listen, '/p2p-circuit'] : listen
  const dialGate = new DialGate(dialPolicyFor(listen, init.allowDial))
  const helia = await createHeliaNode({
    blockstore: init.blockstore,
    datastore: init.datastore,
    libp2p: {
      privateKey: init.privateKey,
      addresses: { listen: listenAll },
      ...(init.metrics != null ? { metrics: libp2pMetrics(init.metrics) } : {}),
      transports: [tcp(), circuitRelayTransport()],
      connectionEncrypters: [noise({ crypto: concurNoiseCrypto })],
      // a paused stream's sender stops within its window (read-bounded.ts)
      streamMuxers: [yamux({ streamOptions: { ...YAMUX_STREAM_OPTIONS } })],
      peerDiscovery: [],
      connectionManager: {
        maxConnections: init.maxConnections ?? 100
      },
      // announcements are hints from anyone: dial only the address kinds we
      // live on (a devnet's or a test's loopback included), never link-local
      connectionGater: {
        denyDialMultiaddr: dialGate.denyDialMultiaddr,
        // libp2p's relay transport takes a circuit from any connected peer,
        // reservation or not: one host could bring any number of peer ids
        // "through" itself. Inbound circuits come only through our own relays,
        // the bootstrap nodes we reserve on (relay-blind-score.ts)
        denyInboundRelayedConnection: (relay) => !isOwnRelay(relay.toString())
      },
      services
    }
  })

  await helia.start()
  const libp2p: ConcurLibp2p = helia.libp2p
  const gossip = concurGossip(init.validator)({ pubsub: libp2p.services.pubsub })
  const discovery = peerDiscovery({
    bootstrap: init.bootstrap ?? [],
    announce: init.discovery ?? true,
    servePeers: init.relayServer === true
  })({ libp2p })
  await discovery.start()
  // served from this node's own store (init.blockstore), never helia's networked one
  const dag = dagTransfer()({ libp2p, blockstore: init.blockstore })
  await dag.start()
  log('peer %p listening on %a', libp2p.peerId, libp2p.getMultiaddrs())

  return {
    helia,
    libp2p,
    gossip,
    discovery,
    dialGate,
    dag,
    scoreOf (peerId) {
      return scoreOf(libp2p.services.pubsub, peerId)
    },
    async stop () {
      await discovery.stop()
      await dag.stop()
      gossip.stop()
      await helia.stop()
    }
  }
}
