import { describe, expect, it } from 'vitest'
import { LEASE_MS, LEASE_RENEW_MS, MAX_LEASE_MS, createClaim, keyHex, liveClaimants, needsMoreWorkers } from '../../protocol/index.ts'
import type { SigningKey } from '../../protocol/index.ts'
import { fixedKey, iso, makeJob, T0 } from './fixtures.ts'

const job = makeJob()
const w = [1, 2, 3].map(i => fixedKey(`lease-worker-${i}`))
const claim = (key: SigningKey, issued: number, seq: number, lease = LEASE_MS, jobId = job.jobId) => createClaim({
  jobId, buildId: job.job.buildId, worker: key.did, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
  issuedAt: iso(issued), leaseUntil: iso(issued + lease), seq
}, key)

describe('claim leases', () => {
  it('renewal cadence leaves slack: two renewals may be lost before a lease lapses', () => {
    expect(LEASE_MS / LEASE_RENEW_MS).toBeGreaterThanOrEqual(3)
    expect(MAX_LEASE_MS).toBeGreaterThanOrEqual(LEASE_MS)
  })

  it('counts distinct live claimants; a lapsed lease no longer counts; other jobs are ignored', () => {
    const claims = [claim(w[0]!, T0, 0), claim(w[1]!, T0 + 5_000, 0), claim(w[2]!, T0, 0, LEASE_MS, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')]
    expect(liveClaimants(claims, job.jobId, T0 + 1_000)).toEqual([keyHex(w[0]!.publicKey), keyHex(w[1]!.publicKey)].sort())
    expect(needsMoreWorkers(claims, job.jobId, 2, T0 + 1_000)).toBe(false)
    // w0's lease lapses at T0+30s without renewal: the job may be taken over.
    expect(liveClaimants(claims, job.jobId, T0 + LEASE_MS)).toEqual([keyHex(w[1]!.publicKey)])
    expect(needsMoreWorkers(claims, job.jobId, 2, T0 + LEASE_MS)).toBe(true)
  })

  it('the same worker claiming many times is one claimant; its highest seq decides', () => {
    const renewals = [0, 1, 2, 3].map(i => claim(w[0]!, T0 + i * LEASE_RENEW_MS, i))
    expect(liveClaimants(renewals, job.jobId, T0 + 50_000)).toHaveLength(1)
    expect(needsMoreWorkers(renewals, job.jobId, 2, T0 + 50_000)).toBe(true)
    // A later claim with a short lease releases early, whatever the arrival order.
    const release = claim(w[0]!, T0 + 31_000, 4, 1)
    expect(liveClaimants([release, ...renewals].reverse(), job.jobId, T0 + 31_500)).toEqual([])
  })
})
