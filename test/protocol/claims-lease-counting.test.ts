import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CLAIMS_TOPIC, CLAIM_PAYLOAD_TYPE, CLAIM_TYPE, LEASE_MS, LEASE_RENEW_MS, LEASE_SHARE, MAX_LEASE_MS, expectedBuildMs, leaseFor, MAX_RELEASE_REASON, ProtocolError, RELEASE_PAYLOAD_TYPE, RELEASE_TYPE, SchemaError, countsAsBuilder, createClaim, decodeClaim, envelopeBytes, generateSigningKey, replacesClaim, signEnvelope, takenSlots, utf8Encode, validateClaim, validateTopicMessage } from '../../protocol/index.ts'
import type { Claim, ClaimPurpose, ClaimRelease, SigningKey } from '../../protocol/index.ts'
import { fixedKey, iso, makeJob, T0 } from './fixtures.ts'

const job = makeJob()
const w = [1, 2, 3].map(i => fixedKey(`lease-worker-${i}`))
const did = (i: number): string => w[i]!.did
const claim = (key: SigningKey, issued: number, seq: number, lease = LEASE_MS, purpose?: ClaimPurpose, release?: ClaimRelease): Claim => createClaim({
  jobId: job.jobId,
  buildId: job.job.buildId,
  worker: key.did,
  workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
  issuedAt: iso(issued),
  leaseUntil: iso(issued + lease),
  seq,
  ...(purpose != null ? { purpose } : {}),
  ...(release != null ? { release } : {})
}, key).claim

describe('claim leases', () => {
  it('renewal cadence leaves slack: two renewals may be lost before a lease lapses', () => {
    expect(LEASE_MS / LEASE_RENEW_MS).toBeGreaterThanOrEqual(3)
    expect(MAX_LEASE_MS).toBeGreaterThanOrEqual(LEASE_MS)
  })
})

/**
 * The claims a worker makes over a build of `buildMs` (the first claim and
 * its renewals), scheduled as src/worker does: each claim's lease and the
 * wait before the next from leaseFor(expectedBuildMs(...)) at that moment.
 */
function schedule (buildMs: number, wallSeconds: number, pastMs?: number): Array<{ at: number, leaseMs: number }> {
  const out: Array<{ at: number, leaseMs: number }> = []
  for (let at = 0; at < buildMs;) {
    const lease = leaseFor(expectedBuildMs(wallSeconds, at, pastMs))
    out.push({ at, leaseMs: lease.leaseMs })
    at += lease.renewMs
  }
  return out
}

