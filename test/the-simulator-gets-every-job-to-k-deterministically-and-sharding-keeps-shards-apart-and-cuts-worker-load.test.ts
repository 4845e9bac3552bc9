import { describe, expect, it } from 'vitest'
import { installFastVerify } from '../src/net/fast-verify.ts'
import { simulate } from './bench/simulate/simulate.ts'
import { PEER_ID, claimMessage, jobMessage, nodeKey, wall } from './bench/simulate/messages.ts'
import { LEASE_MS, createClaim, signingKeyFromSeed } from '../protocol/index.ts'
import type { SimulateOptions } from './bench/simulate/simulate.ts'

// a light load (no worker queueing), so every job's replicas start together
const base: Omit<SimulateOptions, 'version'> = { nodes: 150, jobsPerS: 0.1, seconds: 120, seed: 7, requesterShare: 0.02, trusted: 64, shardsPerWorker: 4 }

describe('npm run bench -- --simulate (the simulator)', () => {
  installFastVerify()
  const v1 = simulate({ ...base, version: 'v1' })
  const v11 = simulate({ ...base, version: 'v1.1' })

  it('gets every job to k counted attestations and an accepting verdict, in v1 and in v1.1', () => {
    expect(v1.jobs).toBeGreaterThan(5)
    expect(v1.accepted).toBe(v1.jobs)
    expect(v11.jobs).toBe(v1.jobs)
    expect(v11.accepted).toBe(v11.jobs)
  })

  it('gives a v1.1 worker fewer messages than a v1 worker (it hears its shards only)', () => {
    expect(v11.messagesPerS.p50).toBeLessThan(v1.messagesPerS.p50)
    expect(v11.uniquePerS.p50).toBeLessThan(v1.uniquePerS.p50)
  })

  it('signs through OpenSSL the very bytes protocol/ makes (same key, same claim envelope)', () => {
    const key = signingKeyFromSeed(nodeKey(42).seed)
    expect(nodeKey(42).publicKey).toEqual(key.publicKey)
    const job = jobMessage(nodeKey(1), 0, 1000, 3, [key.did], 3_600_000)
    const ours = claimMessage(42, job, 2000, LEASE_MS, 1)
    const theirs = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: key.did, workerPeerId: PEER_ID, issuedAt: new Date(wall(2000)).toISOString(), leaseUntil: new Date(wall(2000) + LEASE_MS).toISOString(), seq: 1 }, key)
    expect(Buffer.from(ours.bytes).toString()).toBe(Buffer.from(theirs.bytes).toString())
  })

  it('is a function of its seed', () => {
    const again = simulate({ ...base, version: 'v1.1' })
    const figures = (r: typeof v11): unknown => ({ ...r, elapsedMs: 0, validateCoreShare: 0, validateMsPerMessage: 0, detail: [...r.detail.unique] })
    expect(figures(again)).toEqual(figures(v11))
  })

  it('never delivers a shard\'s messages to a worker not subscribed to it', () => {
    const { unique, shardsOf, publishedPerShard, meshOf } = v11.detail
    for (let w = v11.requesters; w < base.nodes; w++) {
      const mine = shardsOf[w]!
      expect(mine.length).toBe(4)
      for (let s = 0; s < 16; s++) if (!mine.includes(s)) expect(meshOf(s).local[w]).toBe(-1)
      // at most what its own shards carried (less what it published itself)
      expect(unique[w]).toBeLessThanOrEqual(mine.reduce((n, s) => n + publishedPerShard[s]!, 0))
    }
  })

  it('with the claim order, idle named builders no longer all build the same job (PROTOCOL.md §7 rule 4)', () => {
    // the load here is light: most of a job's 64 builders are idle, which is
    // when every one of them used to claim within the jitter
    const without = simulate({ ...base, version: 'v1', claimOrder: false })
    expect(without.duplicateBuildsPerJob).toBeGreaterThan(1)
    expect(v1.duplicateBuildsPerJob).toBeLessThan(without.duplicateBuildsPerJob / 4)
  })
})
