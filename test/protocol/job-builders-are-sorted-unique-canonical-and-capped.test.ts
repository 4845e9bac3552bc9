import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { base58btc } from 'multiformats/bases/base58'
import {
  JOB_PAYLOAD_TYPE, MAX_BUILDERS, ProtocolError, SchemaError, decodeJobAnnouncement, didFromPublicKey, envelopePayload,
  signEnvelope, utf8Encode, validateJobAnnouncement
} from '../../protocol/index.ts'
import type { Envelope } from '../../protocol/index.ts'
import { fixedKey, makeJob, requester, T0 } from './fixtures.ts'

const NOW = T0 + 60_000
const keys = Array.from({ length: MAX_BUILDERS + 1 }, (_, i) => fixedKey(`builder-${i}`))
const dids = keys.map(k => k.did)
const sorted = (xs: string[]): string[] => [...xs].sort()
const open = makeJob()
const json = (env: Envelope): Record<string, unknown> => JSON.parse(new TextDecoder().decode(envelopePayload(env))) as Record<string, unknown>

/** the open job's payload with `builders` set to anything, re-signed, so only that field can fail */
function withBuilders (builders: unknown): Envelope {
  const j = json(open.envelope)
  j.builders = builders
  return signEnvelope(JOB_PAYLOAD_TYPE, utf8Encode(JSON.stringify(j)), requester)
}

function schemaPath (fn: () => unknown): string | undefined {
  try { fn() } catch (err) {
    expect(err).toBeInstanceOf(SchemaError)
    return (err as SchemaError).path
  }
  return undefined
}

describe('job builders (PROTOCOL.md §5.1)', () => {
  it('absent is an open job: no builders field, and the payload is what it was before the field existed', () => {
    expect(open.job.builders).toBeUndefined()
    expect('builders' in json(open.envelope)).toBe(false)
  })

  it('createJobAnnouncement emits them sorted without repeats, right after replicas, and the decoder gives them back', () => {
    const given = [dids[2]!, dids[0]!, dids[1]!, dids[0]!]
    const job = makeJob({ builders: given })
    expect(job.job.builders).toEqual(sorted([dids[0]!, dids[1]!, dids[2]!]))
    const payload = json(job.envelope)
    expect(Object.keys(payload).indexOf('builders')).toBe(Object.keys(payload).indexOf('replicas') + 1)
    const back = decodeJobAnnouncement(job.bytes, { now: NOW })
    expect(back.job).toEqual(job.job)
    expect(back.jobId).toBe(job.jobId)
    // another order of the same keys is the same job
    expect(makeJob({ builders: [...given].reverse() }).jobId).toBe(job.jobId)
    expect(job.jobId).not.toBe(open.jobId)
  })

  it(`at most ${MAX_BUILDERS}, at least 1`, () => {
    expect(decodeJobAnnouncement(withBuilders(sorted(dids.slice(0, MAX_BUILDERS))), { now: NOW }).job.builders).toHaveLength(MAX_BUILDERS)
    expect(schemaPath(() => decodeJobAnnouncement(withBuilders(sorted(dids)), { now: NOW }))).toBe('builders')
    expect(schemaPath(() => decodeJobAnnouncement(withBuilders([]), { now: NOW }))).toBe('builders')
    expect(schemaPath(() => makeJob({ builders: [] }))).toBe('builders')
    expect(schemaPath(() => makeJob({ builders: dids }))).toBe('builders')
  })

  it('refuses, naming the entry: unsorted, repeated, not a string, not a did:key, not canonical, not ed25519', () => {
    const [a, b] = sorted(dids.slice(0, 2)) as [string, string]
    const key = keys[0]!.publicKey
    const secp = new Uint8Array(35); secp.set([0xe7, 0x01, 0x02]); secp.set(key, 3)
    const cases: Array<[string, unknown]> = [
      ['builders[1]', [b, a]],
      ['builders[1]', [a, a]],
      ['builders[0]', [7]],
      ['builders[1]', [a, null]],
      ['builders[0]', ['did:web:example.com']],
      ['builders[0]', ['did:key:z' + 'z'.repeat(200)]],
      // base58 with a leading '1': the same bytes plus a zero byte, not the key's one spelling
      ['builders[0]', ['did:key:z1' + didFromPublicKey(key).slice('did:key:z'.length)]],
      // a secp256k1-pub multicodec (0xe7 0x01) key is not an ed25519 key
      ['builders[0]', ['did:key:' + base58btc.encode(secp)]],
      ['builders', 'did:key:z6Mk'],
      ['builders', { 0: a }]
    ]
    for (const [path, value] of cases) {
      expect(schemaPath(() => decodeJobAnnouncement(withBuilders(value), { now: NOW })), JSON.stringify(value).slice(0, 80)).toBe(path)
    }
  })

  it('any list of keys round-trips: the decoder accepts what create emits, and create sorts and dedupes', () => {
    fc.assert(fc.property(fc.array(fc.nat({ max: dids.length - 1 }), { minLength: 1, maxLength: 40 }), picks => {
      const given = picks.map(i => dids[i]!)
      const job = makeJob({ builders: given })
      expect(job.job.builders).toEqual(sorted([...new Set(given)]))
      expect(decodeJobAnnouncement(job.bytes, { now: NOW }).job).toEqual(job.job)
      expect(validateJobAnnouncement(json(job.envelope))).toEqual(job.job)
    }))
  })

  it('any other value of builders is refused with a ProtocolError, never anything else', () => {
    fc.assert(fc.property(fc.anything(), value => {
      try {
        decodeJobAnnouncement(withBuilders(value), { now: NOW })
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
    }), { numRuns: 300 })
  })
})
