/**
 * gossipsub peer scoring for concur's topics. PROTOCOL.md §6: a peer that
 * forwards what no honest peer would (a message our validator REJECTs) is
 * scored down, and once below the graylist threshold (-80) everything it
 * sends is dropped unread, valid messages included. Without topic
 * parameters gossipsub scores nothing: a peer that sent 6,000 invalid
 * messages still had its next message relayed by everyone.
 *
 * Only the invalid-message term (P4) is weighted. The delivery terms
 * (P2, P3, P3b) reward and punish message *volume*, which on concur's quiet
 * topics (a few jobs a minute) would penalise honest peers for traffic that
 * never existed; time in mesh (P1) would let a patient attacker bank credit.
 *
 * P4 is the square of the count: 8 invalid messages are forgiven (-64; 9
 * give -81, under the threshold), so a peer that relayed a few messages that
 * later turned invalid for us (clock skew) is not cut off. The count decays
 * by half every 10 minutes.
 *
 * gossipsub's own defaults still weight two peer terms, not set here: the
 * IP-colocation factor (P6: more than 10 peers behind one IP are penalised,
 * loopback exempt below) and behaviour penalties (P7: broken IWANT promises).
 */
import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerScoreParams, TopicScoreParams } from '@libp2p/gossipsub/score'
import { ALL_CONCUR_TOPICS, PEERS_TOPIC } from './topics.ts'

/**
 * gossipsub's graylist threshold (its default, stated so that the validators
 * and the thresholds given to gossipsub read one number).
 */
export const GRAYLIST_THRESHOLD = -80

/**
 * Whether a message from `from` is to be dropped unread because its sender is
 * graylisted. gossipsub alone does not always do it: its `acceptFrom` lets a
 * peer last scored at or above 0 through for up to 128 RPCs or 1 s without
 * scoring it again, and validation (which is what scores a flood down) runs
 * behind the RPCs. A flooder's valid message sent right after its flood
 * slipped through that window and was relayed (seen in CI, about 1 run in 3
 * locally). So every concur validator asks this first, per message.
 */
export function isGraylisted (pubsub: GossipSub, from: string, tally?: RejectTally): boolean {
  return tally?.graylisted(from) === true || scoreOf(pubsub, from) < GRAYLIST_THRESHOLD
}

/**
 * concur's own count of the messages it REJECTed from each peer, per topic,
 * decayed as gossipsub's P4 is (INVALID_DECAY a second) and summed as it
 * sums them (the square of each topic's count). Why a second count: the
 * score gossipsub answers is cached for a heartbeat (1 s), so a burst of
 * fewer than 128 invalid messages and a valid one right after, all within a
 * second, read a score of 0 and the valid one was relayed. This count moves
 * with each REJECT. Bounded: at most `maxPeers` peers (the oldest forgotten).
 */
export class RejectTally {
  private readonly peers = new Map<string, Map<string, { n: number, at: number }>>()
  private readonly maxPeers: number
  private readonly now: () => number

  constructor (opts: { maxPeers?: number, now?: () => number } = {}) {
    this.maxPeers = opts.maxPeers ?? 10_000
    this.now = opts.now ?? Date.now
  }

  private decayed (c: { n: number, at: number }, t: number): number {
    const n = c.n * Math.pow(INVALID_DECAY, Math.max(0, t - c.at) / 1000)
    // gossipsub's decayToZero: what is left below it counts as nothing
    return n < 0.1 ? 0 : n
  }

  reject (peer: string, topic: string): void {
    const t = this.now()
    let topics = this.peers.get(peer)
    if (topics == null) {
      topics = new Map()
      this.peers.set(peer, topics)
      if (this.peers.size > this.maxPeers) {
        const oldest = this.peers.keys().next().value
        if (oldest != null) this.peers.delete(oldest)
      }
    }
    const c = topics.get(topic)
    topics.set(topic, { n: (c == null ? 0 : this.decayed(c, t)) + 1, at: t })
  }

  /** the invalid-message score this count gives the peer (≤ 0) */
  score (peer: string): number {
    const t = this.now()
    let sum = 0
    for (const c of this.peers.get(peer)?.values() ?? []) sum += this.decayed(c, t) ** 2
    // P4 as gossipsub weighs it with TOPIC_SCORE: count² × weight × topic weight, per topic
    return sum * (TOPIC_SCORE.invalidMessageDeliveriesWeight ?? -1) * (TOPIC_SCORE.topicWeight ?? 1)
  }

  graylisted (peer: string): boolean {
    return this.score(peer) < GRAYLIST_THRESHOLD
  }
}

/** gossipsub's score of a peer (the method is on its class, not on its exported interface) */
export function scoreOf (pubsub: GossipSub, peerId: string): number {
  return (pubsub as unknown as { getScore: (id: string) => number }).getScore(peerId)
}

/** per decay interval (1 s): half-life of 10 minutes */
const INVALID_DECAY = Math.pow(0.5, 1 / 600)

const TOPIC_SCORE: Partial<TopicScoreParams> = {
  topicWeight: 1,
  timeInMeshWeight: 0,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 1,
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 1,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -1,
  invalidMessageDeliveriesDecay: INVALID_DECAY
}

/** The score parameters every concur peer runs with (loopback exempt from the IP-colocation penalty: see peer.ts). */
export function concurScoreParams (): Partial<PeerScoreParams> {
  const topics: Record<string, TopicScoreParams> = {}
  for (const t of [...ALL_CONCUR_TOPICS, PEERS_TOPIC]) topics[t] = TOPIC_SCORE as TopicScoreParams
  return {
    topics,
    IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1'])
  }
}