describe('leases scaled to the build (leaseFor, PROTOCOL.md §7 rule 1)', () => {
  it('a short build keeps the 30 s lease renewed every 10 s; a long one a lease of a fifth of it, at most MAX_LEASE_MS', () => {
    expect(leaseFor(0)).toEqual({ leaseMs: LEASE_MS, renewMs: LEASE_RENEW_MS })
    expect(leaseFor(LEASE_MS * LEASE_SHARE)).toEqual({ leaseMs: LEASE_MS, renewMs: LEASE_RENEW_MS })
    expect(leaseFor(5 * 60_000)).toEqual({ leaseMs: 60_000, renewMs: 20_000 })
    expect(leaseFor(3_600_000)).toEqual({ leaseMs: MAX_LEASE_MS, renewMs: MAX_LEASE_MS / 3 })
    expect(leaseFor(Number.POSITIVE_INFINITY)).toEqual({ leaseMs: MAX_LEASE_MS, renewMs: MAX_LEASE_MS / 3 })
    expect(leaseFor(Number.NaN).leaseMs).toBe(MAX_LEASE_MS)
    fc.assert(fc.property(fc.double({ min: -1e12, max: 1e12, noNaN: true }), (ms) => {
      const { leaseMs, renewMs } = leaseFor(ms)
      // every lease is one a version 1 decoder accepts, and two renewals may be lost before it lapses
      return leaseMs >= LEASE_MS && leaseMs <= MAX_LEASE_MS && Number.isInteger(leaseMs) && Number.isInteger(renewMs) && leaseMs / renewMs >= 3
    }))
  })

  it('expects the longest of its past build and the time run so far, never beyond the job\'s wallSeconds', () => {
    expect(expectedBuildMs(3600, 0)).toBe(0)
    expect(expectedBuildMs(3600, 1_000, 600_000)).toBe(600_000)
    expect(expectedBuildMs(3600, 900_000, 600_000)).toBe(900_000)
    expect(expectedBuildMs(60, 900_000, 600_000)).toBe(60_000)
  })

  it('a one-hour build renews at most 112 times (90 once its environment\'s duration is known), not 360', () => {
    const hour = 3_600_000
    // the fixed 10 s cadence: 360 claims over the hour
    expect(Math.ceil(hour / LEASE_RENEW_MS)).toBe(360)
    expect(schedule(hour, 7200).length).toBeLessThanOrEqual(112)
    expect(schedule(hour, 7200, hour).length).toBe(hour / (MAX_LEASE_MS / 3))
    // a build the job bounds to a minute keeps today's cadence: its lease is never longer than 30 s
    expect(schedule(60_000, 60, hour).every(c => c.leaseMs === LEASE_MS)).toBe(true)
  })

  it('a vanished worker\'s slot frees within its last lease: at most MAX_LEASE_MS, and a fifth of the build it was on', () => {
    for (const [buildMs, pastMs] of [[3_600_000, undefined], [3_600_000, 3_600_000], [20 * 60_000, undefined], [60_000, undefined]] as const) {
      const claims = schedule(buildMs, 7200, pastMs)
      // the worker vanishes right after its last claim: the slot is held that claim's lease, then frees
      const last = claims.at(-1)!
      const signed = claims.map((c, i) => claim(w[0]!, T0 + c.at, i, c.leaseMs))
      expect(takenSlots(signed, [], T0 + last.at + last.leaseMs - 1)).toBe(1)
      expect(takenSlots(signed, [], T0 + last.at + last.leaseMs)).toBe(0)
      expect(last.leaseMs).toBeLessThanOrEqual(MAX_LEASE_MS)
      expect(last.leaseMs).toBeLessThanOrEqual(Math.max(LEASE_MS, buildMs / LEASE_SHARE))
      // and until then, the lease never lapses between renewals, even with two of them lost
      for (let i = 0; i + 3 < claims.length; i++) expect(claims[i]!.at + claims[i]!.leaseMs).toBeGreaterThan(claims[i + 2]!.at)
    }
  })
})

