import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ClaimBook } from '../../src/store/claim-book.ts'
import { CLAIM_TYPE, type Claim, type SignedClaim } from '../../protocol/index.ts'

const T0 = Date.parse('2026-01-01T00:00:00Z')
// the book keeps what the daemon validated; only the statement and its bytes matter here
const claim = (worker: string, leaseMs: number, extra: Partial<Claim> = {}): SignedClaim => ({
  envelope: { payloadType: '', payload: '', signatures: [] },
  signer: new Uint8Array(32),
  bytes: new TextEncoder().encode(`${worker}:${extra.seq ?? 1}`),
  claim: {
    _type: CLAIM_TYPE,
    jobId: 'job-1',
    buildId: 'build-1',
    worker,
    workerPeerId: `peer-${worker}`,
    issuedAt: new Date(T0).toISOString(),
    leaseUntil: new Date(T0 + leaseMs).toISOString(),
    seq: 1,
    ...extra
  }
})

describe('replica slots', () => {
  it('an attestation from a key that never claimed takes no slot', () => {
    const book = new ClaimBook()
    expect(book.taken('job-1', ['sybil-1', 'sybil-2'], T0)).toBe(0)
  })

  it('a claimant keeps its slot after its lease lapses once it has attested', () => {
    const book = new ClaimBook()
    book.record(claim('w1', 1_000))
    expect(book.taken('job-1', [], T0 + 500)).toBe(1)
    expect(book.taken('job-1', [], T0 + 2_000)).toBe(0) // died mid-build: slot freed
    expect(book.taken('job-1', ['w1'], T0 + 2_000)).toBe(1) // attested: slot stays taken
  })

  it('gossip\'s seq rule: a claim is stale unless newer than its worker\'s last on the job', () => {
    const book = new ClaimBook()
    expect(book.isStale(claim('w1', 60_000, { seq: 5 }))).toBe(false) // never seen
    book.record(claim('w1', 60_000, { seq: 5 }))
    expect(book.isStale(claim('w1', 60_000, { seq: 5 }))).toBe(true) // the same one again
    expect(book.isStale(claim('w1', 60_000, { seq: 4 }))).toBe(true) // an older one
    expect(book.isStale(claim('w1', 60_000, { seq: 6 }))).toBe(false) // a renewal
    expect(book.isStale(claim('w2', 60_000, { seq: 1 }))).toBe(false) // another worker
    expect(book.isStale(claim('w1', 60_000, { seq: 1, jobId: 'job-2' }))).toBe(false) // another job
  })

  it('a replayed or older claim never replaces the newest one, and only live leases are handed out', () => {
    const book = new ClaimBook()
    expect(book.record(claim('w1', 1_000, { seq: 2 }))).toBe(true)
    expect(book.record(claim('w1', 60_000, { seq: 1 }))).toBe(false) // an old claim cannot extend the lease
    expect(book.record(claim('w1', 60_000, { seq: 2 }))).toBe(false)
    book.record(claim('w2', 10_000))
    expect(book.allLive(T0 + 5_000).map(c => c.claim.worker)).toEqual(['w2'])
  })

  it('a spot check never takes a replica slot, claimed or attested', () => {
    const book = new ClaimBook()
    book.record(claim('rebuilder', 30_000, { purpose: 'spot-check' }))
    expect(book.taken('job-1', ['rebuilder'], T0)).toBe(0)
  })

  it('slots taken never exceed live claimants plus attesting claimants, whatever else attests', () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 6 }),
      fc.array(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 20 }),
      (claimants, attesters) => {
        const book = new ClaimBook()
        for (const w of claimants) book.record(claim(`c:${w}`, 1_000))
        const attested = [...attesters.map(a => `x:${a}`), ...claimants.slice(0, 2).map(w => `c:${w}`)]
        expect(book.taken('job-1', attested, T0)).toBe(claimants.length)
        expect(book.taken('job-1', attested, T0 + 5_000)).toBe(Math.min(2, claimants.length))
      }
    ))
  })
})
