/**
 * Diversity in the trust policy (PROTOCOL.md §8.1, issue 16): a policy may
 * group its trusted keys by operator and require the k agreeing keys to span
 * at least m distinct operators. Many keys of one operator are one
 * operator's word: three of them agreeing must not accept an artifact that
 * needs two operators, and the verdict says why it waits.
 */
import { describe, expect, it } from 'vitest'
import { PolicyError, buildIdOf, createPolicy, evaluateVerdict, keyHex, operatorOfKey } from '../../protocol/index.ts'
import type { SignedAttestation, TrustPolicyInput } from '../../protocol/index.ts'
import { attest, definition, fakeTreeCid, fixedKey } from './fixtures.ts'

const buildId = buildIdOf(definition)
const A = fakeTreeCid('artifact-A')
const B = fakeTreeCid('artifact-B')
// three keys one operator runs (one machine room, one admin: one point of failure) and two others
const acme = [1, 2, 3].map(i => fixedKey(`acme-${i}`))
const bob = fixedKey('bob-1')
const loner = fixedKey('loner-1')
const all = [...acme, bob, loner]
const ok = (key: ReturnType<typeof fixedKey>, artifact = A): SignedAttestation => attest(key, { artifact })

const input = (extra: Partial<TrustPolicyInput> = {}): TrustPolicyInput => ({
  trusted: all.map(k => k.did),
  threshold: 2,
  operators: { acme: acme.map(k => k.did), bob: [bob.did] },
  minOperators: 2,
  ...extra
})

describe('a policy requiring 2 operators', () => {
  it('refuses 3 keys of one operator (provisional, with the reason), and accepts once a key of a second operator agrees', () => {
    const policy = createPolicy(input())
    // the adversary: every key acme holds attests the same CID
    const one = evaluateVerdict(policy, buildId, acme.map(k => ok(k)))
    expect(one.status).toBe('provisional')
    expect(one.artifact).toBe(A)
    expect(one.counted).toEqual(acme.map(k => k.did).sort())
    expect(one.operators).toEqual({ spanned: ['acme'], min: 2 })
    expect(one.reasons.join('\n')).toMatch(/3 >= 2 trusted keys but they span 1 operator\(s\) \(acme\) and the policy requires 2 distinct operators/)

    // control: the same three and one key of a second operator
    const two = evaluateVerdict(policy, buildId, [...acme.map(k => ok(k)), ok(bob)])
    expect(two.status).toBe('accepted')
    expect(two.artifact).toBe(A)
    expect(two.operators).toEqual({ spanned: ['acme', 'bob'], min: 2 })
    expect(two.reasons.join('\n')).toMatch(/of 2 distinct operators \(at least 2: acme, bob\)/)
  })

  it('counts a key no operator names as its own operator', () => {
    const policy = createPolicy(input())
    const v = evaluateVerdict(policy, buildId, [ok(acme[0]!), ok(loner)])
    expect(v.status).toBe('accepted')
    expect(v.operators?.spanned).toEqual(['acme', loner.did].sort())
    expect(operatorOfKey(policy, keyHex(loner.publicKey))).toBe(loner.did)
    expect(operatorOfKey(policy, keyHex(acme[2]!.publicKey))).toBe('acme')
  })

  it('asks for operators among the counted keys only: a second operator below minTier or untrusted does not make up the span', () => {
    const policy = createPolicy(input({ minTier: 'namespaces+cgroups' }))
    const weakBob = attest(bob, { artifact: A, tier: 'namespaces' })
    expect(evaluateVerdict(policy, buildId, [ok(acme[0]!), ok(acme[1]!), weakBob]).status).toBe('provisional')
    const stranger = fixedKey('stranger-1')
    expect(evaluateVerdict(policy, buildId, [ok(acme[0]!), ok(acme[1]!), ok(stranger)]).status).toBe('provisional')
  })

  it('says both what is missing when neither a required key nor a second operator has agreed', () => {
    const policy = createPolicy(input({ required: [bob.did] }))
    const v = evaluateVerdict(policy, buildId, acme.map(k => ok(k)))
    expect(v.status).toBe('provisional')
    expect(v.reasons.join('\n')).toMatch(/none of the required keys yet, and they span 1 operator\(s\) \(acme\)/)
  })

  it('changes no dispute: a key of the second operator naming another CID disputes, as before', () => {
    const policy = createPolicy(input())
    expect(evaluateVerdict(policy, buildId, [...acme.map(k => ok(k)), ok(bob, B)]).status).toBe('disputed')
  })
})

