/**
 * Issue 19: besides the clock, a job may ask its replicas to vary the CPU
 * count, the hostname and the timezone. Each value is derived from (worker
 * did, jobId) so anyone can recompute what a worker owed; the attestation
 * records it (shapes checked by the decoder); the verdict counts an answer
 * only when its record is exactly what its worker owed.
 */
import { describe, expect, it } from 'vitest'
import {
  ATTESTATION_PAYLOAD_TYPE, JOB_VARIATIONS, MAX_VARIED_CPUS, SchemaError, VARIED_HOSTNAME_PATTERN, VARIED_TIMEZONES, clockOffsetFor,
  cpusFor, createAttestation, createJobAnnouncement, createPolicy, decodeAttestation, decodeJobAnnouncement, evaluateVerdict, hostnameFor,
  owedVariation, signEnvelope, statementOf, timezoneFor, utf8Encode
} from '../../protocol/index.ts'
import type { BuildVariation, Envelope, JobVariation, SignedAttestation } from '../../protocol/index.ts'
import { attest, claimFor, fakeTreeCid, fixedKey, makeJob, requester, T0 } from './fixtures.ts'

const NOW = T0 + 60_000
const workers = Array.from({ length: 64 }, (_, i) => fixedKey(`worker-${i + 1}`))
const worker = workers[0]!
const open = makeJob()
const jobId = open.jobId

function schemaPath (fn: () => unknown): string | undefined {
  try { fn() } catch (err) {
    expect(err).toBeInstanceOf(SchemaError)
    return (err as SchemaError).path
  }
  return undefined
}

describe('the derivations (PROTOCOL.md §5.1)', () => {
  it('hostnameFor: concur-<8 hex>, the same for the same key and job, another for another key or job, never the unvaried "concur"', () => {
    const h = hostnameFor(worker.did, jobId)
    expect(h).toMatch(VARIED_HOSTNAME_PATTERN)
    expect(h).toMatch(/^concur-[0-9a-f]{8}$/)
    expect(hostnameFor(worker.did, jobId)).toBe(h)
    expect(new Set(workers.map(w => hostnameFor(w.did, jobId))).size).toBe(workers.length)
    expect(hostnameFor(worker.did, makeJob({ replicas: 3 }).jobId)).not.toBe(h)
  })

  it('timezoneFor: always one of the listed zones, deterministic, and spread over them', () => {
    const zones = workers.map(w => timezoneFor(w.did, jobId))
    for (const z of zones) expect(VARIED_TIMEZONES).toContain(z)
    expect(workers.map(w => timezoneFor(w.did, jobId))).toEqual(zones)
    // 64 draws from 12 zones: all but a few are hit unless the derivation ignores the key
    expect(new Set(zones).size).toBeGreaterThanOrEqual(8)
    expect(VARIED_TIMEZONES).not.toContain('UTC')
    expect(VARIED_TIMEZONES).not.toContain('Etc/UTC')
  })

  it('cpusFor: an integer in 1..parallelism, deterministic, covering the range; 1 when the job asked one CPU', () => {
    for (const p of [1, 2, 4, 16]) {
      const counts = workers.map(w => cpusFor(w.did, jobId, p))
      for (const c of counts) {
        expect(Number.isInteger(c)).toBe(true)
        expect(c).toBeGreaterThanOrEqual(1)
        expect(c).toBeLessThanOrEqual(p)
      }
      expect(workers.map(w => cpusFor(w.did, jobId, p))).toEqual(counts)
      if (p <= 4) expect(new Set(counts).size).toBe(p)
    }
    expect(cpusFor(worker.did, jobId, MAX_VARIED_CPUS * 4)).toBeLessThanOrEqual(MAX_VARIED_CPUS)
  })

  it('the variations are independent of each other: the hostname and zone do not follow from the clock offset', () => {
    // were they drawn from the same bytes, equal offsets mod 12 would mean equal zones; count pairs agreeing on one but not the other
    const pairs = workers.slice(1).map(w => [clockOffsetFor(w.did, jobId) % 12 === clockOffsetFor(worker.did, jobId) % 12, timezoneFor(w.did, jobId) === timezoneFor(worker.did, jobId)])
    expect(pairs.some(([a, b]) => a !== b)).toBe(true)
  })

  it('owedVariation: only the asked keys, in record order, with the derived values; nothing asked, nothing owed', () => {
    expect(owedVariation(undefined, worker.did, jobId, 2)).toBeUndefined()
    expect(owedVariation([], worker.did, jobId, 2)).toBeUndefined()
    expect(owedVariation(['clock'], worker.did, jobId, 2)).toEqual({ clockOffsetSeconds: clockOffsetFor(worker.did, jobId) })
    const all = owedVariation(['clock', 'cpus', 'hostname', 'timezone'], worker.did, jobId, 4)!
    expect(Object.keys(all)).toEqual(['clockOffsetSeconds', 'cpus', 'hostname', 'timezone'])
    expect(all).toEqual({ clockOffsetSeconds: clockOffsetFor(worker.did, jobId), cpus: cpusFor(worker.did, jobId, 4), hostname: hostnameFor(worker.did, jobId), timezone: timezoneFor(worker.did, jobId) })
    expect(owedVariation(['hostname', 'timezone'], worker.did, jobId, 4)).toEqual({ hostname: hostnameFor(worker.did, jobId), timezone: timezoneFor(worker.did, jobId) })
  })
})

