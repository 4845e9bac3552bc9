/**
 * Gossip topics as the network layer uses them. The concur topics, and which
 * kind of message each carries, are defined once in protocol/message.ts
 * (TOPIC_KINDS); this module only derives the lists the node needs from it and
 * adds the peers topic, which is a network concern, not part of the protocol.
 */
import { ADVERTS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC, COMMITMENTS_TOPIC, EQUIVOCATIONS_TOPIC, JOBS_TOPIC, SHARD_TOPICS, TOPIC_KINDS, shardTopic } from '../../protocol/index.ts'
import type { ConcurTopic, MessageKind } from '../../protocol/index.ts'

export { ADVERTS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC, COMMITMENTS_TOPIC, EQUIVOCATIONS_TOPIC, JOBS_TOPIC, SHARD_TOPICS, shardTopic }
export type { ConcurTopic, MessageKind }

/** Peer announcements (multiaddrs) used to find peers beyond the bootstrap node. */
export const PEERS_TOPIC = '/concur/1/peers/json'

/** The unsharded topics, which every concur node subscribes to and validates (v1's, and equivocation proofs). */
export const CONCUR_TOPICS: readonly ConcurTopic[] = Object.freeze(Object.keys(TOPIC_KINDS) as ConcurTopic[])

/** The topic each kind of message is published on (the inverse of TOPIC_KINDS). */
export const TOPIC_OF_KIND: Readonly<Record<MessageKind, ConcurTopic>> = Object.freeze(
  Object.fromEntries(CONCUR_TOPICS.map(topic => [TOPIC_KINDS[topic], topic])) as Record<MessageKind, ConcurTopic>
)

/** Every concur topic a node may read: the unsharded ones and every shard's (PROTOCOL.md §6.1). */
export const ALL_CONCUR_TOPICS: readonly string[] = Object.freeze([...CONCUR_TOPICS, ...SHARD_TOPICS])
