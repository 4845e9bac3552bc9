import { describe, expect, it } from 'vitest'
import {
  ATTESTATION_PAYLOAD_TYPE, CLOCK_OFFSET_MAX_SECONDS, CLOCK_OFFSET_MIN_SECONDS, JOB_PAYLOAD_TYPE, MAX_CLOCK_OFFSET_SECONDS,
  MAX_VARIATIONS, SchemaError, clockOffsetFor, createAttestation, createJobAnnouncement, decodeAttestation, decodeJobAnnouncement,
  envelopePayload, signEnvelope, statementOf, utf8Encode
} from '../../protocol/index.ts'
import type { Envelope, JobInput, JobVariation, SignedJob } from '../../protocol/index.ts'
import { claimFor, fixedKey, makeJob, requester, T0 } from './fixtures.ts'

const NOW = T0 + 60_000
const worker = fixedKey('worker-1')
const open = makeJob()
const json = (env: Envelope): Record<string, unknown> => JSON.parse(new TextDecoder().decode(envelopePayload(env))) as Record<string, unknown>

function jobInput (vary?: unknown): JobInput {
  const { definition, requester: did, requesterPeerId, replicas, resources, createdAt, expiresAt, nonce } = open.job
  return { definition, requester: did, ...(requesterPeerId !== undefined ? { requesterPeerId } : {}), replicas, resources, createdAt, expiresAt, nonce, ...(vary !== undefined ? { vary: vary as JobVariation[] } : {}) }
}
const varyJob = (vary: unknown): SignedJob => createJobAnnouncement(jobInput(vary), requester)

/** the open job's payload with `vary` set to anything, re-signed, so only that field can fail */
function withVary (vary: unknown): Envelope {
  const j = json(open.envelope)
  j.vary = vary
  return signEnvelope(JOB_PAYLOAD_TYPE, utf8Encode(JSON.stringify(j)), requester)
}

function schemaPath (fn: () => unknown): string | undefined {
  try { fn() } catch (err) {
    expect(err).toBeInstanceOf(SchemaError)
    return (err as SchemaError).path
  }
  return undefined
}

describe('job vary (PROTOCOL.md §5.1)', () => {
  it('absent: no vary field, and the payload is what it was before the field existed', () => {
    expect(open.job.vary).toBeUndefined()
    expect('vary' in json(open.envelope)).toBe(false)
  })

  it('is not part of the build: same buildId, another jobId, and the decoder gives it back', () => {
    const job = varyJob(['clock', 'clock'])
    expect(job.job.vary).toEqual(['clock'])
    expect(job.job.buildId).toBe(open.job.buildId)
    expect(job.jobId).not.toBe(open.jobId)
    const back = decodeJobAnnouncement(job.bytes, { now: NOW })
    expect(back.job).toEqual(job.job)
    expect(back.jobId).toBe(job.jobId)
  })

  it('an unknown variation, a repeat, an empty or too long list, a non-list are refused with SchemaError at vary', () => {
    // the build path is deliberately not a variation (protocol/job.ts, JOB_VARIATIONS)
    expect(schemaPath(() => decodeJobAnnouncement(withVary(['buildpath']), { now: NOW }))).toBe('vary[0]')
    expect(schemaPath(() => decodeJobAnnouncement(withVary(['clock', 'clock']), { now: NOW }))).toBe('vary[1]')
    expect(schemaPath(() => decodeJobAnnouncement(withVary(['Clock']), { now: NOW }))).toBe('vary[0]')
    expect(schemaPath(() => decodeJobAnnouncement(withVary([]), { now: NOW }))).toBe('vary')
    expect(schemaPath(() => decodeJobAnnouncement(withVary(Array.from({ length: MAX_VARIATIONS + 1 }, () => 'clock')), { now: NOW }))).toBe('vary')
    expect(schemaPath(() => decodeJobAnnouncement(withVary('clock'), { now: NOW }))).toBe('vary')
    expect(schemaPath(() => decodeJobAnnouncement(withVary([1]), { now: NOW }))).toBe('vary[0]')
    // and never emitted
    expect(schemaPath(() => varyJob(['buildpath']))).toBe('vary[0]')
    expect(schemaPath(() => varyJob([]))).toBe('vary')
  })
})

