/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1).
 *
 * The signature covers PAE(payloadType, payload), so a signature made for one
 * payloadType can never be replayed under another. `keyid` is only a hint (we
 * fill in the signer's did:key) and is never used to pick or trust a key: the
 * signer is named inside the signed payload and checked against it.
 */
import { MalformedError, SchemaError, SignatureError, SizeLimitError } from './errors.ts'
import { base64Decode, base64Encode, parseJson, utf8Encode } from './encoding.ts'
import { sign, verifySignature } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { MAX_MESSAGE_BYTES } from './limits.ts'
import { expectArray, expectObject, expectString, join } from './schema.ts'

export interface Signature { keyid: string; sig: string }

export interface Envelope {
  payload: string
  payloadType: string
  signatures: Signature[]
}

/** DSSE allows several signatures; concur objects use exactly one, generic parsing caps at this many. */
export const MAX_ENVELOPE_SIGNATURES = 8
const MAX_PAYLOAD_TYPE_LENGTH = 256
const MAX_KEYID_LENGTH = 256
/** base64 of a 64-byte ed25519 signature is 88 characters. */
const MAX_SIG_LENGTH = 88

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN = ASCII decimal byte length. */
export function pae (payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8Encode(payloadType)
  const head = utf8Encode(`DSSEv1 ${type.length} `)
  const mid = utf8Encode(` ${payload.length} `)
  const out = new Uint8Array(head.length + type.length + mid.length + payload.length)
  out.set(head, 0)
  out.set(type, head.length)
  out.set(mid, head.length + type.length)
  out.set(payload, head.length + type.length + mid.length)
  return out
}

export function signEnvelope (payloadType: string, payload: Uint8Array, key: SigningKey): Envelope {
  const sig = sign(key, pae(payloadType, payload))
  return { payload: base64Encode(payload), payloadType, signatures: [{ keyid: key.did, sig: base64Encode(sig) }] }
}

/**
 * Validates an envelope-shaped value (from JSON or handed in as an object) and
 * returns a fresh, plain copy. Strict base64 is checked here so that later
 * steps never see undecodable text.
 */
export function validateEnvelope (x: unknown): Envelope {
  const o = expectObject(x, '', ['payload', 'payloadType', 'signatures'])
  const payloadType = expectString(o.payloadType, 'payloadType', { min: 1, max: MAX_PAYLOAD_TYPE_LENGTH })
  const payload = expectString(o.payload, 'payload', { max: Math.ceil(MAX_MESSAGE_BYTES / 3) * 4 })
  base64Decode(payload, 'payload')
  const sigs = expectArray(o.signatures, 'signatures', 1, MAX_ENVELOPE_SIGNATURES)
  const signatures = sigs.map((s, i): Signature => {
    const path = join('signatures', i)
    const so = expectObject(s, path, ['sig'], ['keyid'])
    // DSSE makes keyid optional; we normalise a missing one to '' (it is never trusted anyway).
    const keyid = so.keyid === undefined ? '' : expectString(so.keyid, join(path, 'keyid'), { max: MAX_KEYID_LENGTH })
    const sig = expectString(so.sig, join(path, 'sig'), { min: 1, max: MAX_SIG_LENGTH })
    base64Decode(sig, join(path, 'sig'))
    return { keyid, sig }
  })
  return { payload, payloadType, signatures }
}

/** Size cap → UTF-8 → JSON → envelope schema (strict base64). */
export function parseEnvelope (bytes: Uint8Array, opts: { maxBytes?: number } = {}): Envelope {
  if (!(bytes instanceof Uint8Array)) throw new MalformedError('expected bytes')
  const maxBytes = opts.maxBytes ?? MAX_MESSAGE_BYTES
  if (bytes.length > maxBytes) throw new SizeLimitError(`message is ${bytes.length} bytes, the limit is ${maxBytes}`)
  const json = parseJson(bytes, 'envelope')
  try {
    return validateEnvelope(json)
  } catch (err) {
    if (err instanceof SchemaError || err instanceof MalformedError) throw err
    throw new MalformedError('envelope could not be read', { cause: err })
  }
}

/** Canonical wire bytes: compact JSON, fixed key order. */
export function envelopeBytes (env: Envelope): Uint8Array {
  return utf8Encode(JSON.stringify({
    payload: env.payload,
    payloadType: env.payloadType,
    signatures: env.signatures.map(s => ({ keyid: s.keyid, sig: s.sig }))
  }))
}

/** The decoded payload bytes (strict base64). */
export function envelopePayload (env: Envelope): Uint8Array {
  return base64Decode(env.payload, 'payload')
}

/**
 * Returns the payload if some signature of the envelope verifies over
 * PAE(env.payloadType, payload) under `publicKey`; otherwise SignatureError.
 */
export function verifyEnvelopeSignature (env: Envelope, publicKey: Uint8Array): Uint8Array {
  const payload = envelopePayload(env)
  const message = pae(env.payloadType, payload)
  for (const s of env.signatures) {
    let sig: Uint8Array
    try {
      sig = base64Decode(s.sig, 'sig')
    } catch {
      continue
    }
    if (verifySignature(publicKey, message, sig)) return payload
  }
  throw new SignatureError('no envelope signature verifies under the signer key')
}
