import { readdirSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ADVERT_PAYLOAD_TYPE, ProtocolError, decodeAdvert, decodeAttestation, decodeClaim, decodeJobAnnouncement, pae, publicKeyFromDid,
  validateEnvelope, verifyEnvelopeSignature, ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE, RELEASE_PAYLOAD_TYPE, SHARDED_JOB_PAYLOAD_TYPE, shardOf
} from '../../protocol/index.ts'
import type { Envelope } from '../../protocol/index.ts'
import { VECTORS_DIR } from './generate-vectors.ts'
import type { PaeVector, SignatureVector } from './generate-vectors.ts'
import {
  base58Encode, independentClockOffset, independentCpus, independentHostname, independentPae, independentTimezone, independentVariation, independentVary, independentlyValid, payloadJson, rawKeyFromDid
} from './independent.ts'

const files = readdirSync(VECTORS_DIR).filter(f => f.endsWith('.json')).sort()
const vectors = files.map(f => [f, JSON.parse(readFileSync(resolve(VECTORS_DIR, f), 'utf8')) as SignatureVector] as const)
const paeFiles = readdirSync(resolve(VECTORS_DIR, 'pae')).filter(f => f.endsWith('.json')).sort()

/** Our signature-level verdict: envelope schema, payloadType, key, signature over PAE. */
function oursValid (v: SignatureVector): boolean {
  try {
    const env = validateEnvelope(v.envelope)
    if (env.payloadType !== v.payloadType || env.signatures.length !== 1) return false
    verifyEnvelopeSignature(env, publicKeyFromDid(v.publicKey))
    return true
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError)
    return false
  }
}

function decodeFull (v: SignatureVector): unknown {
  const now = Date.parse(v.verifyAt)
  const env = v.envelope as Envelope
  switch (v.payloadType) {
    case JOB_PAYLOAD_TYPE:
    case SHARDED_JOB_PAYLOAD_TYPE: return decodeJobAnnouncement(env, { now })
    case ATTESTATION_PAYLOAD_TYPE: return decodeAttestation(env, { now })
    case ADVERT_PAYLOAD_TYPE: return decodeAdvert(env, { now })
    case CLAIM_PAYLOAD_TYPE:
    case RELEASE_PAYLOAD_TYPE: return decodeClaim(env, { now })
    default: throw new Error(`vector has unknown payloadType ${v.payloadType}`)
  }
}

describe('signature vectors', () => {
  it('covers the required cases', () => {
    const names = files.map(f => f.replace(/\.json$/, ''))
    for (const n of ['job-announcement-valid', 'job-announcement-sharded-valid', 'advert-valid', 'advert-forged', 'job-announcement-builders-valid', 'job-announcement-vary-clock-valid', 'attestation-success-valid',
      'attestation-failure-valid', 'attestation-clock-varied-valid', 'job-announcement-vary-all-valid', 'attestation-all-varied-valid', 'tampered-payload',
      'wrong-key', 'wrong-payload-type-relabelled', 'wrong-payload-type-signed', 'non-canonical-signature']) {
      expect(names).toContain(n)
    }
    expect(vectors.some(([, v]) => v.valid)).toBe(true)
    expect(vectors.some(([, v]) => !v.valid)).toBe(true)
  })

  for (const [file, v] of vectors) {
    describe(file, () => {
      it(`our verifier says valid=${String(v.valid)}`, () => {
        expect(oursValid(v)).toBe(v.valid)
      })

      it(`node:crypto (OpenSSL) with independently computed PAE says valid=${String(v.valid)}`, () => {
        expect(independentlyValid(v.envelope, v.payloadType, v.publicKey)).toBe(v.valid)
      })

      if (v.laxVerifiersAccept === true) {
        it('a lax base64 decoder would accept it (why strict decoding matters)', () => {
          expect(independentlyValid(v.envelope, v.payloadType, v.publicKey, { strictBase64: false })).toBe(true)
        })
      }

      it(v.valid ? 'the full decoder accepts it at verifyAt' : `the full decoder refuses it with ${v.error ?? '?'}`, () => {
        if (v.valid) {
          expect(() => decodeFull(v)).not.toThrow()
        } else {
          expect(v.error).toBeTypeOf('string')
          let caught: unknown
          try { decodeFull(v) } catch (err) { caught = err }
          expect(caught).toBeInstanceOf(ProtocolError)
          expect((caught as ProtocolError).code).toBe(v.error)
        }
      })
    })
  }
})