describe('replica slots (takenSlots, PROTOCOL.md §7)', () => {
  it('a live replica lease takes a slot; a lapsed one without an attestation frees it', () => {
    const claims = [claim(w[0]!, T0, 0), claim(w[1]!, T0 + 5_000, 0)]
    expect(takenSlots(claims, [], T0 + 1_000)).toBe(2)
    // w0's lease lapses at T0+30s without renewal: the job may be taken over
    expect(takenSlots(claims, [], T0 + LEASE_MS)).toBe(1)
    expect(takenSlots(claims, [], T0 + 5_000 + LEASE_MS)).toBe(0)
  })

  it('a claimant keeps its slot after its lease once it attested', () => {
    const claims = [claim(w[0]!, T0, 0)]
    expect(takenSlots(claims, [], T0 + 2 * LEASE_MS)).toBe(0)
    expect(takenSlots(claims, [did(0)], T0 + 2 * LEASE_MS)).toBe(1)
    // an attestation and a live lease of one worker are one slot
    expect(takenSlots(claims, [did(0), did(0)], T0 + 1_000)).toBe(1)
  })

  it('an attestation from a key that never claimed takes no slot', () => {
    expect(takenSlots([], [did(0), did(1), 'did:key:z6MkmiR7v3fr3AMfLPou6jHDtQUXX9azgDaTbchaoxPbAQdC'], T0)).toBe(0)
    expect(takenSlots([claim(w[0]!, T0, 0)], [did(1), did(2)], T0 + 1_000)).toBe(1)
  })

  it('a spot-check claim takes no slot, leased or attested', () => {
    const spot = claim(w[0]!, T0, 0, LEASE_MS, 'spot-check')
    expect(takenSlots([spot], [], T0 + 1_000)).toBe(0)
    expect(takenSlots([spot], [did(0)], T0 + 1_000)).toBe(0)
    // 'replica' spelt out is the same as absent
    expect(takenSlots([claim(w[1]!, T0, 0, LEASE_MS, 'replica')], [], T0 + 1_000)).toBe(1)
  })

  it('a higher seq replaces a lower one whatever the arrival order; a lower or equal one changes nothing', () => {
    const renewals = [0, 1, 2, 3].map(i => claim(w[0]!, T0 + i * LEASE_RENEW_MS, i))
    // the same worker claiming many times is one slot, live until its newest lease ends
    expect(takenSlots(renewals, [], T0 + 50_000)).toBe(1)
    expect(takenSlots([...renewals].reverse(), [], T0 + 50_000)).toBe(1)
    // a later claim with a short lease releases early, in any order
    const release = claim(w[0]!, T0 + 31_000, 4, 1)
    expect(takenSlots([release, ...renewals], [], T0 + 31_500)).toBe(0)
    expect(takenSlots([...renewals, release], [], T0 + 31_500)).toBe(0)
    // a replayed older claim with a long lease cannot take the slot back
    expect(takenSlots([release, claim(w[0]!, T0 + 31_000, 3, MAX_LEASE_MS)], [], T0 + 31_500)).toBe(0)
    expect(replacesClaim(release, renewals[3])).toBe(true)
    expect(replacesClaim(renewals[3]!, release)).toBe(false)
    expect(replacesClaim(renewals[3]!, renewals[3])).toBe(false)
    expect(replacesClaim(renewals[0]!, undefined)).toBe(true)
  })

  it('a worker whose newest claim is a spot check takes no slot, whatever it claimed before', () => {
    const replica = claim(w[0]!, T0, 0)
    const spot = claim(w[0]!, T0 + 1_000, 1, LEASE_MS, 'spot-check')
    expect(takenSlots([spot, replica], [did(0)], T0 + 2_000)).toBe(0)
  })

  it('the asking worker is not counted (except)', () => {
    const claims = [claim(w[0]!, T0, 0), claim(w[1]!, T0, 0)]
    expect(takenSlots(claims, [did(0)], T0 + 1_000, did(0))).toBe(1)
    expect(takenSlots(claims, [], T0 + 1_000, did(2))).toBe(2)
  })

  it('slots taken = replica claimants that are live or attested, whatever else attests, in any order', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ worker: fc.nat({ max: 2 }), at: fc.nat({ max: 60_000 }), seq: fc.nat({ max: 5 }), spot: fc.boolean() }), { maxLength: 12 }),
      fc.subarray([0, 1, 2]),
      fc.nat({ max: 100_000 }),
      (specs, attesters, t) => {
        const claims = specs.map(s => claim(w[s.worker]!, T0 + s.at, s.seq, LEASE_MS, s.spot ? 'spot-check' : undefined))
        const attested = [...attesters.map(did), 'did:key:z6MkmiR7v3fr3AMfLPou6jHDtQUXX9azgDaTbchaoxPbAQdC']
        // the reference: for each worker its newest claim (first seen on a tie)
        let expected = 0
        for (let i = 0; i < w.length; i++) {
          const mine = claims.filter(c => c.worker === did(i))
          const newest = mine.reduce<Claim | undefined>((a, c) => a === undefined || c.seq > a.seq ? c : a, undefined)
          if (newest == null || newest.purpose === 'spot-check') continue
          if (Date.parse(newest.leaseUntil) > T0 + t || attesters.includes(i)) expected++
        }
        expect(takenSlots(claims, attested, T0 + t)).toBe(expected)
        expect(takenSlots(claims, attested, T0 + t)).toBeLessThanOrEqual(w.length)
      }
    ))
  })
})

