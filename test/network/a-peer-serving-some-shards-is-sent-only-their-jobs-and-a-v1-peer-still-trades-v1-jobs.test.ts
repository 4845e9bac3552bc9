/**
 * Shards at the gossip layer (PROTOCOL.md §6.1, protocol v1.1). A worker
 * serving shard 3 subscribes to shard 3's topics (and the unsharded ones):
 * gossipsub sends a topic's messages only to its subscribers, so the jobs of
 * the other 15 shards are never sent to it (its validator never runs on
 * them), and catch-up does not bring them in either. Beside them, a v1 peer
 * (gossipsub configured as a v1 concur node is: the v1 topics only, in
 * `allowedTopics` and subscriptions) still trades v1 jobs and claims with
 * both, and is sent nothing of the shards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Libp2p } from '@libp2p/interface'
import type { GossipSub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { CLAIMS_TOPIC, JOBS_TOPIC, SHARD_COUNT, createClaim, shardOf } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { scoreOf } from '../../src/net/score.ts'
import type { ConcurMessage } from '../../src/net/validate.ts'
import { definitionOnShard, fixedKey, makeJob } from '../protocol/fixtures.ts'
import { waitFor } from '../helpers/processes.ts'
import { V1_TOPICS, startV1Peer } from './v1-peer.ts'

const SERVED = 3
const live = (): { createdAt: number, expiresAt: number } => ({ createdAt: Date.now(), expiresAt: Date.now() + 600_000 })

describe('shards at the gossip layer, beside a v1 peer', () => {
  let all: ConcurPeer
  let sharded: ConcurPeer
  let v1: Libp2p<{ pubsub: GossipSub }>
  let heardByV1: Array<{ topic: string }> = []
  const heardBySharded: ConcurMessage[] = []
  /** one sharded job on each shard */
  const jobs: SignedJob[] = Array.from({ length: SHARD_COUNT }, (_, s) => makeJob({ def: definitionOnShard(s, 1), sharded: true, ...live() }))
  const mine = jobs[SERVED]!

  const peer = async (shards?: number[]): Promise<ConcurPeer> => await createConcurPeer({
    privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), bootstrap: [], discovery: false,
    ...(shards != null ? { validator: { shards } } : {})
  })

  beforeAll(async () => {
    all = await peer()
    sharded = await peer([SERVED])
    sharded.gossip.onMessage(m => { heardBySharded.push(m) })
    const started = await startV1Peer()
    v1 = started.node
    heardByV1 = started.heard
    await all.libp2p.dial(sharded.libp2p.getMultiaddrs()[0]!)
    await all.libp2p.dial(v1.getMultiaddrs()[0]!)
    await sharded.libp2p.dial(v1.getMultiaddrs()[0]!)
    await waitFor(async () => all.gossip.subscribers('job', mine.job).some(p => p.equals(sharded.libp2p.peerId)) &&
      all.gossip.subscribers('job').some(p => p.equals(v1.peerId)) && sharded.gossip.subscribers('job').some(p => p.equals(v1.peerId)) &&
      v1.services.pubsub.getSubscribers(JOBS_TOPIC).some(p => p.equals(sharded.libp2p.peerId)), 'the three peers subscribed to one another')
  }, 30_000)

  afterAll(async () => {
    await all?.stop()
    await sharded?.stop()
    await v1?.stop()
  })

  it('serves the shards it was given, and a default peer every shard', () => {
    expect(sharded.gossip.shards()).toEqual([SERVED])
    expect(all.gossip.shards()).toHaveLength(SHARD_COUNT)
  })

  it('a peer serving shard 3 is sent no job of another shard; it hears its own shard\'s job and the v1 job', async () => {
    const verifiedBefore = sharded.gossip.stats().verified
    for (const [s, job] of jobs.entries()) {
      if (s === SERVED) continue
      // sent to nobody: the peer serving shard 3 is not subscribed there, the v1 peer reads no shard
      expect((await all.gossip.publish('job', job.bytes)).recipients).toBe(0)
    }
    expect((await all.gossip.publish('job', mine.bytes)).recipients).toBe(1)
    const plain = makeJob({ def: definitionOnShard(SERVED + 1, 2), ...live() })
    expect((await all.gossip.publish('job', plain.bytes)).recipients).toBe(2)
    await waitFor(async () => [mine.jobId, plain.jobId].every(id => heardBySharded.some(m => m.kind === 'job' && m.value.jobId === id)), 'the shard-3 job and the v1 job at the shard-3 peer')
    // the two, and nothing else: its validator ran on no other shard's job
    expect(heardBySharded.filter(m => m.kind === 'job').map(m => m.kind === 'job' ? shardOf(m.value.job.buildId) : -1).sort()).toEqual([SERVED, SERVED + 1].sort())
    expect(sharded.gossip.stats().verified - verifiedBefore).toBe(2)
    await waitFor(async () => heardByV1.some(m => m.topic === JOBS_TOPIC), 'the v1 peer hearing the v1 job')
    expect(heardByV1.every(m => V1_TOPICS.includes(m.topic))).toBe(true)
  })

  it('nor takes one in by catch-up: a sharded job of another shard is IGNOREd unread, its own accepted', () => {
    expect(sharded.gossip.ingest('job', jobs[SERVED + 2]!.bytes)).toBe('ignore')
    expect(sharded.gossip.ingest('job', jobs[SERVED]!.bytes)).not.toBe('reject')
    expect(all.gossip.ingest('job', jobs[SERVED + 2]!.bytes)).toBe('accept')
  })

  it('a v1 job from the v1 peer reaches the sharded peer, and its claim goes back to the v1 peer on the v1 topic', async () => {
    const fromV1 = makeJob({ def: definitionOnShard(9, 3), replicas: 2, ...live() })
    await v1.services.pubsub.publish(JOBS_TOPIC, fromV1.bytes)
    await waitFor(async () => heardBySharded.some(m => m.kind === 'job' && m.value.jobId === fromV1.jobId), 'the sharded peer accepting the v1 peer\'s job')
    const w = fixedKey('sharded-worker')
    const claim = createClaim({ jobId: fromV1.jobId, buildId: fromV1.job.buildId, worker: w.did, workerPeerId: sharded.libp2p.peerId.toString(), issuedAt: new Date().toISOString(), leaseUntil: new Date(Date.now() + 30_000).toISOString(), seq: 1 }, w)
    const before = heardByV1.filter(m => m.topic === CLAIMS_TOPIC).length
    await sharded.gossip.publish('claim', claim.bytes, fromV1.job)
    await waitFor(async () => heardByV1.filter(m => m.topic === CLAIMS_TOPIC).length > before, 'the v1 peer hearing the claim')
    expect(scoreOf(v1.services.pubsub, sharded.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
    expect(scoreOf(v1.services.pubsub, all.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
  })
})