describe('a policy without operators', () => {
  it('gives the verdict it gave before operators existed: no operators field, the same reasons', () => {
    const plain = createPolicy({ trusted: all.map(k => k.did), threshold: 2 })
    expect(plain.minOperators).toBe(1)
    const v = evaluateVerdict(plain, buildId, acme.map(k => ok(k)))
    expect(v.status).toBe('accepted')
    expect(v.operators).toBeUndefined()
    expect(v.reasons).toEqual([`accepted: ${A} signed by 3 distinct trusted keys (threshold 2)`])
    expect(plain.input).toEqual({ trusted: all.map(k => k.did), threshold: 2 })
  })

  it('minOperators alone counts every key as its own operator: k distinct keys always span k', () => {
    const p = createPolicy({ trusted: all.map(k => k.did), threshold: 2, minOperators: 2 })
    expect(evaluateVerdict(p, buildId, [ok(acme[0]!), ok(acme[1]!)]).status).toBe('accepted')
  })
})

describe('createPolicy refuses operator rules that cannot be met or mean two things', () => {
  const refusal = (fn: () => unknown): string => {
    try { fn() } catch (e) { expect(e).toBeInstanceOf(PolicyError); return (e as PolicyError).message }
    throw new Error('expected a PolicyError')
  }

  it('minOperators above the distinct operators of the trusted keys (unnamed keys each their own)', () => {
    // acme's three keys and bob: 2 operators, so 3 can never be met
    const four = [...acme, bob].map(k => k.did)
    expect(refusal(() => createPolicy({ trusted: four, threshold: 3, operators: { acme: acme.map(k => k.did), bob: [bob.did] }, minOperators: 3 })))
      .toMatch(/minOperators 3 exceeds the 2 distinct operator\(s\) of the trusted keys: it could never be met/)
    // every trusted key with one operator: 2 cannot be met
    expect(refusal(() => createPolicy({ trusted: acme.map(k => k.did), threshold: 2, operators: { acme: acme.map(k => k.did) }, minOperators: 2 })))
      .toMatch(/exceeds the 1 distinct operator/)
    // the same keys, one left unnamed: it is an operator of its own, so 2 can be met
    expect(createPolicy({ trusted: acme.map(k => k.did), threshold: 2, operators: { acme: [acme[0]!.did, acme[1]!.did] }, minOperators: 2 }).minOperators).toBe(2)
  })

  it('minOperators above the threshold, or not an integer >= 1', () => {
    expect(refusal(() => createPolicy(input({ threshold: 2, minOperators: 3 })))).toMatch(/minOperators 3 exceeds the threshold 2/)
    expect(refusal(() => createPolicy(input({ minOperators: 0 })))).toMatch(/minOperators must be an integer >= 1/)
    expect(refusal(() => createPolicy(input({ minOperators: 1.5 })))).toMatch(/minOperators must be an integer >= 1/)
  })

  it('an operator naming an untrusted key, a key under two operators, an empty operator, a name that is not a plain token', () => {
    const stranger = fixedKey('stranger-1')
    expect(refusal(() => createPolicy(input({ operators: { acme: [...acme.map(k => k.did), stranger.did] } })))).toMatch(/operators\.acme\[3\] is not a trusted key/)
    expect(refusal(() => createPolicy(input({ operators: { acme: acme.map(k => k.did), bob: [bob.did, acme[0]!.did] } })))).toMatch(/already run by operator acme/)
    expect(refusal(() => createPolicy(input({ operators: { acme: acme.map(k => k.did), bob: [] } })))).toMatch(/operators\.bob must be a non-empty array/)
    expect(refusal(() => createPolicy(input({ operators: { 'acme\u001b[2J': [acme[0]!.did] } })))).toMatch(/operator name/)
    expect(refusal(() => createPolicy(input({ operators: { 'two words': [acme[0]!.did] } })))).toMatch(/operator name/)
    expect(refusal(() => createPolicy(input({ operators: [[acme[0]!.did]] as unknown as Record<string, string[]> })))).toMatch(/operators must be a map/)
    expect(refusal(() => createPolicy(input({ operators: { acme: ['did:key:zzz'] } })))).toMatch(/operators\.acme\[0\]: unusable key/)
  })

  it('keeps a usable policy\'s operators in its input, so a bundle records them', () => {
    const p = createPolicy(input())
    expect(p.input.operators).toEqual({ acme: acme.map(k => k.did), bob: [bob.did] })
    expect(p.input.minOperators).toBe(2)
    expect(p.operatorOf.get(keyHex(bob.publicKey))).toBe('bob')
  })
})
