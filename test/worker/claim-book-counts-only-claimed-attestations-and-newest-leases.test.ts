import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ClaimBook, LAPSED_KEPT_MS, MAX_CLAIMANTS_PER_JOB, MAX_CLAIMS } from '../../src/store/claim-book.ts'
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

  it('on a job naming its builders, only their claims take slots (the job\'s builders passed to takenSlots)', () => {
    const book = new ClaimBook()
    book.record(claim('w1', 1_000))
    book.record(claim('squatter', 1_000))
    expect(book.taken('job-1', ['squatter'], T0 + 500)).toBe(2) // open job: any key
    expect(book.taken('job-1', ['squatter'], T0 + 500, undefined, ['w1'])).toBe(1)
    expect(book.taken('job-1', ['squatter'], T0 + 2_000, undefined, ['w1'])).toBe(0) // attested, not named: no slot
    expect(book.taken('job-1', ['squatter'], T0 + 500, 'w1', ['w1'])).toBe(0)
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

describe('a job\'s entry in the book is bounded', () => {
  const live = (worker: string, extra: Partial<Claim> = {}): SignedClaim => claim(worker, 0, {
    issuedAt: new Date(Date.now()).toISOString(),
    leaseUntil: new Date(Date.now() + 60_000).toISOString(),
    ...extra
  })

  it('past MAX_CLAIMANTS_PER_JOB live strangers, a new stranger is not kept, a named builder takes a stranger\'s place', () => {
    const book = new ClaimBook({ isBuilder: (c) => c.worker === 'builder' })
    for (let i = 0; i < MAX_CLAIMANTS_PER_JOB; i++) expect(book.record(live(`stranger-${i}`))).toBe(true)
    expect(book.record(live('late-stranger'))).toBe(false)
    expect(book.record(live('builder'))).toBe(true)
    expect(book.allLive(Date.now()).map(c => c.claim.worker)).toContain('builder')
    expect(book.allLive(Date.now())).toHaveLength(MAX_CLAIMANTS_PER_JOB)
  })

  it('a lapsed lease makes room for anyone', () => {
    const book = new ClaimBook()
    book.record(claim('old', 1_000))
    for (let i = 1; i < MAX_CLAIMANTS_PER_JOB; i++) book.record(live(`w-${i}`))
    expect(book.record(live('newcomer'))).toBe(true)
  })
})

describe('the book over every job', () => {
  const liveOn = (jobId: string, worker: string): SignedClaim => claim(worker, 0, {
    jobId,
    issuedAt: new Date(Date.now()).toISOString(),
    leaseUntil: new Date(Date.now() + 60_000).toISOString()
  })

  it('forgets a lease lapsed long ago unless its worker attested (an attested claim still takes a slot)', () => {
    const book = new ClaimBook({ attested: (_jobId, worker) => worker === 'attester' })
    book.record(claim('attester', 1_000))
    book.record(claim('died', 1_000))
    expect(book.size()).toBe(2)
    expect(book.sweep(T0 + 1_000 + LAPSED_KEPT_MS - 1)).toBe(0)
    expect(book.sweep(T0 + 1_000 + LAPSED_KEPT_MS)).toBe(1)
    expect(book.size()).toBe(1)
    expect(book.taken('job-1', ['attester'], T0 + 1_000 + LAPSED_KEPT_MS)).toBe(1)
  })

  it(`keeps at most MAX_CLAIMS claims, then only builders' new ones`, () => {
    const book = new ClaimBook({ isBuilder: (c) => c.worker === 'builder' })
    let n = 0
    for (let j = 0; n < MAX_CLAIMS; j++) {
      for (let w = 0; w < MAX_CLAIMANTS_PER_JOB && n < MAX_CLAIMS; w++, n++) book.record(liveOn(`job-${j}`, `w-${w}`))
    }
    expect(book.size()).toBe(MAX_CLAIMS)
    expect(book.record(liveOn('job-new', 'stranger'))).toBe(false)
    expect(book.record(liveOn('job-new', 'builder'))).toBe(true)
    book.forget('job-0')
    expect(book.size()).toBe(MAX_CLAIMS + 1 - MAX_CLAIMANTS_PER_JOB)
  })
})
