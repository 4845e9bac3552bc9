/**
 * A v1 concur peer at the gossip layer: gossipsub configured as a v1 node
 * is (the same message ids and signature policy), with the v1 topics alone in
 * `allowedTopics` and subscriptions. What v1.1 adds on topics of its own
 * (equivocation proofs, shards) is what such a peer must never be sent.
 */
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, JOBS_TOPIC, messageIdOf } from '../../protocol/index.ts'
import { PEERS_TOPIC } from '../../src/net/topics.ts'

export const V1_TOPICS = [JOBS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC]

/** the peer, and the topic of every message it was delivered, in order */
export async function startV1Peer (): Promise<{ node: Libp2p<{ pubsub: GossipSub }>, heard: Array<{ topic: string }> }> {
  const heard: Array<{ topic: string }> = []
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', msgIdFn: (msg) => messageIdOf(msg.data), allowPublishToZeroTopicPeers: true, emitSelf: false, allowedTopics: [...V1_TOPICS, PEERS_TOPIC] })
    }
  })
  for (const t of V1_TOPICS) node.services.pubsub.subscribe(t)
  node.services.pubsub.addEventListener('message', (e) => { heard.push({ topic: e.detail.topic }) })
  return { node, heard }
}
