/**
 * Job catch-up per shard (PROTOCOL.md §15, §6.1): an asker serving some
 * shards says which in its request, and the answer carries the sharded jobs
 * of those shards and every v1 job. The filter saves bytes; it is not the
 * defence: an answerer that ignores it (a v1 node reads the request as
 * reserved) sends every job, and the asker still takes in none of another
 * shard's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { SHARD_COUNT, shardOf } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { inShards, jobSync, requestedShards } from '../../src/net/job-sync.ts'
import type { JobSync } from '../../src/net/job-sync.ts'
import { definitionOnShard, makeJob } from '../protocol/fixtures.ts'

const SERVED = [3, 12]
const live = (): { createdAt: number, expiresAt: number } => ({ createdAt: Date.now(), expiresAt: Date.now() + 600_000 })

describe('job catch-up per shard', () => {
  const jobs: SignedJob[] = [...Array.from({ length: SHARD_COUNT }, (_, s) => makeJob({ def: definitionOnShard(s, 4), sharded: true, ...live() })), makeJob({ def: definitionOnShard(5, 5), ...live() })]
  const peers: ConcurPeer[] = []
  const syncs: JobSync[] = []
  let answerer: ConcurPeer
  let v1Answerer: ConcurPeer
  let asker: ConcurPeer
  let askerSync: JobSync
  const asked: Array<ReadonlySet<number> | undefined> = []
  const heard: string[] = []

  const peer = async (shards?: number[]): Promise<ConcurPeer> => {
    const p = await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), bootstrap: [], discovery: false, ...(shards != null ? { validator: { shards } } : {}) })
    peers.push(p)
    return p
  }

  beforeAll(async () => {
    answerer = await peer()
    v1Answerer = await peer()
    asker = await peer(SERVED)
    asker.gossip.onMessage(m => { if (m.kind === 'job') heard.push(m.value.jobId) })
    const a = jobSync({ openJobs: (shards) => { asked.push(shards); return jobs.filter(j => inShards(j, shards)).map(j => j.bytes) }, liveClaims: () => [], ingest: () => {} })({ libp2p: answerer.libp2p })
    // as a v1 node answers: the request is not read
    const b = jobSync({ openJobs: () => jobs.map(j => j.bytes), liveClaims: () => [], ingest: () => {} })({ libp2p: v1Answerer.libp2p })
    askerSync = jobSync({ openJobs: () => [], liveClaims: () => [], ingest: (kind, bytes) => { asker.gossip.ingest(kind, bytes) }, shards: () => asker.gossip.shards() })({ libp2p: asker.libp2p })
    syncs.push(a, b, askerSync)
    for (const s of syncs) await s.start()
    await asker.libp2p.dial(answerer.libp2p.getMultiaddrs()[0]!)
    await asker.libp2p.dial(v1Answerer.libp2p.getMultiaddrs()[0]!)
  }, 30_000)

  afterAll(async () => {
    for (const s of syncs) await s.stop()
    for (const p of peers) await p.stop()
  })

  it('reads a request\'s shards: 1..16 shard numbers, anything else is every shard', () => {
    expect(requestedShards({ shards: [3, 12] })).toEqual(new Set([3, 12]))
    for (const r of [{}, null, 'x', { shards: [] }, { shards: [16] }, { shards: [1.5] }, { shards: Array(17).fill(0) }, { shards: '3' }]) expect(requestedShards(r)).toBeUndefined()
  })

  it('asks for its shards and is answered with their jobs and the v1 job alone', async () => {
    const r = await askerSync.pullFrom(answerer.libp2p.peerId)
    expect(asked.at(-1)).toEqual(new Set(SERVED))
    expect(r.jobs).toBe(SERVED.length + 1)
    const expected = jobs.filter(j => j.job.shards === undefined || SERVED.includes(shardOf(j.job.buildId))).map(j => j.jobId)
    expect([...heard].sort()).toEqual([...expected].sort())
  })

  it('from an answerer that ignores the filter, takes in no job of another shard', async () => {
    heard.length = 0
    const r = await askerSync.pullFrom(v1Answerer.libp2p.peerId)
    // every job was sent
    expect(r.jobs).toBe(jobs.length)
    // what it took in (delivered to the application) is of its shards alone
    expect(heard.every(id => { const j = jobs.find(x => x.jobId === id)!; return j.job.shards === undefined || SERVED.includes(shardOf(j.job.buildId)) })).toBe(true)
    for (const j of jobs) {
      const mine = j.job.shards === undefined || SERVED.includes(shardOf(j.job.buildId))
      if (!mine) expect(asker.gossip.ingest('job', j.bytes)).toBe('ignore')
    }
  })
})