describe('the job vector naming builders, read without protocol/ code', () => {
  it('lists canonical ed25519 did:keys, strictly ascending, right after replicas (PROTOCOL.md §5.1)', () => {
    const v = JSON.parse(readFileSync(resolve(VECTORS_DIR, 'job-announcement-builders-valid.json'), 'utf8')) as SignatureVector
    const payload = JSON.parse(Buffer.from(v.envelope.payload, 'base64').toString('utf8')) as Record<string, unknown>
    expect(Object.keys(payload).indexOf('builders')).toBe(Object.keys(payload).indexOf('replicas') + 1)
    const builders = payload.builders as string[]
    expect(builders.length).toBeGreaterThanOrEqual(1)
    for (const [i, did] of builders.entries()) {
      const key = rawKeyFromDid(did)
      expect(key).toHaveLength(32)
      // one text per key: re-encoding gives the same did
      expect('did:key:z' + base58Encode(Uint8Array.of(0xed, 0x01, ...key))).toBe(did)
      if (i > 0) expect(builders[i - 1]! < did).toBe(true)
    }
  })
})

describe('the sharded job vector, read without protocol/ code (PROTOCOL.md §6.1)', () => {
  const read = (name: string): SignatureVector => JSON.parse(readFileSync(resolve(VECTORS_DIR, `${name}.json`), 'utf8')) as SignatureVector

  it('is version 2 with shards 16 last, otherwise the plain job\'s fields, on the shard named by sha256(buildId)', () => {
    const v = read('job-announcement-sharded-valid')
    expect(v.payloadType).toBe('application/vnd.concur.job+json; version=2')
    const job = payloadJson(v.envelope)
    const plain = payloadJson(read('job-announcement-valid').envelope)
    expect(job._type).toBe('https://concur.dev/JobAnnouncement/v2')
    expect(Object.keys(job).at(-1)).toBe('shards')
    expect(job.shards).toBe(16)
    const without = (o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)))
    expect(without(job, '_type', 'shards')).toEqual(without(plain, '_type'))
    const shard = Number.parseInt(createHash('sha256').update(String(job.buildId), 'utf8').digest('hex')[0] as string, 16)
    expect(v.description).toContain(`travels on shard ${shard.toString(16)} `)
    expect(shardOf(String(job.buildId))).toBe(shard)
  })
})

describe('the vectors varying the clock, read without protocol/ code', () => {
  const read = (name: string): SignatureVector => JSON.parse(readFileSync(resolve(VECTORS_DIR, `${name}.json`), 'utf8')) as SignatureVector
  const valid = vectors.filter(([, v]) => v.valid)

  it('the vary-clock job asks for ["clock"] right after replicas, and keeps the buildId of the same definition (PROTOCOL.md §5.1)', () => {
    const job = payloadJson(read('job-announcement-vary-clock-valid').envelope)
    expect(independentVary(job)).toEqual(['clock'])
    expect(Object.keys(job).indexOf('vary')).toBe(Object.keys(job).indexOf('replicas') + 1)
    const plain = payloadJson(read('job-announcement-valid').envelope)
    expect(job.buildId).toBe(plain.buildId)
    expect(job.definition).toEqual(plain.definition)
    // our decoder reads the same list
    expect(decodeJobAnnouncement(read('job-announcement-vary-clock-valid').envelope as Envelope, { now: Date.parse(read('job-announcement-vary-clock-valid').verifyAt) }).job.vary).toEqual(['clock'])
  })

  it('no other valid job vector asks for a variation', () => {
    for (const [file, v] of valid) {
      if (v.payloadType !== JOB_PAYLOAD_TYPE || file === 'job-announcement-vary-clock-valid.json' || file === 'job-announcement-vary-all-valid.json') continue
      expect(independentVary(payloadJson(v.envelope)), file).toBeUndefined()
    }
  })

  it('the varied attestation records the offset its worker derives from its key and the job (PROTOCOL.md §5.2)', () => {
    const v = read('attestation-clock-varied-valid')
    const statement = payloadJson(v.envelope)
    const variation = independentVariation(statement)
    const predicate = statement.predicate as { buildDefinition: { externalParameters: { jobId: string } }, runDetails: { builder: { id: string } } }
    const jobId = predicate.buildDefinition.externalParameters.jobId
    expect(jobId).toBe(decodeJobAnnouncement(read('job-announcement-vary-clock-valid').envelope as Envelope, { now: Date.parse(v.verifyAt) }).jobId)
    const offset = independentClockOffset(predicate.runDetails.builder.id, jobId)
    expect(offset).toBeGreaterThanOrEqual(3600)
    expect(offset).toBeLessThanOrEqual(72 * 3600)
    expect(variation).toEqual({ clockOffsetSeconds: offset })
    // our decoder reads the same record
    expect(decodeAttestation(v.envelope as Envelope, { now: Date.parse(v.verifyAt) }).claim.variation).toEqual(variation)
  })

  it('no other valid attestation vector records a variation', () => {
    for (const [file, v] of valid) {
      if (v.payloadType !== ATTESTATION_PAYLOAD_TYPE || file === 'attestation-clock-varied-valid.json' || file === 'attestation-all-varied-valid.json') continue
      expect(independentVariation(payloadJson(v.envelope)), file).toBeUndefined()
    }
  })
})