describe('replica slots on a job that names its builders (takenSlots with builders, PROTOCOL.md §7 rule 3)', () => {
  // w0, w1 named; w2 and throw-away keys are not
  const builders = [did(0), did(1)].sort()

  it('a key the job does not name takes no slot: not while its lease is live, not after it attested', () => {
    const stranger = claim(w[2]!, T0, 0)
    expect(takenSlots([stranger], [], T0 + 1_000, undefined, builders)).toBe(0)
    expect(takenSlots([stranger], [did(2)], T0 + 1_000, undefined, builders)).toBe(0)
    expect(takenSlots([stranger], [did(2)], T0 + 2 * LEASE_MS, undefined, builders)).toBe(0)
    // the same claims on an open job: today's rule
    expect(takenSlots([stranger], [], T0 + 1_000)).toBe(1)
    expect(takenSlots([stranger], [did(2)], T0 + 2 * LEASE_MS)).toBe(1)
  })

  it('a named builder takes a slot as on an open job: live lease, or claimed then attested; a spot check none', () => {
    const claims = [claim(w[0]!, T0, 0), claim(w[1]!, T0, 0, LEASE_MS, 'spot-check'), claim(w[2]!, T0, 0)]
    expect(takenSlots(claims, [], T0 + 1_000, undefined, builders)).toBe(1)
    expect(takenSlots(claims, [], T0 + 2 * LEASE_MS, undefined, builders)).toBe(0)
    expect(takenSlots(claims, [did(0), did(1), did(2)], T0 + 2 * LEASE_MS, undefined, builders)).toBe(1)
    // the asking worker itself is still left out
    expect(takenSlots(claims, [], T0 + 1_000, did(0), builders)).toBe(0)
  })

  it('100 throw-away keys that claimed then attested, and renewing ones, take none of 2 slots; the builders still can', () => {
    const squatters = Array.from({ length: 100 }, () => generateSigningKey())
    const renewers = Array.from({ length: 4 }, () => generateSigningKey())
    const claims = [
      ...squatters.map(k => claim(k, T0, 1, 2_000)),
      // renewing every 3 s with a higher seq: always a live lease
      ...renewers.flatMap(k => [0, 1, 2, 3, 4].map(i => claim(k, T0 + i * 3_000, i + 1, 10_000)))
    ]
    const attested = squatters.map(k => k.did)
    expect(takenSlots(claims, attested, T0 + 13_000)).toBe(104) // open job: every slot squatted
    expect(takenSlots(claims, attested, T0 + 13_000, undefined, builders)).toBe(0)
    expect(takenSlots([...claims, claim(w[0]!, T0 + 13_000, 0)], attested, T0 + 14_000, undefined, builders)).toBe(1)
  })

  it('countsAsBuilder: every key on an open job, only the named ones otherwise', () => {
    expect(countsAsBuilder(undefined, did(2))).toBe(true)
    expect(countsAsBuilder(builders, did(0))).toBe(true)
    expect(countsAsBuilder(builders, did(2))).toBe(false)
  })

  it('with builders, slots taken = the open-job count over the named keys\' claims alone; strangers never change it', () => {
    const strangers = [fixedKey('lease-stranger-1'), fixedKey('lease-stranger-2')]
    const all = [...w, ...strangers]
    fc.assert(fc.property(
      fc.array(fc.record({ worker: fc.nat({ max: all.length - 1 }), at: fc.nat({ max: 60_000 }), seq: fc.nat({ max: 5 }), spot: fc.boolean() }), { maxLength: 16 }),
      fc.option(fc.subarray(all.map(k => k.did), { minLength: 1 }), { nil: undefined }),
      fc.subarray(all.map(k => k.did)),
      fc.nat({ max: 100_000 }),
      (specs, named, attested, t) => {
        const sorted = named === undefined ? undefined : [...named].sort()
        const claims = specs.map(s => claim(all[s.worker]!, T0 + s.at, s.seq, LEASE_MS, s.spot ? 'spot-check' : undefined))
        const counted = takenSlots(claims, attested, T0 + t, undefined, sorted)
        // the reference: the open-job rule over the claims of keys the job names
        expect(counted).toBe(takenSlots(claims.filter(c => countsAsBuilder(sorted, c.worker)), attested, T0 + t))
        if (sorted !== undefined) {
          // claims and attestations by keys outside the set change nothing
          const outside = all.filter(k => !sorted.includes(k.did))
          const more = outside.map(k => claim(k, T0 + t, 99, MAX_LEASE_MS))
          expect(takenSlots([...claims, ...more], [...attested, ...outside.map(k => k.did)], T0 + t, undefined, sorted)).toBe(counted)
          expect(counted).toBeLessThanOrEqual(sorted.length)
        }
      }
    ))
  })
})

