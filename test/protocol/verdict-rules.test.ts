import { describe, expect, it } from 'vitest'
import { PolicyError, buildIdOf, clockOffsetFor, createPolicy, didFromPublicKey, evaluateVerdict, isTrustedSigner } from '../../protocol/index.ts'
import type { SignedAttestation } from '../../protocol/index.ts'
import { attest, definition, fakeTreeCid, fixedKey, rootfsDefinition } from './fixtures.ts'

const t = [1, 2, 3, 4].map(i => fixedKey(`trusted-${i}`))
const u = [1, 2, 3].map(i => fixedKey(`untrusted-${i}`))
const A = fakeTreeCid('artifact-A')
const B = fakeTreeCid('artifact-B')
const buildId = buildIdOf(definition)
const ok = (i: number, artifact = A) => attest(t[i]!, { artifact })
const bad = (i: number) => attest(t[i]!, { failure: { exitCode: 1, reason: 'tests failed' } })
const policy = (threshold: number, extra: { required?: number[], minTier?: 'vm' | 'namespaces+cgroups' } = {}) => createPolicy({
  trusted: t.map(k => k.did),
  threshold,
  ...(extra.required !== undefined ? { required: extra.required.map(i => t[i]!.did) } : {}),
  ...(extra.minTier !== undefined ? { minTier: extra.minTier } : {})
})
const verdict = (p: ReturnType<typeof policy>, atts: SignedAttestation[]) => evaluateVerdict(p, buildId, atts)