describe('clockOffsetFor: the offset a worker derives', () => {
  it('is whole seconds in [+1 h, +72 h], the same for the same key and job, and another for another key or job', () => {
    const a = clockOffsetFor(worker.did, open.jobId)
    expect(Number.isSafeInteger(a)).toBe(true)
    expect(a).toBeGreaterThanOrEqual(CLOCK_OFFSET_MIN_SECONDS)
    expect(a).toBeLessThanOrEqual(CLOCK_OFFSET_MAX_SECONDS)
    expect(clockOffsetFor(worker.did, open.jobId)).toBe(a)
    const others = Array.from({ length: 16 }, (_, i) => clockOffsetFor(fixedKey(`worker-${i + 2}`).did, open.jobId))
    for (const o of others) {
      expect(o).toBeGreaterThanOrEqual(CLOCK_OFFSET_MIN_SECONDS)
      expect(o).toBeLessThanOrEqual(CLOCK_OFFSET_MAX_SECONDS)
    }
    // 17 draws from ~255,600 values: distinct unless the derivation ignores the key
    expect(new Set([a, ...others]).size).toBe(17)
    expect(clockOffsetFor(worker.did, varyJob(['clock']).jobId)).not.toBe(a)
  })
})

describe('attestation variation (PROTOCOL.md §5.2)', () => {
  const claim = { ...claimFor(worker, { jobId: open.jobId }), variation: { clockOffsetSeconds: 7200 } }

  it('round-trips through create and decode, carried at predicate.buildDefinition.internalParameters.variation', () => {
    const att = createAttestation(claim, worker)
    expect(att.statement.predicate.buildDefinition.internalParameters.variation).toEqual({ clockOffsetSeconds: 7200 })
    const back = decodeAttestation(att.bytes, { now: NOW })
    expect(back.claim.variation).toEqual({ clockOffsetSeconds: 7200 })
    expect(back.claim).toEqual(att.claim)
    // absent stays absent
    const plain = createAttestation(claimFor(worker, { jobId: open.jobId }), worker)
    expect('variation' in plain.statement.predicate.buildDefinition.internalParameters).toBe(false)
    expect(decodeAttestation(plain.bytes, { now: NOW }).claim.variation).toBeUndefined()
  })

  it(`refuses offsets beyond ±${MAX_CLOCK_OFFSET_SECONDS} s (10 years), fractions and extra keys, at their statement path`, () => {
    const path = 'predicate.buildDefinition.internalParameters.variation'
    const signed = (variation: unknown): Envelope => {
      const st = statementOf(claimFor(worker, { jobId: open.jobId })) as unknown as { predicate: { buildDefinition: { internalParameters: Record<string, unknown> } } }
      st.predicate.buildDefinition.internalParameters.variation = variation
      return signEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(st)), worker)
    }
    expect(decodeAttestation(signed({ clockOffsetSeconds: -MAX_CLOCK_OFFSET_SECONDS }), { now: NOW }).claim.variation).toEqual({ clockOffsetSeconds: -MAX_CLOCK_OFFSET_SECONDS })
    expect(schemaPath(() => decodeAttestation(signed({ clockOffsetSeconds: MAX_CLOCK_OFFSET_SECONDS + 1 }), { now: NOW }))).toBe(`${path}.clockOffsetSeconds`)
    expect(schemaPath(() => decodeAttestation(signed({ clockOffsetSeconds: 1.5 }), { now: NOW }))).toBe(`${path}.clockOffsetSeconds`)
    expect(schemaPath(() => decodeAttestation(signed({ clockOffsetSeconds: '3600' }), { now: NOW }))).toBe(`${path}.clockOffsetSeconds`)
    expect(schemaPath(() => decodeAttestation(signed({ clockOffsetSeconds: 3600, hostname: 'x' }), { now: NOW }))).toBe(`${path}.hostname`)
    expect(schemaPath(() => decodeAttestation(signed({ clockOffsetSeconds: 3600, buildPath: '/b' }), { now: NOW }))).toBe(`${path}.buildPath`)
    // "nothing varied" is spelt by leaving the record out, never by an empty one
    expect(schemaPath(() => decodeAttestation(signed({}), { now: NOW }))).toBe(path)
    expect(schemaPath(() => createAttestation({ ...claim, variation: { clockOffsetSeconds: MAX_CLOCK_OFFSET_SECONDS + 1 } }, worker))).toBe('variation.clockOffsetSeconds')
  })
})