describe('releases (PROTOCOL.md §5.3, §7 rule 6)', () => {
  const declined: ClaimRelease = { kind: 'declined', reason: 'asks for more than this volunteer allows: cpus 2 > 1' }

  it('a live release takes no slot, and replaces the worker\'s claim (a higher seq), freeing its slot at once', () => {
    const held = claim(w[0]!, T0, 0)
    expect(takenSlots([held], [], T0 + 1_000)).toBe(1)
    const released = claim(w[0]!, T0 + 2_000, 1, LEASE_MS, undefined, { kind: 'inputs-unavailable', reason: 'could not fetch the rootfs' })
    expect(takenSlots([held, released], [], T0 + 3_000)).toBe(0)
    expect(takenSlots([released, held], [], T0 + 3_000)).toBe(0)
    // a later claim (a retry) replaces the release and takes the slot again
    const retry = claim(w[0]!, T0 + 60_000, 2)
    expect(takenSlots([held, released, retry], [], T0 + 61_000)).toBe(1)
  })

  it('a release from a worker that attested the job does not give its slot back', () => {
    expect(takenSlots([claim(w[0]!, T0, 0), claim(w[0]!, T0 + 1_000, 1, LEASE_MS, undefined, declined)], [did(0)], T0 + 2_000)).toBe(1)
  })

  it('decodes with its kind and reason, and its signature covers them', () => {
    const key = w[1]!
    const signed = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: key.did, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), leaseUntil: iso(T0 + LEASE_MS), seq: 3, release: declined }, key)
    expect(decodeClaim(signed.bytes, { now: T0 + 1_000 }).claim.release).toEqual(declined)
  })

  it('is a claim of version 2: a release field in version 1, or version 2 without one, is refused; version 3 is IGNOREd on gossip', () => {
    const fields = { jobId: job.jobId, buildId: job.job.buildId, worker: did(0), workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), leaseUntil: iso(T0 + LEASE_MS), seq: 1 }
    const signed = createClaim({ ...fields, release: declined }, w[0]!)
    expect(signed.envelope.payloadType).toBe(RELEASE_PAYLOAD_TYPE)
    expect(signed.claim._type).toBe(RELEASE_TYPE)
    expect(createClaim(fields, w[0]!).envelope.payloadType).toBe(CLAIM_PAYLOAD_TYPE)
    expect(() => validateClaim({ _type: CLAIM_TYPE, ...fields, release: declined })).toThrow(SchemaError)
    expect(() => validateClaim({ _type: RELEASE_TYPE, ...fields })).toThrow(SchemaError)
    // the version the envelope says is the version the payload must be
    const asV1 = envelopeBytes(signEnvelope(CLAIM_PAYLOAD_TYPE, utf8Encode(JSON.stringify(signed.claim)), w[0]!))
    expect(() => decodeClaim(asV1, { now: T0 + 1_000 })).toThrow(ProtocolError)
    // what a node that predates releases does with one, as this node does with a version it does not know: IGNORE, not REJECT
    const v3 = envelopeBytes(signEnvelope('application/vnd.concur.claim+json; version=3', utf8Encode(JSON.stringify({ ...signed.claim, _type: 'https://concur.dev/Claim/v3' })), w[0]!))
    expect(validateTopicMessage(CLAIMS_TOPIC, v3, { now: T0 + 1_000 }).action).toBe('ignore')
    expect(validateTopicMessage(CLAIMS_TOPIC, signed.bytes, { now: T0 + 1_000 }).action).toBe('accept')
  })

  it('refuses an unknown kind, an empty or over-long reason, and unknown fields inside', () => {
    const base = { _type: RELEASE_TYPE, jobId: job.jobId, buildId: job.job.buildId, worker: did(0), workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), leaseUntil: iso(T0 + LEASE_MS), seq: 1 }
    expect(validateClaim({ ...base, release: declined }).release).toEqual(declined)
    for (const release of [
      { kind: 'bored', reason: 'x' },
      { kind: 'declined', reason: '' },
      { kind: 'declined', reason: 'x'.repeat(MAX_RELEASE_REASON + 1) },
      { kind: 'declined', reason: 'x', extra: 1 },
      { kind: 'declined' },
      'declined'
    ]) {
      expect(() => validateClaim({ ...base, release }), JSON.stringify(release).slice(0, 60)).toThrow(ProtocolError)
    }
    expect(validateClaim({ ...base, release: { kind: 'gave-up', reason: 'x'.repeat(MAX_RELEASE_REASON) } }).release?.kind).toBe('gave-up')
  })
})
