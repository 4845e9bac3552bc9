/** Shared first steps of every object decoder. */
import { MalformedError, PayloadTypeError, ProtocolError, SchemaError, SizeLimitError } from './errors.ts'
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

/** Decoders promise to fail only with ProtocolError subclasses; anything else is a bug we still contain. */
export function guard<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new MalformedError('input could not be decoded', { cause: err })
  }
}
