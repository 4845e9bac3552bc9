/**
 * Protocol v1.1's equivocation proofs (PROTOCOL.md §8.2) beside a v1 peer.
 * The v1 peer here is gossipsub configured as a v1 concur node is: the same
 * message ids and signature policy, `allowedTopics` and subscriptions of the
 * v1 topics only. A proof published by a v1.1 node goes to no v1 peer
 * (gossipsub sends a topic's messages only to its subscribers), so the v1
 * peer decodes nothing and scores nobody down for it; jobs still travel
 * both ways between the two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Libp2p } from '@libp2p/interface'
import type { GossipSub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { COMMITMENTS_TOPIC, EQUIVOCATIONS_TOPIC, JOBS_TOPIC, createCommitment, createEquivocationProof } from '../../protocol/index.ts'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { scoreOf } from '../../src/net/score.ts'
import type { ConcurMessage } from '../../src/net/validate.ts'
import { T0, attest, fakeTreeCid, fixedKey, makeJob } from '../protocol/fixtures.ts'
import { waitFor } from '../helpers/processes.ts'
import { startV1Peer } from './v1-peer.ts'

describe('a v1 peer beside a v1.1 peer', () => {
  let v11: ConcurPeer
  let v1: Libp2p<{ pubsub: GossipSub }>
  let heardByV1: Array<{ topic: string }> = []
  const heardByV11: ConcurMessage[] = []

  beforeAll(async () => {
    v11 = await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), bootstrap: [], discovery: false })
    v11.gossip.onMessage(m => { heardByV11.push(m) })
    const started = await startV1Peer()
    v1 = started.node
    heardByV1 = started.heard
    await v11.libp2p.dial(v1.getMultiaddrs()[0]!)
    await waitFor(async () => v11.gossip.subscribers('job').some(p => p.equals(v1.peerId)) && v1.services.pubsub.getSubscribers(JOBS_TOPIC).some(p => p.equals(v11.libp2p.peerId)), 'the two peers subscribed to each other on the jobs topic')
  }, 30_000)

  afterAll(async () => {
    await v11?.stop()
    await v1?.stop()
  })

  it('is not subscribed to the proofs topic, so a proof is sent to no v1 peer and costs nobody score', async () => {
    expect(v11.gossip.subscribers('equivocation').some(p => p.equals(v1.peerId))).toBe(false)
    const liar = fixedKey('equivocator-1')
    const job = makeJob()
    const proof = createEquivocationProof(attest(liar, { jobId: job.jobId, artifact: fakeTreeCid('A') }), attest(liar, { jobId: job.jobId, artifact: fakeTreeCid('B'), finishedAt: T0 + 121_000 }))
    const { recipients } = await v11.gossip.publishRaw(EQUIVOCATIONS_TOPIC, proof.bytes)
    expect(recipients).toBe(0)
    expect(scoreOf(v1.services.pubsub, v11.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
  })

  it('is not subscribed to the commitments topic either (PROTOCOL.md §8.3): a commitment is sent to no v1 peer', async () => {
    expect(v11.gossip.subscribers('commitment').some(p => p.equals(v1.peerId))).toBe(false)
    const job = makeJob()
    const c = createCommitment({ buildId: job.job.buildId, jobId: job.jobId, workerPeerId: v11.libp2p.peerId.toString(), issuedAt: new Date(T0).toISOString(), artifact: fakeTreeCid('A') }, fixedKey('worker-1'))
    const { recipients } = await v11.gossip.publishRaw(COMMITMENTS_TOPIC, c.bytes)
    expect(recipients).toBe(0)
    expect(scoreOf(v1.services.pubsub, v11.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
  })

  it('still exchanges v1 messages both ways', async () => {
    const fromV11 = makeJob({ createdAt: Date.now(), expiresAt: Date.now() + 600_000, replicas: 1 })
    await v11.gossip.publishRaw(JOBS_TOPIC, fromV11.bytes)
    await waitFor(async () => heardByV1.some(m => m.topic === JOBS_TOPIC), 'the v1 peer hearing the v1.1 peer\'s job')
    const fromV1 = makeJob({ createdAt: Date.now(), expiresAt: Date.now() + 600_000, replicas: 2 })
    await v1.services.pubsub.publish(JOBS_TOPIC, fromV1.bytes)
    await waitFor(async () => heardByV11.some(m => m.kind === 'job' && m.value.jobId === fromV1.jobId), 'the v1.1 peer accepting the v1 peer\'s job')
    expect(heardByV1.every(m => m.topic !== EQUIVOCATIONS_TOPIC && m.topic !== COMMITMENTS_TOPIC)).toBe(true)
    expect(scoreOf(v1.services.pubsub, v11.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
  })
})
