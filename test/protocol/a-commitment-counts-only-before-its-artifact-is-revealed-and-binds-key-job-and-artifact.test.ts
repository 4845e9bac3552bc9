/**
 * Commit-then-reveal (PROTOCOL.md §8.3).
 *
 * protocol/vectors/commitment/*.json checked both ways: decodeCommitment
 * takes each valid vector and refuses each invalid one with its code, and a
 * check written from §8.3's words (node:crypto signature, the digest
 * recomputed as sha256 of the preimage the spec spells out) agrees.
 *
 * Then the rule: under a policy that requires commitments, a trusted key
 * counts only through a commitment of its own to exactly that build, job and
 * artifact that arrived before the artifact was first revealed; its dissent
 * still disputes; a policy without the rule counts as before. And whom a
 * worker waits for before it reveals.
 */
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  COMMITMENTS_TOPIC, COMMITMENT_LEAD_MS, COMMITMENT_PAYLOAD_TYPE, MAX_COMMITMENT_BYTES, ProtocolError, REVEAL_WAIT_MAX_MS, REVEAL_WAIT_MIN_MS, TOPIC_KINDS,
  awaitedCommitments, buildIdOf, peekCommitment, commitmentDigest, committedInTime, createClaim, createCommitment, createPolicy, decodeCommitment, evaluateVerdict, revealWaitMs, utf8Encode
} from '../../protocol/index.ts'
import type { CommitmentEvidence, SignedAttestation, SignedCommitment, SigningKey } from '../../protocol/index.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import { T0, attest, definition, fakeRawCid, fakeTreeCid, fixedKey, iso } from './fixtures.ts'
import { VECTORS_DIR } from './generate-vectors.ts'
import type { CommitmentVector } from './generate-vectors.ts'
import { independentlyValid, payloadJson } from './independent.ts'

const dir = resolve(VECTORS_DIR, 'commitment')
const vectors = readdirSync(dir).filter(f => f.endsWith('.json')).sort()
  .map(f => [f, JSON.parse(readFileSync(resolve(dir, f), 'utf8')) as CommitmentVector] as const)

/** §8.3 in its own words: sha256 of "concur/commitment/v1", buildId, jobId, worker, artifact joined by "\n" */
function independentDigest (o: { buildId: string, jobId: string, worker: string, artifact: string }): string {
  return createHash('sha256').update(['concur/commitment/v1', o.buildId, o.jobId, o.worker, o.artifact].join('\n'), 'utf8').digest('hex')
}

describe('commitment vectors', () => {
  it('cover a valid commitment, a forged one, a later version and a far-future one', () => {
    expect(vectors.map(([f]) => f)).toEqual(['commitment-far-future.json', 'commitment-forged.json', 'commitment-later-version.json', 'commitment-valid.json'])
  })
  for (const [file, v] of vectors) {
    describe(file, () => {
      const bytes = utf8Encode(JSON.stringify(v.envelope))
      const now = Date.parse(v.verifyAt)
      it(v.valid ? 'our decoder takes it, and the digest is the one its artifact opens' : `our decoder refuses it with ${v.error ?? '?'}`, () => {
        if (v.valid) {
          const c = decodeCommitment(bytes, { now })
          expect(c.commitment.digest).toBe(v.opens!.digest)
          expect(commitmentDigest(v.opens!.buildId, v.opens!.jobId, v.opens!.worker, v.opens!.artifact)).toBe(v.opens!.digest)
          return
        }
        let caught: unknown
        try { decodeCommitment(bytes, { now }) } catch (err) { caught = err }
        expect(caught).toBeInstanceOf(ProtocolError)
        expect((caught as ProtocolError).code).toBe(v.error)
      })
      it('an independent check from the spec\'s words agrees', () => {
        const p = payloadJson(v.envelope) as { worker: string, digest: string }
        const signed = independentlyValid(v.envelope, COMMITMENT_PAYLOAD_TYPE, p.worker)
        if (v.valid) {
          expect(signed).toBe(true)
          expect(independentDigest(v.opens!)).toBe(p.digest)
        } else if (v.error === 'ERR_BAD_SIGNATURE') {
          expect(signed).toBe(false)
        } else {
          // signed correctly: refused for what it says, not for its signature
          expect(signed).toBe(true)
        }
      })
    })
  }
})