describe('the vectors varying everything, read without protocol/ code', () => {
  const read = (name: string): SignatureVector => JSON.parse(readFileSync(resolve(VECTORS_DIR, `${name}.json`), 'utf8')) as SignatureVector

  it('the vary-all job asks for the four variations in ascending order and keeps the buildId (PROTOCOL.md §5.1)', () => {
    const job = payloadJson(read('job-announcement-vary-all-valid').envelope)
    expect(independentVary(job)).toEqual(['clock', 'cpus', 'hostname', 'timezone'])
    expect(job.buildId).toBe(payloadJson(read('job-announcement-valid').envelope).buildId)
  })

  it('its attestation records exactly what its worker owed: every derivation recomputed with node:crypto (PROTOCOL.md §5.2)', () => {
    const v = read('attestation-all-varied-valid')
    const statement = payloadJson(v.envelope)
    const predicate = statement.predicate as { buildDefinition: { externalParameters: { jobId: string }, internalParameters: { parallelism: number } }, runDetails: { builder: { id: string } } }
    const jobId = predicate.buildDefinition.externalParameters.jobId
    const did = predicate.runDetails.builder.id
    const parallelism = predicate.buildDefinition.internalParameters.parallelism
    expect(jobId).toBe(decodeJobAnnouncement(read('job-announcement-vary-all-valid').envelope as Envelope, { now: Date.parse(v.verifyAt) }).jobId)
    const variation = independentVariation(statement)
    expect(variation).toEqual({
      clockOffsetSeconds: independentClockOffset(did, jobId),
      cpus: independentCpus(did, jobId, parallelism),
      hostname: independentHostname(did, jobId),
      timezone: independentTimezone(did, jobId)
    })
    // our decoder reads the same record
    expect(decodeAttestation(v.envelope as Envelope, { now: Date.parse(v.verifyAt) }).claim.variation).toEqual(variation)
  })
})

describe('PAE vectors', () => {
  it('includes the DSSE specification example', () => {
    expect(paeFiles).toContain('dsse-spec-hello-world.json')
  })
  for (const f of paeFiles) {
    const v = JSON.parse(readFileSync(resolve(VECTORS_DIR, 'pae', f), 'utf8')) as PaeVector
    it(`${f}: ours and the independent PAE both give ${JSON.stringify(v.pae)}`, () => {
      const payload = new TextEncoder().encode(v.payloadUtf8)
      expect(new TextDecoder().decode(pae(v.payloadType, payload))).toBe(v.pae)
      expect(independentPae(v.payloadType, payload).toString('utf8')).toBe(v.pae)
    })
  }
  it('the DSSE spec example is literally "DSSEv1 29 http://example.com/HelloWorld 11 hello world"', () => {
    expect(new TextDecoder().decode(pae('http://example.com/HelloWorld', new TextEncoder().encode('hello world'))))
      .toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world')
  })
})
