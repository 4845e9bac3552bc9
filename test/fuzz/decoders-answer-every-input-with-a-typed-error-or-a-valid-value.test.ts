/**
 * Fuzzing every wire decoder with fast-check: random bytes, random JSON,
 * envelope-shaped values, deep nesting, and mutations of valid messages (at
 * the byte level, and inside the signed payload, re-signed). Every input must
 * be answered by a value or by a ProtocolError with a known code: no crash,
 * no stray TypeError/RangeError, no unhandled rejection.
 *
 * Short mode (npm test): a few thousand inputs. Long mode (CONCUR_LONG=1,
 * npm run test:adversary): over 100,000 across this file and the validator's.
 */
import { afterAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE, decodeAttestation, decodeClaim, decodeJobAnnouncement, decodeMessage, parseEnvelope
} from '../../protocol/index.ts'
import { installFastVerify } from '../../src/net/fast-verify.ts'
import { LONG, RUNS, watchUnhandled, NOW, SEEDS, anyInput, deepJson, envelopeShaped, mutateBytes, mutatePayload, typedOrValid } from './inputs.ts'

installFastVerify()
let inputs = 0
const unhandled = watchUnhandled()

const opts = { now: NOW }
const decoders = {
  decodeJobAnnouncement: (b: Uint8Array) => decodeJobAnnouncement(b, opts),
  decodeAttestation: (b: Uint8Array) => decodeAttestation(b, opts),
  decodeClaim: (b: Uint8Array) => decodeClaim(b, opts),
  decodeMessage: (b: Uint8Array) => decodeMessage(b, opts),
  parseEnvelope: (b: Uint8Array) => parseEnvelope(b)
}

describe('every decoder answers every input with a typed error or a valid value', () => {
  afterAll(() => {
    expect(unhandled.stop()).toBe(0)
    console.log(`fuzz: ${inputs} inputs through the decoders (${LONG ? 'long' : 'short'} mode)`)
  })

  for (const [name, decode] of Object.entries(decoders)) {
    it(`${name}: random, envelope-shaped and mutated inputs`, () => {
      fc.assert(fc.property(anyInput, (bytes) => {
        inputs++
        const r = typedOrValid(() => decode(bytes))
        if (r.ok && name !== 'parseEnvelope') {
          // a valid value re-decodes to itself from its own canonical bytes
          const canonical = (v: unknown): Buffer => {
            const o = v as { bytes?: Uint8Array, value?: { bytes: Uint8Array } }
            return Buffer.from(o.bytes ?? o.value!.bytes)
          }
          expect(canonical(decode(canonical(r.value))).equals(canonical(r.value))).toBe(true)
        }
      }), { numRuns: RUNS })
    })
  }

  it('decoders handed arbitrary objects instead of bytes (Envelope-typed input from anywhere)', () => {
    fc.assert(fc.property(fc.oneof(fc.anything(), envelopeShaped.map(b => JSON.parse(Buffer.from(b).toString()) as unknown)), (x) => {
      inputs += 3
      typedOrValid(() => decodeJobAnnouncement(x as never, opts))
      typedOrValid(() => decodeAttestation(x as never, opts))
      typedOrValid(() => decodeClaim(x as never, opts))
    }), { numRuns: RUNS })
  })

  it('deeply nested JSON, outside and inside a signed payload', () => {
    fc.assert(fc.property(deepJson, fc.constantFrom(JOB_PAYLOAD_TYPE, ATTESTATION_PAYLOAD_TYPE, CLAIM_PAYLOAD_TYPE), (bytes, type) => {
      inputs += 2
      expect(typedOrValid(() => decodeMessage(bytes, opts)).ok).toBe(false)
      const wrapped = Buffer.from(JSON.stringify({ payload: Buffer.from(bytes).toString('base64'), payloadType: type, signatures: [{ keyid: '', sig: 'A'.repeat(86) + '==' }] }))
      expect(typedOrValid(() => decodeMessage(wrapped, opts)).ok).toBe(false)
    }), { numRuns: Math.ceil(RUNS / 8) })
  })

  it('a mutation of a valid message is never accepted with a different meaning', () => {
    // mutations that decode must decode to the very same signed payload (e.g.
    // the keyid hint or JSON spacing changed): nothing else can be re-signed
    for (const seed of SEEDS) {
      const original = decodeMessage(seed.bytes, opts)
      fc.assert(fc.property(mutateBytes(seed.bytes), (bytes) => {
        inputs++
        const r = typedOrValid(() => decodeMessage(bytes, opts))
        if (r.ok) expect(r.value.value.envelope.payload).toBe(original.value.envelope.payload)
      }), { numRuns: Math.ceil(RUNS / 4) })
    }
  })

  it('payload mutations that still decode were re-signed by the same key (the signature covers every field)', () => {
    for (const seed of SEEDS) {
      fc.assert(fc.property(mutatePayload(seed), (bytes) => {
        inputs++
        const r = typedOrValid(() => decodeMessage(bytes, opts))
        if (r.ok) expect(Buffer.from(r.value.value.signer).equals(Buffer.from(seed.key.publicKey))).toBe(true)
      }), { numRuns: Math.ceil(RUNS / 4) })
    }
  })

  if (LONG) {
    it('long mode reached its input count', () => { expect(inputs).toBeGreaterThanOrEqual(80_000) })
  }
})