describe('the commitments topic', () => {
  const now = T0 + 5 * 60_000
  const validate = createMessageValidator({ now: () => now })
  const key = fixedKey('worker-1')
  const c = createCommitment({ buildId: buildIdOf(definition), jobId: fakeRawCid('job-1'), workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), artifact: fakeTreeCid('artifact-A') }, key)

  it('is a concur topic of its own (a v1 node does not subscribe to it)', () => {
    expect(TOPIC_KINDS[COMMITMENTS_TOPIC]).toBe('commitment')
  })

  it('accepts a commitment, REJECTs one on the attestations topic, and an oversized one unread', () => {
    expect(validate(COMMITMENTS_TOPIC, c.bytes).action).toBe('accept')
    expect(validate('/concur/1/attestations/json', c.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_PAYLOAD_TYPE' })
    const big = new Uint8Array(MAX_COMMITMENT_BYTES + 1).fill(0x20)
    expect(validate(COMMITMENTS_TOPIC, big)).toMatchObject({ action: 'reject', code: 'ERR_TOO_LARGE' })
  })

  it('a commitment on a job the node does not hold is refused unread: its jobId is peeked before any key is decoded', () => {
    const peeked: unknown[] = []
    const guarded = createMessageValidator({ now: () => now, refuseUnread: (p) => { peeked.push(p); return { code: 'ERR_UNKNOWN_JOB', reason: 'not held' } } })
    // even a forged one (another key's signature): the peek verifies nothing, and the refusal needs nothing more
    const forged = { ...c.envelope, signatures: [{ keyid: '', sig: createCommitment({ buildId: c.commitment.buildId, jobId: c.commitment.jobId, workerPeerId: c.commitment.workerPeerId, issuedAt: c.commitment.issuedAt, artifact: fakeTreeCid('artifact-A') }, fixedKey('forger')).envelope.signatures[0]!.sig }] }
    expect(guarded(COMMITMENTS_TOPIC, utf8Encode(JSON.stringify(forged)))).toMatchObject({ action: 'ignore', code: 'ERR_UNKNOWN_JOB', useless: true })
    expect(peeked).toEqual([{ kind: 'commitment', jobId: c.commitment.jobId, worker: key.did }])
    expect(peekCommitment(c.bytes)).toEqual({ jobId: c.commitment.jobId, worker: key.did })
  })

  it('hides the artifact: the digest is not any field, and another key, job or artifact gives another digest', () => {
    const d = c.commitment.digest
    expect(JSON.stringify(c.commitment)).not.toContain(fakeTreeCid('artifact-A'))
    expect(commitmentDigest(c.commitment.buildId, c.commitment.jobId, fixedKey('worker-2').did, fakeTreeCid('artifact-A'))).not.toBe(d)
    expect(commitmentDigest(c.commitment.buildId, fakeRawCid('job-2'), key.did, fakeTreeCid('artifact-A'))).not.toBe(d)
    expect(commitmentDigest(c.commitment.buildId, c.commitment.jobId, key.did, fakeTreeCid('artifact-B'))).not.toBe(d)
  })
})

describe('the verdict under a policy that requires commitments', () => {
  const keys = [fixedKey('worker-1'), fixedKey('worker-2'), fixedKey('worker-3')] as const
  const [w1, w2, w3] = keys
  const buildId = buildIdOf(definition)
  const jobId = fakeRawCid('job-1')
  const A = fakeTreeCid('artifact-A')
  const B = fakeTreeCid('artifact-B')
  const policy = (requireCommitment: boolean, threshold = 2) => createPolicy({ trusted: keys.map(k => k.did), threshold, requireCommitment })
  const commit = (key: SigningKey, artifact: string, job = jobId): SignedCommitment =>
    createCommitment({ buildId, jobId: job, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), artifact }, key)
  /**
   * The arrival order: each item in turn gets the next place, `gapMs` after
   * the one before; an attestation's first sight of its artifact is its reveal
   */
  const observed = (...items: Array<SignedCommitment | SignedAttestation>): { evidence: CommitmentEvidence, attestations: SignedAttestation[] } => observedEvery(1000, ...items)
  const observedEvery = (gapMs: number, ...items: Array<SignedCommitment | SignedAttestation>): { evidence: CommitmentEvidence, attestations: SignedAttestation[] } => {
    const commitments: Array<CommitmentEvidence['commitments'][number]> = []
    const revealed = new Map<string, { order: number, at: number }>()
    const attestations: SignedAttestation[] = []
    items.forEach((x, order) => {
      const at = T0 + order * gapMs
      if ('commitment' in x) commitments.push({ commitment: x.commitment, signer: x.signer, order, at })
      else {
        attestations.push(x)
        if (x.claim.result.status === 'success' && !revealed.has(x.claim.result.artifact)) revealed.set(x.claim.result.artifact, { order, at })
      }
    })
    return { evidence: { commitments, revealed }, attestations }
  }
  const judge = (requireCommitment: boolean, o: ReturnType<typeof observed>, threshold = 2) =>
    evaluateVerdict(policy(requireCommitment, threshold), buildId, o.attestations, { jobId, commitments: o.evidence })

  it('counts two keys that committed before the reveal', () => {
    const v = judge(true, observed(commit(w1, A), commit(w2, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A })))
    expect(v.status).toBe('accepted')
    expect(v.counted).toEqual([w1.did, w2.did].sort())
  })

  it('does not count a copier whose commitment came after the artifact was revealed, and says why', () => {
    const o = observed(commit(w1, A), attest(w1, { jobId, artifact: A }), commit(w2, A), attest(w2, { jobId, artifact: A }))
    const v = judge(true, o)
    expect(v.status).toBe('provisional')
    expect(v.counted).toEqual([w1.did])
    expect(v.candidates[0]).toMatchObject({ artifact: A, trusted: [w1.did], uncommitted: [w2.did] })
    expect(v.reasons.join(' ')).toMatch(/without a commitment seen before that artifact was first revealed/)
    // the same order, without the rule: counted, as in v1
    expect(judge(false, o)).toMatchObject({ status: 'accepted' })
  })

  it('does not count a key without a commitment, nor through another key\'s, another job\'s or another artifact\'s', () => {
    const cases: Record<string, SignedCommitment | undefined> = {
      none: undefined,
      'another key\'s': commit(w3, A),
      'another job\'s': commit(w2, A, fakeRawCid('job-2')),
      'another artifact\'s': commit(w2, B)
    }
    for (const [name, c] of Object.entries(cases)) {
      const o = observed(...(c != null ? [c] : []), commit(w1, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A }))
      const v = judge(true, o)
      expect(v.counted, name).toEqual([w1.did])
      expect(v.status, name).toBe('provisional')
    }
  })

  it('is about the first reveal by anyone: a stranger\'s early reveal makes later commitments late too', () => {
    const stranger = fixedKey('stranger')
    const o = observed(commit(w1, A), attest(stranger, { jobId, artifact: A }), commit(w2, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A }))
    expect(judge(true, o).counted).toEqual([w1.did])
  })

  it('no evidence at all counts nothing, and never accepts', () => {
    const v = evaluateVerdict(policy(true), buildId, [attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A })], { jobId })
    expect(v.counted).toEqual([])
    expect(v.status).not.toBe('accepted')
  })

  it('an uncommitted trusted key that built this job and got another artifact still disputes it', () => {
    const o = observed(commit(w1, A), commit(w2, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A }), attest(w3, { jobId, artifact: B }))
    const v = judge(true, o)
    expect(v.status).toBe('disputed')
    expect(v.dissent).toEqual([{ worker: w3.did, artifact: B }])
  })

  it('a commitment that came just before the reveal, by less than the lead, is not in time: a copier one hop away can win such a race', () => {
    const racing = observedEvery(COMMITMENT_LEAD_MS / 5, commit(w1, A), commit(w2, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A }))
    // w2's commitment came COMMITMENT_LEAD_MS / 5 before the reveal; w1's twice that
    expect(judge(true, racing).counted).toEqual([])
    expect(judge(true, observedEvery(COMMITMENT_LEAD_MS, commit(w1, A), commit(w2, A), attest(w1, { jobId, artifact: A }), attest(w2, { jobId, artifact: A }))).counted).toEqual([w1.did, w2.did].sort())
  })

  it('committedInTime: before in place and by the lead in time; equal places are not before', () => {
    const c = commit(w1, A)
    const a = attest(w1, { jobId, artifact: A })
    const inTime = (commitOrder: number, revealOrder: number, leadMs = COMMITMENT_LEAD_MS): boolean =>
      committedInTime(a, { commitments: [{ commitment: c.commitment, signer: c.signer, order: commitOrder, at: T0 }], revealed: new Map([[A, { order: revealOrder, at: T0 + leadMs }]]) })
    expect(inTime(1, 2)).toBe(true)
    expect(inTime(2, 2)).toBe(false)
    expect(inTime(3, 2)).toBe(false)
    expect(inTime(1, 2, COMMITMENT_LEAD_MS - 1)).toBe(false)
  })
})

