/**
 * Fuzz-style properties: any single-bit change to a signed payload or its
 * signature fails verification, and no input — random bytes, random JSON,
 * mutated (and even re-signed) valid objects — makes a decoder throw anything
 * but a ProtocolError.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE, ProtocolError, SignatureError, base64Decode, base64Encode,
  createClaim, decodeAttestation, decodeClaim, decodeJobAnnouncement, decodeMessage, envelopeBytes, envelopePayload,
  parseEnvelope, publicKeyFromDid, signEnvelope, utf8Encode, verifyEnvelopeSignature
} from '../../protocol/index.ts'
import type { Envelope } from '../../protocol/index.ts'
import { attest, fixedKey, iso, makeJob, requester, T0 } from './fixtures.ts'

const worker = fixedKey('worker-1')
const job = makeJob()
const success = attest(worker, { jobId: job.jobId })
const failure = attest(worker, { jobId: job.jobId, failure: { exitCode: null, reason: 'killed' }, log: null })
const claim = createClaim({
  jobId: job.jobId,
  buildId: job.job.buildId,
  worker: worker.did,
  workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
  issuedAt: iso(T0),
  leaseUntil: iso(T0 + 30_000),
  seq: 3
}, worker)
const NOW = T0 + 10_000
const samples = [
  { name: 'job', env: job.envelope, key: requester, type: JOB_PAYLOAD_TYPE },
  { name: 'attestation (success)', env: success.envelope, key: worker, type: ATTESTATION_PAYLOAD_TYPE },
  { name: 'attestation (failure)', env: failure.envelope, key: worker, type: ATTESTATION_PAYLOAD_TYPE },
  { name: 'claim', env: claim.envelope, key: worker, type: CLAIM_PAYLOAD_TYPE }
]
const RUNS = 300

function decodeAll (input: Uint8Array | Envelope): void {
  const opts = { now: NOW }
  for (const fn of [
    () => decodeJobAnnouncement(input, opts), () => decodeAttestation(input, opts), () => decodeClaim(input, opts),
    () => decodeMessage(input instanceof Uint8Array ? input : utf8Encode(JSON.stringify(input)), opts)
  ]) {
    try { fn() } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`non-protocol error escaped: ${String(err)}`, { cause: err })
    }
  }
}

describe('single-bit flips', () => {
  for (const s of samples) {
    it(`${s.name}: flipping any bit of the payload or of the signature fails verification`, () => {
      const payload = envelopePayload(s.env)
      const sig = base64Decode(s.env.signatures[0]!.sig)
      const pk = publicKeyFromDid(s.key.did)
      expect(verifyEnvelopeSignature(s.env, pk)).toEqual(payload) // sanity: the original verifies
      fc.assert(fc.property(fc.nat({ max: payload.length * 8 - 1 }), bit => {
        const p = Uint8Array.from(payload)
        p[bit >> 3]! ^= 1 << (bit & 7)
        const env: Envelope = { ...s.env, payload: base64Encode(p) }
        expect(() => verifyEnvelopeSignature(env, pk)).toThrow(SignatureError)
        expect(() => decodeMessage(envelopeBytes(env), { now: NOW })).toThrow(ProtocolError)
      }), { numRuns: RUNS })
      fc.assert(fc.property(fc.nat({ max: 511 }), bit => {
        const g = Uint8Array.from(sig)
        g[bit >> 3]! ^= 1 << (bit & 7)
        const env: Envelope = { ...s.env, signatures: [{ keyid: s.key.did, sig: base64Encode(g) }] }
        expect(() => verifyEnvelopeSignature(env, pk)).toThrow(SignatureError)
      }), { numRuns: RUNS })
    })
  }
})

/** All paths to values inside a JSON value. */
function paths (x: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix]
  if (Array.isArray(x)) x.forEach((v, i) => out.push(...paths(v, [...prefix, i])))
  else if (typeof x === 'object' && x !== null) for (const [k, v] of Object.entries(x)) out.push(...paths(v, [...prefix, k]))
  return out
}

function mutate (root: unknown, path: Array<string | number>, value: unknown, remove: boolean): unknown {
  if (path.length === 0) return value
  const copy = structuredClone(root) as Record<string | number, unknown>
  let cur = copy
  for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (remove) { if (Array.isArray(cur)) cur.splice(Number(last), 1); else delete cur[last] } else cur[last] = value
  return copy
}

describe('decoders only ever throw ProtocolError', () => {
  it('on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), bytes => decodeAll(bytes)), { numRuns: RUNS })
  })

  it('on random JSON text and random JSON values as envelopes', () => {
    fc.assert(fc.property(fc.json(), text => decodeAll(utf8Encode(text))), { numRuns: RUNS })
    fc.assert(fc.property(fc.jsonValue(), value => decodeAll(value as unknown as Envelope)), { numRuns: RUNS })
  })

  it('on byte-level mutations of valid envelopes', () => {
    fc.assert(fc.property(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (s, edits) => {
      const bytes = Uint8Array.from(envelopeBytes(s.env))
      for (const [pos, val] of edits) bytes[pos % bytes.length] = val
      decodeAll(bytes)
    }), { numRuns: RUNS })
  })

  it('on structural mutations of valid payloads, unsigned and re-signed by the right key', () => {
    const payloadArb = fc.constantFrom(...samples).chain(s => {
      const obj = JSON.parse(new TextDecoder().decode(envelopePayload(s.env))) as unknown
      const ps = paths(obj)
      return fc.tuple(fc.constant(s), fc.constant(obj), fc.constantFrom(...ps), fc.oneof(fc.jsonValue(), fc.constantFrom('', -1, 0, 1e308, '\ud800', 'x'.repeat(10_000), [], {}, null)), fc.boolean())
    })
    fc.assert(fc.property(payloadArb, ([s, obj, path, value, remove]) => {
      const mutated = mutate(obj, path, value, remove)
      const payload = utf8Encode(JSON.stringify(mutated) ?? 'null')
      decodeAll({ ...s.env, payload: base64Encode(payload) })
      const resigned = signEnvelope(s.type, payload, s.key)
      decodeAll(envelopeBytes(resigned))
    }), { numRuns: RUNS })
  })

  it('parseEnvelope round-trips canonical envelopes byte for byte', () => {
    for (const s of samples) expect(envelopeBytes(parseEnvelope(envelopeBytes(s.env)))).toEqual(envelopeBytes(s.env))
  })
})
