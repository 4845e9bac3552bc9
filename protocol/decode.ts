/** Shared first steps of every object decoder. */
import { MalformedError, PayloadTypeError, ProtocolError, SchemaError, SizeLimitError, UnsupportedVersionError } from './errors.ts'
import { envelopeBytes, envelopePayload, parseEnvelope, validateEnvelope } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { parseJson } from './encoding.ts'
import { MAX_MESSAGE_BYTES } from './limits.ts'

/** Bytes are parsed (size cap first); an object is re-validated, since it may come from anywhere. */
export function readEnvelope (input: Uint8Array | Envelope): Envelope {
  if (input instanceof Uint8Array) return parseEnvelope(input)
  const env = validateEnvelope(input)
  const size = envelopeBytes(env).length
  if (size > MAX_MESSAGE_BYTES) throw new SizeLimitError(`envelope is ${size} bytes, the limit is ${MAX_MESSAGE_BYTES}`)
  return env
}

/** One signature, the expected payloadType, then the payload as JSON. */
export function openEnvelope (env: Envelope, payloadType: string): { payload: Uint8Array, json: unknown } {
  if (env.signatures.length !== 1) throw new SchemaError('signatures', 'concur objects carry exactly one signature')
  if (env.payloadType !== payloadType) throw new PayloadTypeError(`expected payloadType ${JSON.stringify(payloadType)}, got ${JSON.stringify(env.payloadType)}`)
  const payload = envelopePayload(env)
  return { payload, json: parseJson(payload, 'payload') }
}

/** An object family with two known versions: each one's payloadType and `_type`, and the pattern of the family's `_type`s. */
export interface TwoVersions {
  name: string
  v1: { payloadType: string, type: string }
  v2: { payloadType: string, type: string }
  family: RegExp
}

/**
 * Whether `x` is version 2 of its family (else version 1). The envelope's
 * `payloadType`, when given, decides which `_type` it must carry (a
 * mislabelled one is ERR_SCHEMA); another version of the family is
 * ERR_UNSUPPORTED_VERSION (IGNOREd, §9), anything else ERR_SCHEMA.
 */
export function isVersion2 (x: Record<string, unknown>, payloadType: string | undefined, f: TwoVersions): boolean {
  const expected = payloadType === f.v2.payloadType ? f.v2.type : payloadType === f.v1.payloadType ? f.v1.type : undefined
  const known = expected === undefined ? (x._type === f.v1.type || x._type === f.v2.type) : x._type === expected
  if (!known) {
    if (typeof x._type === 'string' && f.family.test(x._type) && x._type !== f.v1.type && x._type !== f.v2.type) throw new UnsupportedVersionError(`unsupported ${f.name} type ${x._type}`)
    throw new SchemaError('_type', `expected ${expected ?? f.v1.type}`)
  }
  return x._type === f.v2.type
}

/** Decoders promise to fail only with ProtocolError subclasses; anything else is a bug we still contain. */
export function guard<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new MalformedError('input could not be decoded', { cause: err })
  }
}
