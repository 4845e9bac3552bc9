/**
 * peekClaim reads what a claim says about itself (jobId, worker) without
 * decoding a key or checking a signature, so a node can IGNORE a claim on a
 * job it does not hold for the cost of a parse (PROTOCOL.md §6). It throws the
 * decoder's typed errors for what it reads, and agrees with the full decode.
 */
import { describe, expect, it } from 'vitest'
import { CLAIM_PAYLOAD_TYPE, createClaim, decodeClaim, envelopeBytes, isProtocolError, peekClaim, signEnvelope, utf8Encode } from '../../protocol/index.ts'
import { T0, fixedKey, makeJob } from './fixtures.ts'

describe('peekClaim', () => {
  const job = makeJob()
  const w = fixedKey('w')
  const claim = createClaim({ jobId: job.jobId, buildId: job.job.buildId, worker: w.did, workerPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', issuedAt: new Date(T0).toISOString(), leaseUntil: new Date(T0 + 30_000).toISOString(), seq: 1 }, w)

  it('reads the jobId and worker the full decode finds', () => {
    const full = decodeClaim(claim.bytes, { now: T0 + 1 })
    expect(peekClaim(claim.bytes)).toEqual({ jobId: full.claim.jobId, worker: full.claim.worker })
  })

  it('does not verify: a claim signed by another key peeks the same', () => {
    const forged = envelopeBytes(signEnvelope(CLAIM_PAYLOAD_TYPE, utf8Encode(JSON.stringify(claim.claim)), fixedKey('forger')))
    expect(peekClaim(forged)).toEqual({ jobId: job.jobId, worker: w.did })
    expect(() => decodeClaim(forged, { now: T0 + 1 })).toThrow()
  })

  it('throws typed errors for what it reads: malformed, another payloadType, a missing jobId', () => {
    for (const bad of [
      utf8Encode('{"payload":'),
      job.bytes,
      envelopeBytes(signEnvelope(CLAIM_PAYLOAD_TYPE, utf8Encode(JSON.stringify({ worker: w.did })), w))
    ]) {
      let err: unknown
      try { peekClaim(bad) } catch (e) { err = e }
      expect(isProtocolError(err), String(err)).toBe(true)
    }
  })
})
