/**
 * Gossip topic names: /concur/<protocol major>/<kind>/<encoding>, the way Ethereum's
 * consensus network names its topics, so a future version or encoding gets its own
 * topic instead of confusing old peers.
 */
export const JOBS_TOPIC = '/concur/1/jobs/json'
export const ATTESTATIONS_TOPIC = '/concur/1/attestations/json'
export const CLAIMS_TOPIC = '/concur/1/claims/json'
/** Peer announcements (multiaddrs) used to find peers beyond the bootstrap node. */
export const PEERS_TOPIC = '/concur/1/peers/json'

export const CONCUR_TOPICS = [JOBS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC] as const
export type ConcurTopic = typeof CONCUR_TOPICS[number]

export type MessageKind = 'job' | 'attestation' | 'claim'

export const TOPIC_OF_KIND: Record<MessageKind, ConcurTopic> = {
  job: JOBS_TOPIC,
  attestation: ATTESTATIONS_TOPIC,
  claim: CLAIMS_TOPIC
}