describe('a job asks for them in vary', () => {
  const { definition, requester: did, requesterPeerId, replicas, resources, createdAt, expiresAt, nonce } = open.job
  const varyJob = (vary: JobVariation[]) => createJobAnnouncement({ definition, requester: did, ...(requesterPeerId !== undefined ? { requesterPeerId } : {}), replicas, vary, resources, createdAt, expiresAt, nonce }, requester)

  it('every known variation, put in ascending order; the decoder refuses them unsorted', () => {
    expect(JOB_VARIATIONS).toEqual(['clock', 'cpus', 'hostname', 'timezone'])
    const j = varyJob(['timezone', 'hostname', 'cpus', 'clock'])
    expect(j.job.vary).toEqual(['clock', 'cpus', 'hostname', 'timezone'])
    expect(decodeJobAnnouncement(j.bytes, { now: NOW }).job.vary).toEqual(['clock', 'cpus', 'hostname', 'timezone'])
    const payload = JSON.parse(new TextDecoder().decode(Buffer.from(j.envelope.payload, 'base64'))) as Record<string, unknown>
    payload.vary = ['timezone', 'hostname']
    const unsorted = signEnvelope(j.envelope.payloadType, utf8Encode(JSON.stringify(payload)), requester)
    expect(schemaPath(() => decodeJobAnnouncement(unsorted, { now: NOW }))).toBe('vary[1]')
  })
})

describe('the attestation records them (PROTOCOL.md §5.2); the decoder checks shapes only', () => {
  const path = 'predicate.buildDefinition.internalParameters.variation'
  const signed = (variation: unknown): Envelope => {
    const st = statementOf(claimFor(worker, { jobId })) as unknown as { predicate: { buildDefinition: { internalParameters: Record<string, unknown> } } }
    st.predicate.buildDefinition.internalParameters.variation = variation
    return signEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(st)), worker)
  }

  it('round-trips every key, in one key order whatever order the claim gave', () => {
    const variation = { timezone: 'Asia/Kolkata', hostname: 'concur-0123abcd', cpus: 3, clockOffsetSeconds: 7200 }
    const att = createAttestation({ ...claimFor(worker, { jobId }), variation }, worker)
    const recorded = att.statement.predicate.buildDefinition.internalParameters.variation!
    expect(Object.keys(recorded)).toEqual(['clockOffsetSeconds', 'cpus', 'hostname', 'timezone'])
    expect(decodeAttestation(att.bytes, { now: NOW }).claim.variation).toEqual(variation)
    // a record of one new key alone is fine: the clock offset is no longer required
    expect(decodeAttestation(signed({ hostname: 'concur-0123abcd' }), { now: NOW }).claim.variation).toEqual({ hostname: 'concur-0123abcd' })
  })

  it('refuses a hostname off the pattern, a zone off the list, a CPU count outside 1..1024, and wrong types, at their statement path', () => {
    for (const hostname of ['concur', 'concur-0123ABCD', 'concur-0123abc', 'concur-0123abcde', 'evil-0123abcd', 'concur-0123abcd\n', 'x'.repeat(64)]) {
      expect(schemaPath(() => decodeAttestation(signed({ hostname }), { now: NOW })), hostname).toBe(`${path}.hostname`)
    }
    for (const timezone of ['UTC', 'Etc/GMT+5', 'Europe/London', '../../etc/passwd', 'asia/kolkata', 7]) {
      expect(schemaPath(() => decodeAttestation(signed({ timezone }), { now: NOW })), String(timezone)).toBe(`${path}.timezone`)
    }
    for (const cpus of [0, -1, MAX_VARIED_CPUS + 1, 1.5, '2', null]) {
      expect(schemaPath(() => decodeAttestation(signed({ cpus }), { now: NOW })), String(cpus)).toBe(`${path}.cpus`)
    }
    expect(decodeAttestation(signed({ cpus: MAX_VARIED_CPUS }), { now: NOW }).claim.variation).toEqual({ cpus: MAX_VARIED_CPUS })
    expect(schemaPath(() => decodeAttestation(signed({}), { now: NOW }))).toBe(path)
    expect(schemaPath(() => decodeAttestation(signed({ locale: 'de_DE' }), { now: NOW }))).toBe(`${path}.locale`)
    // and never emitted
    expect(schemaPath(() => createAttestation({ ...claimFor(worker, { jobId }), variation: { hostname: 'build-box' } }, worker))).toBe('variation.hostname')
    expect(schemaPath(() => createAttestation({ ...claimFor(worker, { jobId }), variation: {} }, worker))).toBe('variation')
  })
})

