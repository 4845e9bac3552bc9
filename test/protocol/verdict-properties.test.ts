/**
 * Property tests of the trust rules over a fixed pool of signed attestations
 * (signing is the slow part; fast-check picks sub-multisets and policies).
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { buildIdOf, createPolicy, evaluateVerdict, keyHex } from '../../protocol/index.ts'
import type { SandboxTier, SignedAttestation, TrustPolicy, Verdict } from '../../protocol/index.ts'
import { attest, definition, fakeTreeCid, fixedKey } from './fixtures.ts'

const buildId = buildIdOf(definition)
const trusted = [0, 1, 2, 3, 4].map(i => fixedKey(`prop-trusted-${i}`))
const untrusted = [0, 1, 2].map(i => fixedKey(`prop-untrusted-${i}`))
const artifacts = ['A', 'B', 'C'].map(a => fakeTreeCid(`prop-${a}`))

function variants (key: ReturnType<typeof fixedKey>): SignedAttestation[] {
  return [
    ...artifacts.map(artifact => attest(key, { artifact })),
    attest(key, { artifact: artifacts[0], tier: 'namespaces' }),
    attest(key, { failure: { exitCode: 1, reason: 'failed' } })
  ]
}
const trustedPool = trusted.flatMap(variants)
const untrustedPool = untrusted.flatMap(variants)
const pool = [...trustedPool, ...untrustedPool]
const trustedKeys = new Set(trusted.map(k => keyHex(k.publicKey)))

const policyArb: fc.Arbitrary<TrustPolicy> = fc.record({
  threshold: fc.integer({ min: 1, max: trusted.length }),
  required: fc.subarray(trusted.map(k => k.did), { maxLength: 2 }),
  minTier: fc.constantFrom<SandboxTier | undefined>(undefined, 'namespaces', 'namespaces+cgroups')
}).map(p => createPolicy({ trusted: trusted.map(k => k.did), threshold: p.threshold, required: p.required, ...(p.minTier !== undefined ? { minTier: p.minTier } : {}) }))

const attsArb = (from: SignedAttestation[], max = 14): fc.Arbitrary<SignedAttestation[]> =>
  fc.array(fc.integer({ min: 0, max: from.length - 1 }), { maxLength: max }).map(ix => ix.map(i => from[i]!))

const essence = (v: Verdict) => ({ status: v.status, artifact: v.artifact, counted: v.counted })
const RUNS = 300

function equivocatorKeys (atts: SignedAttestation[]): Set<string> {
  const seen = new Map<string, Set<string>>()
  for (const a of atts) {
    if (a.claim.result.status !== 'success') continue
    const k = keyHex(a.signer)
    const s = seen.get(k) ?? new Set()
    s.add(a.claim.result.artifact)
    seen.set(k, s)
  }
  return new Set([...seen].filter(([, s]) => s.size >= 2).map(([k]) => k))
}

describe('verdict properties', () => {
  it('fewer than k distinct trusted signers is never accepted', () => {
    fc.assert(fc.property(policyArb, attsArb(pool), (policy, atts) => {
      const distinct = new Set(atts.map(a => keyHex(a.signer)).filter(k => trustedKeys.has(k)))
      const v = evaluateVerdict(policy, buildId, atts)
      if (distinct.size < policy.threshold) expect(v.status).not.toBe('accepted')
      if (v.status === 'accepted') expect(v.counted.length).toBeGreaterThanOrEqual(policy.threshold)
    }), { numRuns: RUNS })
  })

  it('duplicates of one envelope count once, and order does not matter', () => {
    fc.assert(fc.property(policyArb, attsArb(pool), fc.array(fc.nat(), { maxLength: 10 }), fc.integer(), (policy, atts, dupIx, seed) => {
      const base = evaluateVerdict(policy, buildId, atts)
      if (atts.length === 0) return
      const dups = dupIx.map(i => atts[i % atts.length]!)
      const shuffled = [...atts, ...dups].map((a, i) => ({ a, r: Math.imul(i + 1, seed | 1) >>> 0 })).sort((x, y) => x.r - y.r).map(x => x.a)
      expect(evaluateVerdict(policy, buildId, shuffled)).toEqual(base)
    }), { numRuns: RUNS })
  })

  it('adding untrusted attestations never changes the status, the artifact or counted: they are shown, never chosen', () => {
    fc.assert(fc.property(policyArb, attsArb(trustedPool), attsArb(untrustedPool, 8), (policy, base, extra) => {
      const before = evaluateVerdict(policy, buildId, base)
      const after = evaluateVerdict(policy, buildId, [...base, ...extra])
      expect(essence(after)).toEqual(essence(before))
      expect(after.counted).toEqual(before.counted)
    }), { numRuns: RUNS })
  })

  it('an equivocating key never counts, and is always reported', () => {
    fc.assert(fc.property(policyArb, attsArb(pool, 20), (policy, atts) => {
      const eq = equivocatorKeys(atts)
      const v = evaluateVerdict(policy, buildId, atts)
      const eqDids = new Set([...trusted, ...untrusted].filter(k => eq.has(keyHex(k.publicKey))).map(k => k.did))
      expect(new Set(v.equivocators.map(e => e.worker))).toEqual(eqDids)
      for (const did of v.counted) expect(eqDids.has(did)).toBe(false)
      for (const c of v.candidates) for (const did of [...c.trusted, ...c.untrusted, ...c.belowTier]) expect(eqDids.has(did)).toBe(false)
    }), { numRuns: RUNS })
  })

  it('accepted always means: one CID, >= k counted trusted keys at or above minTier, a required key among them if any', () => {
    fc.assert(fc.property(policyArb, attsArb(pool, 20), (policy, atts) => {
      const v = evaluateVerdict(policy, buildId, atts)
      if (v.status !== 'accepted') return
      const keys = v.counted.map(did => [...trusted].find(k => k.did === did)!)
      expect(keys.every(k => k !== undefined && trustedKeys.has(keyHex(k.publicKey)))).toBe(true)
      if (policy.required.size > 0) expect(keys.some(k => policy.required.has(keyHex(k.publicKey)))).toBe(true)
      expect(v.candidates.filter(c => c.trusted.length >= policy.threshold)).toHaveLength(1)
    }), { numRuns: RUNS })
  })

  // the trusted keys split among operators "a" and "b" (or left unnamed:
  // their own), with any minOperators the split allows (PROTOCOL.md §8.1)
  const operatorPolicyArb: fc.Arbitrary<TrustPolicy | null> = fc.record({
    threshold: fc.integer({ min: 1, max: trusted.length }),
    groups: fc.array(fc.constantFrom<'a' | 'b' | null>('a', 'b', null), { minLength: trusted.length, maxLength: trusted.length }),
    minOperators: fc.integer({ min: 1, max: trusted.length })
  }).map(p => {
    const operators: Record<string, string[]> = {}
    p.groups.forEach((g, i) => { if (g !== null) operators[g] = [...(operators[g] ?? []), trusted[i]!.did] })
    try {
      return createPolicy({ trusted: trusted.map(k => k.did), threshold: p.threshold, operators, minOperators: p.minOperators })
    } catch {
      return null // refused up front (m > k, or more operators than the split has): createPolicy's tests
    }
  })

  it('accepted under operators always means: the counted keys span >= minOperators operators; and with minOperators 1 the operators change nothing', () => {
    fc.assert(fc.property(operatorPolicyArb, attsArb(pool, 20), (policy, atts) => {
      if (policy === null) return
      const v = evaluateVerdict(policy, buildId, atts)
      const ops = new Set(v.counted.map(did => { const k = trusted.find(t => t.did === did)!; return policy.operatorOf.get(keyHex(k.publicKey)) ?? did }))
      expect(v.operators?.spanned).toEqual([...ops].sort())
      if (v.status === 'accepted') expect(ops.size).toBeGreaterThanOrEqual(policy.minOperators)
      const plain = evaluateVerdict(createPolicy({ trusted: trusted.map(k => k.did), threshold: policy.threshold }), buildId, atts)
      if (policy.minOperators === 1) expect(essence(v)).toEqual(essence(plain))
      // the rule only ever holds an acceptance back: it never makes one, nor changes a dispute or a failure
      if (plain.status !== 'accepted') expect(essence(v)).toEqual(essence(plain))
      else expect(['accepted', 'provisional']).toContain(v.status)
    }), { numRuns: RUNS })
  })
})