describe('verdict rules', () => {
  it('a signer is trusted by its raw key, the same rule the verdict counts by', () => {
    expect(isTrustedSigner(policy(2), t[0]!.publicKey)).toBe(true)
    expect(isTrustedSigner(policy(2), u[0]!.publicKey)).toBe(false)
    expect(isTrustedSigner(policy(2), ok(0).signer)).toBe(true)
  })

  it('pending with nothing', () => {
    expect(verdict(policy(2), []).status).toBe('pending')
  })

  it('accepted with k of n distinct trusted keys on one CID; k-1 is provisional', () => {
    const v = verdict(policy(2), [ok(0), ok(1)])
    expect(v.status).toBe('accepted')
    expect(v.artifact).toBe(A)
    expect(v.counted).toEqual([t[0]!.did, t[1]!.did].sort())
    const one = verdict(policy(2), [ok(0)])
    expect(one.status).toBe('provisional')
    expect(one.artifact).toBe(A)
    expect(one.counted).toEqual([t[0]!.did])
  })

  it('the same key twice (even with different jobIds) counts once', () => {
    const again = attest(t[0]!, { artifact: A, jobId: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' })
    expect(verdict(policy(2), [ok(0), ok(0), again]).status).toBe('provisional')
  })

  it('disputed when two CIDs both reach k, and the disagreement is reported', () => {
    const v = verdict(policy(2), [ok(0, A), ok(1, A), ok(2, B), ok(3, B)])
    expect(v.status).toBe('disputed')
    expect(v.artifact).toBeUndefined()
    expect(v.counted).toEqual([])
    expect(v.candidates.map(c => c.artifact).sort()).toEqual([A, B].sort())
    expect(v.dissent.length).toBe(2)
  })

  it('disputed as soon as two trusted keys that built the job got different artifacts: the outcome is already fixed', () => {
    const C = fakeTreeCid('artifact-C')
    const D = fakeTreeCid('artifact-D')
    // 4 trusted, k = 3: keys 0 and 1 disagree; whichever CID later reaches 3, the other key's dissent disputes it
    const early = verdict(policy(3), [ok(0, A), ok(1, B)])
    expect(early.status).toBe('disputed')
    expect(early.reasons.join(' ')).toMatch(/got 2 different artifacts/)
    expect(early.counted).toEqual([])
    expect(early.artifact).toBeUndefined()
    // every key answered, each with its own CID (a build that is not reproducible)
    const all = verdict(policy(3), [ok(0, A), ok(1, B), ok(2, C), ok(3, D)])
    expect(all.status).toBe('disputed')
    expect(all.candidates.map(c => c.artifact).sort()).toEqual([A, B, C, D].sort())
    expect(all.dissent).toHaveLength(3)
    // one CID and failures is not a dispute between artifacts: it stays provisional until k fail or expiry
    expect(verdict(policy(4), [ok(0, A), bad(1), bad(2)]).status).toBe('provisional')
    // untrusted keys neither make nor count towards it
    expect(verdict(policy(2), [ok(0, A), attest(u[0]!, { artifact: B }), attest(u[1]!, { artifact: C })]).status).toBe('provisional')
  })

  it('disputed as soon as agreement is impossible, also when a differing key is below the tier', () => {
    const weak = (i: number, artifact: string) => attest(t[i]!, { artifact, tier: 'namespaces' })
    const p = (k: number) => policy(k, { minTier: 'namespaces+cgroups' })
    // k = 4: key 1's CID does not count (below the tier), but key 1 has answered: 1 + 2 keys not heard from < 4
    const v = verdict(p(4), [ok(0, A), weak(1, B)])
    expect(v.status).toBe('disputed')
    expect(v.reasons.join(' ')).toMatch(/agreement is impossible/)
    // k = 3: 1 + 2 = 3 is still possible
    expect(verdict(p(3), [ok(0, A), weak(1, B)]).status).toBe('provisional')
  })

  it('an equivocator has answered: it shrinks what the keys not heard from can still reach', () => {
    const C = fakeTreeCid('artifact-C')
    // k = 3: key 3 signed two CIDs (counts for nothing); keys 0 and 1 disagree; key 2 alone cannot make 3
    const v = verdict(policy(3), [ok(0, A), ok(1, B), ok(3, A), ok(3, C)])
    expect(v.status).toBe('disputed')
    expect(v.equivocators.map(e => e.worker)).toEqual([t[3]!.did])
  })

  it('a trusted key that built the same job and got another artifact disputes it: k agreeing keys do not outvote it', () => {
    const v = verdict(policy(2), [ok(0, A), ok(1, A), ok(2, B)])
    expect(v.status).toBe('disputed')
    expect(v.artifact).toBeUndefined()
    expect(v.dissent).toEqual([{ worker: t[2]!.did, artifact: B }])
    // the same whichever came first: a rebuilder's late spot check is no different
    expect(verdict(policy(2), [ok(2, B), ok(0, A), ok(1, A)]).status).toBe('disputed')
    // an untrusted dissent is shown, never counted either way
    expect(verdict(policy(2), [ok(0, A), ok(1, A), attest(u[0]!, { artifact: B })]).status).toBe('accepted')
  })

  it('required key: accepted only when a required key is among the agreeing ones', () => {
    expect(verdict(policy(2, { required: [3] }), [ok(0), ok(1)]).status).toBe('provisional')
    expect(verdict(policy(2, { required: [3] }), [ok(0), ok(1), ok(3)]).status).toBe('accepted')
  })

  it('required key dissenting → not accepted (disputed)', () => {
    const v = verdict(policy(2, { required: [3] }), [ok(0, A), ok(1, A), ok(2, A), ok(3, B)])
    expect(v.status).toBe('disputed')
    expect(v.dissent).toContainEqual({ worker: t[3]!.did, artifact: B })
    expect(v.reasons.join(' ')).toMatch(/different artifact/)
  })

  it('minTier: trusted keys below the tier are listed but not counted', () => {
    const weak = (i: number) => attest(t[i]!, { artifact: A, tier: 'namespaces' })
    const v = verdict(policy(2, { minTier: 'namespaces+cgroups' }), [weak(0), weak(1), ok(2)])
    expect(v.status).toBe('provisional')
    expect(v.candidates[0]!.belowTier).toEqual([t[0]!.did, t[1]!.did].sort())
    expect(v.counted).toEqual([t[2]!.did])
    expect(verdict(policy(2, { minTier: 'namespaces+cgroups' }), [weak(0), ok(1), ok(2)]).status).toBe('accepted')
    expect(verdict(policy(2, { minTier: 'vm' }), [ok(0), ok(1)]).status).toBe('provisional')
  })

  it('failed when k trusted keys report failure and none success', () => {
    const v = verdict(policy(2), [bad(0), bad(1)])
    expect(v.status).toBe('failed')
    expect(v.failures).toHaveLength(2)
    expect(v.failures[0]).toMatchObject({ trusted: true, reason: 'tests failed', exitCode: 1 })
    expect(verdict(policy(2), [bad(0)]).status).toBe('pending')
    expect(verdict(policy(2), [bad(0), bad(1), ok(2)]).status).toBe('provisional')
    // Untrusted failures never make a build fail.
    const uf = u.map(k => attest(k, { failure: { exitCode: 1, reason: 'x' } }))
    expect(verdict(policy(1), uf).status).toBe('pending')
  })

  it('untrusted-only → pending, no artifact named, whatever their number (shown, never chosen)', () => {
    const v = verdict(policy(1), u.map(k => attest(k, { artifact: A })))
    expect(v.status).toBe('pending')
    expect(v.artifact).toBeUndefined()
    expect(v.counted).toEqual([])
    expect(v.candidates[0]!.untrusted).toHaveLength(3)
  })

  it('untrusted support never picks the provisional artifact over a trusted one', () => {
    const v = verdict(policy(2), [ok(0, B), ...u.map(k => attest(k, { artifact: A }))])
    expect(v.status).toBe('provisional')
    expect(v.artifact).toBe(B)
  })

  it('attestations for other buildIds are ignored (and said so)', () => {
    const other = attest(t[1]!, { artifact: A, def: rootfsDefinition })
    const v = verdict(policy(2), [ok(0), other])
    expect(v.status).toBe('provisional')
    expect(v.reasons.some(r => r.includes('other buildIds'))).toBe(true)
  })

  it('an equivocating key counts for nothing and both envelopes are kept as proof', () => {
    const e1 = ok(0, A)
    const e2 = ok(0, B)
    const v = verdict(policy(2), [e1, e2, ok(1, A)])
    expect(v.status).toBe('provisional')
    expect(v.counted).toEqual([t[1]!.did])
    expect(v.equivocators).toHaveLength(1)
    expect(v.equivocators[0]!.worker).toBe(t[0]!.did)
    expect(new Set(v.equivocators[0]!.envelopes)).toEqual(new Set([e1.envelope, e2.envelope]))
  })
})

describe('createPolicy', () => {
  const code = (fn: () => unknown): string | undefined => { try { fn() } catch (e) { expect(e).toBeInstanceOf(PolicyError); return (e as PolicyError).code } return undefined }
  it('refuses impossible or unsafe policies', () => {
    const dids = t.map(k => k.did)
    const identity = new Uint8Array(32); identity[0] = 1
    expect(code(() => createPolicy({ trusted: dids, threshold: 0 }))).toBe('ERR_POLICY')
    expect(code(() => createPolicy({ trusted: dids, threshold: 5 }))).toBe('ERR_POLICY')
    expect(code(() => createPolicy({ trusted: [dids[0]!, dids[0]!], threshold: 2 }))).toBe('ERR_POLICY') // one key listed twice
    expect(code(() => createPolicy({ trusted: dids, threshold: 1, required: [u[0]!.did] }))).toBe('ERR_POLICY')
    expect(code(() => createPolicy({ trusted: [...dids, didFromPublicKey(identity)], threshold: 1 }))).toBe('ERR_POLICY')
    expect(code(() => createPolicy({ trusted: [...dids, 'did:key:zzz'], threshold: 1 }))).toBe('ERR_POLICY')
    expect(code(() => createPolicy({ trusted: dids, threshold: 1, minTier: 'chroot' as 'vm' }))).toBe('ERR_POLICY')
    expect(createPolicy({ trusted: dids, threshold: 4, required: [dids[0]!], minTier: 'vm' }).trusted.size).toBe(4)
  })
})

describe('attempts: a key answers each job once', () => {
  const J1 = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
  const J2 = 'bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom'
  const on = (i: number, jobId: string, artifact = A) => attest(t[i]!, { artifact, jobId })
  // an honest rerun of a build that embeds the time: the same three keys, a new CID
  const first = [on(0, J1, A), on(1, J1, A), on(2, J1, A)]
  const rerun = [on(0, J2, B), on(1, J2, B), on(2, J2, B)]

  it('one key, two CIDs on two jobs is a non-reproducible build, not equivocation', () => {
    const v = evaluateVerdict(policy(3), buildId, [...first, ...rerun], { jobId: J1 })
    expect(v.equivocators).toEqual([])
    expect(v.nonReproducible.map(n => n.worker)).toEqual([t[0]!.did, t[1]!.did, t[2]!.did].sort())
    expect(v.nonReproducible[0]!.artifacts).toEqual([{ artifact: A, jobs: [J1] }, { artifact: B, jobs: [J2] }].sort((x, y) => x.artifact < y.artifact ? -1 : 1))
    expect(v.reasons.join(' ')).toMatch(/not reproducible/)
  })

  it('an earlier acceptance stands when a rerun differs: each job is judged on its own answers', () => {
    const earlier = evaluateVerdict(policy(3), buildId, [...first, ...rerun], { jobId: J1 })
    expect(earlier.status).toBe('accepted')
    expect(earlier.artifact).toBe(A)
    const later = evaluateVerdict(policy(3), buildId, [...first, ...rerun], { jobId: J2, onlyJob: true })
    expect(later.status).toBe('accepted')
    expect(later.artifact).toBe(B)
  })

  it('a key is never counted for two CIDs in one verdict: with no answer to the judged job, a key with two answers counts for neither', () => {
    const J3 = 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy'
    const v = evaluateVerdict(policy(2), buildId, [...first, ...rerun], { jobId: J3 })
    expect(v.status).toBe('pending')
    expect(v.counted).toEqual([])
    expect(v.candidates).toEqual([])
    // and with no job named at all
    expect(evaluateVerdict(policy(2), buildId, [...first, ...rerun]).counted).toEqual([])
  })

  it('onlyJob judges only the fresh attestations: answers to earlier jobs neither count nor dissent', () => {
    const fresh = evaluateVerdict(policy(3), buildId, [...first, on(0, J2, B)], { jobId: J2, onlyJob: true })
    expect(fresh.status).toBe('provisional')
    expect(fresh.counted).toEqual([t[0]!.did])
    expect(fresh.dissent).toEqual([])
    // without onlyJob the earlier job's answers of keys 1 and 2 are read (reuse)
    const reused = evaluateVerdict(policy(3), buildId, [...first, on(0, J2, B)], { jobId: J2 })
    expect(reused.candidates.find(c => c.artifact === A)?.trusted).toEqual([t[1]!.did, t[2]!.did].sort())
  })

  it('two CIDs from one key on one job is still equivocation, and it is not believed on any other job', () => {
    const v = evaluateVerdict(policy(2), buildId, [on(0, J1, A), on(0, J1, B), on(0, J2, A), on(1, J2, A)], { jobId: J2 })
    expect(v.equivocators.map(e => e.worker)).toEqual([t[0]!.did])
    expect(v.counted).toEqual([t[1]!.did])
    expect(v.status).toBe('provisional')
  })

  it('dissent drawn from another job is evidence, not a dispute of this one', () => {
    const v = evaluateVerdict(policy(2), buildId, [on(0, J1, A), on(1, J1, A), on(3, J2, B)], { jobId: J1 })
    expect(v.status).toBe('accepted')
    expect(v.dissent).toEqual([{ worker: t[3]!.did, artifact: B }])
  })

  it('a key heard only on another job is still outstanding: it may build this one', () => {
    // k = 3 of 4; on J2 only key 0 answered (A); keys 1 and 2 answered J1 only, with B and C
    const C = fakeTreeCid('artifact-C')
    const v = evaluateVerdict(policy(3), buildId, [on(1, J1, B), on(2, J1, C), on(0, J2, A)], { jobId: J2 })
    // counting their J1 answers as final would make it impossible (1 + 1 key not heard from < 3); they may still build J2
    expect(v.status).toBe('provisional')
    // once they build J2 and side with A, A has 3
    expect(evaluateVerdict(policy(3), buildId, [on(1, J1, B), on(2, J1, C), on(0, J2, A), on(1, J2, A), on(2, J2, A)], { jobId: J2 }).status).toBe('accepted')
  })

  it('a job that asks to vary the clock counts only answers that record the offset their worker owed it', () => {
    const varied = (i: number, offset?: number) => attest(t[i]!, { artifact: A, jobId: J1, ...(offset !== undefined ? { variation: { clockOffsetSeconds: offset } } : {}) })
    const owed = (i: number) => clockOffsetFor(t[i]!.did, J1)
    const v = evaluateVerdict(policy(2), buildId, [varied(0, owed(0)), varied(1), varied(2, owed(2) + 1)], { jobId: J1, vary: ['clock'] })
    expect(v.counted).toEqual([t[0]!.did])
    expect(v.status).toBe('provisional')
    expect(v.reasons.join(' ')).toMatch(/ignored 2 attestation\(s\) of this job without the clock offset/)
    expect(evaluateVerdict(policy(2), buildId, [varied(0, owed(0)), varied(1, owed(1))], { jobId: J1, vary: ['clock'] }).status).toBe('accepted')
    // and it is judged on its own answers: unvaried answers to another job of the build are not reused
    const J0 = 'bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom'
    const earlier = [0, 1, 2].map(i => attest(t[i]!, { artifact: A, jobId: J0 }))
    const reused = evaluateVerdict(policy(2), buildId, earlier, { jobId: J1, vary: ['clock'] })
    expect(reused.status).toBe('pending')
    expect(reused.counted).toEqual([])
    // a job that did not ask: the record is not required
    expect(evaluateVerdict(policy(2), buildId, [varied(0), varied(1)], { jobId: J1 }).status).toBe('accepted')
  })
})
