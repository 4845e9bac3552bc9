/**
 * The per-peer budget of valid but useless messages (src/net/peer-budget.ts,
 * PROTOCOL.md §6): each IGNORE of a duplicate, a claim on an unknown job, an
 * attestation of an unknown build or a record over the store's limits spends
 * a token of the peer that sent it; a peer with none left is not read (not
 * even verified) until its bucket refills. Other peers are not affected.
 */
import { describe, expect, it } from 'vitest'
import { PeerBudget } from '../../src/net/peer-budget.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import type { MessagePeek } from '../../src/net/validate.ts'
import { ATTESTATIONS_TOPIC, ATTESTATION_PAYLOAD_TYPE, CLAIMS_TOPIC, CLAIM_PAYLOAD_TYPE, JOBS_TOPIC, base64Decode, createClaim, envelopeBytes, signEnvelope } from '../../protocol/index.ts'
import { T0, attest, fixedKey, makeJob } from '../protocol/fixtures.ts'

describe('the per-peer budget', () => {
  it('allows a burst, then one message per refill interval, per peer', () => {
    let t = 0
    const b = new PeerBudget({ burst: 3, perSecond: 2, now: () => t })
    for (let i = 0; i < 3; i++) {
      expect(b.allows('mallory')).toBe(true)
      b.charge('mallory')
    }
    expect(b.allows('mallory')).toBe(false)
    expect(b.allows('alice')).toBe(true)
    t += 499
    expect(b.allows('mallory')).toBe(false)
    t += 1
    expect(b.allows('mallory')).toBe(true)
    b.charge('mallory')
    expect(b.allows('mallory')).toBe(false)
    // never above the burst, however long the peer was quiet
    t += 3_600_000
    for (let i = 0; i < 3; i++) b.charge('mallory')
    expect(b.allows('mallory')).toBe(false)
  })

  it('tracks a bounded number of peers (a forgotten one starts again from a full bucket)', () => {
    const b = new PeerBudget({ burst: 1, perSecond: 0.001, maxPeers: 2, now: () => 0 })
    b.charge('a')
    b.charge('b')
    b.charge('c')
    expect(b.allows('a')).toBe(true)
    expect(b.allows('c')).toBe(false)
  })
})

describe('the validator marks what is charged', () => {
  const now = T0 + 1000
  const job = makeJob()
  it('duplicates and refusals are useless; an expired or unsupported message is not', () => {
    const v = createMessageValidator({
      now: () => now,
      isKnown: (m) => m.kind === 'job',
      refuse: (m) => m.kind === 'claim' ? { code: 'ERR_UNKNOWN_JOB', reason: 'not held' } : undefined
    })
    expect(v(JOBS_TOPIC, job.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_DUPLICATE', useless: true })
    const w = fixedKey('w')
    const claim = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: w.did, workerPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', issuedAt: new Date(now).toISOString(), leaseUntil: new Date(now + 30_000).toISOString(), seq: 1 }, w)
    expect(v(CLAIMS_TOPIC, claim.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_UNKNOWN_JOB', useless: true })
    const late = createMessageValidator({ now: () => T0 + 7_200_000 })
    const out = late(JOBS_TOPIC, job.bytes)
    expect(out).toMatchObject({ action: 'ignore', code: 'ERR_EXPIRED' })
    expect((out as { useless?: true }).useless).toBeUndefined()
  })
})

describe('refusals on peeked fields come before any signature check', () => {
  const now = T0 + 1000
  const job = makeJob()
  const w = fixedKey('w')
  const claim = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: w.did, workerPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', issuedAt: new Date(now).toISOString(), leaseUntil: new Date(now + 30_000).toISOString(), seq: 1 }, w)
  // the same statements signed by someone else: only a signature check tells
  const forgedClaim = envelopeBytes(signEnvelope(CLAIM_PAYLOAD_TYPE, base64Decode(claim.envelope.payload), fixedKey('forger')))
  const att = attest(w, { jobId: job.jobId })
  const forgedAtt = envelopeBytes(signEnvelope(ATTESTATION_PAYLOAD_TYPE, base64Decode(att.envelope.payload), fixedKey('forger')))
  const seen: MessagePeek[] = []
  const v = createMessageValidator({
    now: () => now,
    refuseUnread: (p) => { seen.push(p); return { code: p.kind === 'claim' ? 'ERR_UNKNOWN_JOB' : 'ERR_UNKNOWN_BUILD', reason: 'not held' } }
  })

  it('a claim on a job not held, or an attestation of a build not held, is IGNOREd unread (a forged one too: it was never verified)', () => {
    expect(v(CLAIMS_TOPIC, forgedClaim)).toMatchObject({ action: 'ignore', code: 'ERR_UNKNOWN_JOB', useless: true })
    expect(v(ATTESTATIONS_TOPIC, forgedAtt)).toMatchObject({ action: 'ignore', code: 'ERR_UNKNOWN_BUILD', useless: true })
    expect(seen).toEqual([
      { kind: 'claim', jobId: job.jobId, worker: w.did },
      { kind: 'attestation', buildId: job.job.buildId, worker: w.did, id: att.id }
    ])
  })

  it('without a refusal the full decode decides: the forgery is REJECTed', () => {
    const open = createMessageValidator({ now: () => now, refuseUnread: () => undefined })
    expect(open(CLAIMS_TOPIC, forgedClaim)).toMatchObject({ action: 'reject', code: 'ERR_BAD_SIGNATURE' })
    expect(open(ATTESTATIONS_TOPIC, forgedAtt)).toMatchObject({ action: 'reject', code: 'ERR_BAD_SIGNATURE' })
    // malformed bytes are not peeked past: REJECTed as before
    expect(v(CLAIMS_TOPIC, new TextEncoder().encode('{"payload":'))).toMatchObject({ action: 'reject' })
  })
})
