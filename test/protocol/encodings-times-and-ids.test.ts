import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import {
  MalformedError, SchemaError, base64Decode, base64Encode, buildIdOf, envelopePayload, formatTime, jobIdOf, parseTime,
  sha256HexOfCid, tierAtLeast
} from '../../protocol/index.ts'
import { definition, makeJob } from './fixtures.ts'

describe('strict base64', () => {
  it('agrees with Buffer on canonical input, both ways', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), b => {
      const text = base64Encode(b)
      expect(text).toBe(Buffer.from(b).toString('base64'))
      expect(base64Decode(text)).toEqual(b)
    }), { numRuns: 300 })
  })
  it('refuses every text that is not the canonical encoding of some bytes', () => {
    for (const bad of ['QR==', 'QUJ=', 'QQ', 'QQ=', '=QQQ', 'Q===', 'QQ==QQ==', 'QQ ==', 'QQ-_', 'QQ\n==', '\u00e9\u00e9==']) {
      expect(() => base64Decode(bad), bad).toThrow(MalformedError)
    }
    fc.assert(fc.property(fc.string({ maxLength: 12 }), text => {
      const canonical = Buffer.from(text, 'base64').toString('base64') === text
      if (canonical) expect(base64Decode(text)).toEqual(new Uint8Array(Buffer.from(text, 'base64')))
      else expect(() => base64Decode(text)).toThrow(MalformedError)
    }), { numRuns: 500 })
  })
})

describe('times', () => {
  it('parses RFC 3339 UTC and refuses everything else', () => {
    expect(parseTime('2025-06-01T12:00:00Z', 't')).toBe(Date.UTC(2025, 5, 1, 12))
    expect(parseTime('2025-06-01T12:00:00.5Z', 't')).toBe(Date.UTC(2025, 5, 1, 12, 0, 0, 500))
    expect(parseTime('2024-02-29T23:59:59.999999999Z', 't')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59, 999))
    for (const bad of ['2025-06-01', '2025-06-01T12:00:00', '2025-06-01T12:00:00+00:00', '2025-06-01t12:00:00z', '2025-13-01T00:00:00Z',
      '2023-02-29T00:00:00Z', '2025-06-01T24:00:00Z', '2025-06-01T12:60:00Z', '1969-12-31T23:59:59Z', ' 2025-06-01T12:00:00Z', '+002025-06-01T12:00:00Z']) {
      expect(() => parseTime(bad, 'when'), bad).toThrow(SchemaError)
    }
  })
  it('formatTime output is always accepted and round-trips', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }), ms => {
      expect(parseTime(formatTime(ms), 't')).toBe(ms)
    }), { numRuns: 300 })
  })
})

describe('ids', () => {
  it('buildId is CIDv1 dag-cbor whose digest is sha256 of the dag-cbor encoding, independent of key order', () => {
    const id = CID.parse(buildIdOf(definition))
    expect(id.version).toBe(1)
    expect(id.code).toBe(0x71)
    expect(sha256HexOfCid(id)).toBe(createHash('sha256').update(dagCbor.encode(definition)).digest('hex'))
    const reordered = { output: definition.output, env: { LC_ALL: 'C.UTF-8', SOURCE_DATE_EPOCH: '1700000000' }, command: definition.command, environment: definition.environment, source: definition.source, version: 1 as const }
    expect(buildIdOf(reordered)).toBe(buildIdOf(definition))
    expect(buildIdOf({ ...definition, command: [...definition.command, 'x'] })).not.toBe(buildIdOf(definition))
  })

  it('jobId is CIDv1 raw whose digest is sha256 of the exact signed payload bytes', () => {
    const job = makeJob()
    const id = CID.parse(job.jobId)
    expect(id.code).toBe(0x55)
    expect(sha256HexOfCid(id)).toBe(createHash('sha256').update(envelopePayload(job.envelope)).digest('hex'))
    expect(jobIdOf(envelopePayload(job.envelope))).toBe(job.jobId)
  })

  it('sandbox tiers are ordered namespaces < namespaces+cgroups < vm', () => {
    expect(tierAtLeast('vm', 'namespaces')).toBe(true)
    expect(tierAtLeast('namespaces+cgroups', 'namespaces+cgroups')).toBe(true)
    expect(tierAtLeast('namespaces', 'namespaces+cgroups')).toBe(false)
    expect(tierAtLeast('bogus' as 'vm', 'namespaces')).toBe(false)
  })
})
