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
 * P4 is the square of the count: 9 invalid messages are forgiven (-81 needs
 * 10), so a peer that relayed a few messages that later turned invalid for
 * us (clock skew) is not cut off. The count decays by half every 10 minutes.
 */
import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerScoreParams, TopicScoreParams } from '@libp2p/gossipsub/score'
import { CONCUR_TOPICS, PEERS_TOPIC } from './topics.ts'

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
export function isGraylisted (pubsub: GossipSub, from: string): boolean {
  return scoreOf(pubsub, from) < GRAYLIST_THRESHOLD
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
  for (const t of [...CONCUR_TOPICS, PEERS_TOPIC]) topics[t] = TOPIC_SCORE as TopicScoreParams
  return {
    topics,
    IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1'])
  }
}