describe('the verdict counts an answer to a varied job only when it records exactly what its worker owed', () => {
  const t = workers.slice(0, 4)
  const policy = createPolicy({ trusted: t.map(k => k.did), threshold: 2 })
  const A = fakeTreeCid('artifact-A')
  const buildId = open.job.buildId
  const vary: JobVariation[] = ['hostname', 'timezone']
  /** worker i's answer with the claim's parallelism (2) and this variation record */
  const answer = (i: number, variation?: BuildVariation): SignedAttestation => attest(t[i]!, { artifact: A, jobId, ...(variation !== undefined ? { variation } : {}) })
  const owed = (i: number, v: JobVariation[] = vary): BuildVariation => owedVariation(v, t[i]!.did, jobId, 2)!
  const otherZone = (i: number): string => VARIED_TIMEZONES.find(z => z !== timezoneFor(t[i]!.did, jobId))!

  it('two answers recording what they owed: accepted', () => {
    const v = evaluateVerdict(policy, buildId, [answer(0, owed(0)), answer(1, owed(1))], { jobId, vary })
    expect(v.status).toBe('accepted')
    expect(v.counted).toEqual([t[0]!.did, t[1]!.did].sort())
  })

  it('an answer without the record, with one asked key missing, with a wrong hostname or zone, or with a key not asked for is not counted', () => {
    const bad: Array<[string, BuildVariation | undefined]> = [
      ['no record', undefined],
      ['timezone missing', { hostname: hostnameFor(t[1]!.did, jobId) }],
      ['another worker\'s hostname', { ...owed(1), hostname: hostnameFor(t[2]!.did, jobId) }],
      ['a zone it did not owe', { ...owed(1), timezone: otherZone(1) }],
      ['a clock offset not asked for', { clockOffsetSeconds: clockOffsetFor(t[1]!.did, jobId), ...owed(1) }]
    ]
    for (const [what, variation] of bad) {
      const v = evaluateVerdict(policy, buildId, [answer(0, owed(0)), answer(1, variation)], { jobId, vary })
      expect(v.counted, what).toEqual([t[0]!.did])
      expect(v.status, what).toBe('provisional')
      expect(v.reasons.join(' '), what).toMatch(/ignored 1 attestation\(s\) of this job without the hostname, timezone it asked its workers for/)
    }
  })

  it('cpus is owed for the parallelism the worker attested: 1..2 here', () => {
    const withCpus = (i: number, cpus: number): SignedAttestation => attest(t[i]!, { artifact: A, jobId, variation: { cpus } })
    const right = (i: number): number => cpusFor(t[i]!.did, jobId, 2)
    expect(evaluateVerdict(policy, buildId, [withCpus(0, right(0)), withCpus(1, right(1))], { jobId, vary: ['cpus'] }).status).toBe('accepted')
    expect(evaluateVerdict(policy, buildId, [withCpus(0, right(0)), withCpus(1, 3 - right(1))], { jobId, vary: ['cpus'] }).counted).toEqual([t[0]!.did])
  })

  it('the clock check is unchanged: a clock-only job still counts a record of the clock offset alone', () => {
    const v = evaluateVerdict(policy, buildId, [answer(0, owed(0, ['clock'])), answer(1, owed(1, ['clock']))], { jobId, vary: ['clock'] })
    expect(v.status).toBe('accepted')
    // and a record that adds a hostname the job did not ask for is not what was owed
    expect(evaluateVerdict(policy, buildId, [answer(0, owed(0, ['clock'])), answer(1, owed(1, ['clock', 'hostname']))], { jobId, vary: ['clock'] }).counted).toEqual([t[0]!.did])
  })
})