describe('whom a worker waits for before it reveals', () => {
  const me = fixedKey('worker-1').did
  const b = fixedKey('worker-2').did
  const c = fixedKey('worker-3').did
  const jobId = fakeRawCid('job-1')
  const buildId = buildIdOf(definition)
  const now = T0 + 10_000
  const claim = (key: SigningKey, extra: { leaseUntil?: number, purpose?: 'spot-check', release?: true, seq?: number } = {}) => createClaim({
    jobId, buildId, worker: key.did, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), leaseUntil: iso(extra.leaseUntil ?? T0 + 30_000), seq: extra.seq ?? 1,
    ...(extra.purpose != null ? { purpose: extra.purpose } : {}),
    ...(extra.release === true ? { release: { kind: 'gave-up' as const, reason: 'x' } } : {})
  }, key).claim

  it('every other live replica claimant that has neither committed nor attested', () => {
    const claims = [claim(fixedKey('worker-1')), claim(fixedKey('worker-2')), claim(fixedKey('worker-3'))]
    expect(awaitedCommitments(claims, me, new Set(), new Set(), now)).toEqual([b, c].sort())
    expect(awaitedCommitments(claims, me, new Set([b]), new Set(), now)).toEqual([c])
    expect(awaitedCommitments(claims, me, new Set([b]), new Set([c]), now)).toEqual([])
  })

  it('not a lapsed lease, a release, a spot check, nor a stranger on a job that names its builders', () => {
    const claims = [claim(fixedKey('worker-2'), { leaseUntil: now - 1 }), claim(fixedKey('worker-3'), { release: true, seq: 2 }), claim(fixedKey('rebuilder'), { purpose: 'spot-check' }), claim(fixedKey('stranger'))]
    expect(awaitedCommitments(claims, me, new Set(), new Set(), now, [me, b, c].sort())).toEqual([])
    // an open job (no builders): the stranger's live lease is waited for
    expect(awaitedCommitments(claims, me, new Set(), new Set(), now)).toEqual([fixedKey('stranger').did])
  })

  it('waits the build\'s own time, within its bounds', () => {
    expect(revealWaitMs(10)).toBe(REVEAL_WAIT_MIN_MS)
    expect(revealWaitMs(90_000)).toBe(90_000)
    expect(revealWaitMs(10 * 3_600_000)).toBe(REVEAL_WAIT_MAX_MS)
  })
})
