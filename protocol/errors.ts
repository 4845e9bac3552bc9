/**
 * Typed errors of the wire protocol.
 *
 * Every decoder answers bad input with one of these classes, never with a bare
 * `Error`/`TypeError`/`SyntaxError`: callers (the gossip topic validators) map the
 * stable `code` to an action (REJECT or IGNORE), see `gossipActionFor`.
 */

export type ProtocolErrorCode =
  | 'ERR_TOO_LARGE'
  | 'ERR_MALFORMED'
  | 'ERR_SCHEMA'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_PAYLOAD_TYPE'
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_BAD_KEY'
  | 'ERR_SMALL_ORDER_KEY'
  | 'ERR_EXPIRED'
  | 'ERR_FUTURE'
  | 'ERR_BUILD_ID_MISMATCH'
  | 'ERR_POLICY'
  | 'ERR_NOT_EQUIVOCATION'

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode
  override name: string = 'ProtocolError'

  constructor (code: ProtocolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** The input is larger than the protocol allows (checked before parsing anything). */
export class SizeLimitError extends ProtocolError {
  override readonly code = 'ERR_TOO_LARGE' as const
  override name = 'SizeLimitError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_TOO_LARGE', message, options) }
}

/** Not UTF-8, not JSON, not canonical base64: the bytes cannot even be read. */
export class MalformedError extends ProtocolError {
  override readonly code = 'ERR_MALFORMED' as const
  override name = 'MalformedError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_MALFORMED', message, options) }
}

/** Readable, but a field is missing, has the wrong type, is out of range or unknown. */
export class SchemaError extends ProtocolError {
  override readonly code = 'ERR_SCHEMA' as const
  override name = 'SchemaError'
  /** JSON-pointer-like path of the offending field, e.g. `definition.command[0]`. */
  readonly path: string
  constructor (path: string, message: string, options?: ErrorOptions) {
    super('ERR_SCHEMA', path === '' ? message : `${path}: ${message}`, options)
    this.path = path
  }
}

/** A `_type`/predicate/build type of a version this implementation does not speak. */
export class UnsupportedVersionError extends ProtocolError {
  override readonly code = 'ERR_UNSUPPORTED_VERSION' as const
  override name = 'UnsupportedVersionError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_UNSUPPORTED_VERSION', message, options) }
}

/** The DSSE payloadType is not the one expected for this object (or unknown). */
export class PayloadTypeError extends ProtocolError {
  override readonly code = 'ERR_PAYLOAD_TYPE' as const
  override name = 'PayloadTypeError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_PAYLOAD_TYPE', message, options) }
}

/** The envelope signature does not verify over PAE(payloadType, payload) with the signer's key. */
export class SignatureError extends ProtocolError {
  override readonly code = 'ERR_BAD_SIGNATURE' as const
  override name = 'SignatureError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_BAD_SIGNATURE', message, options) }
}

/** A did:key or raw public key that is malformed, not a curve point, or of small order. */
export class KeyError extends ProtocolError {
  declare readonly code: 'ERR_BAD_KEY' | 'ERR_SMALL_ORDER_KEY'
  override name = 'KeyError'
  // narrows the code a KeyError may be built with
  constructor (code: 'ERR_BAD_KEY' | 'ERR_SMALL_ORDER_KEY', message: string, options?: ErrorOptions) { super(code, message, options) }
}

/** The object's validity window is over (job expired, lease lapsed). */
export class ExpiredError extends ProtocolError {
  override readonly code = 'ERR_EXPIRED' as const
  override name = 'ExpiredError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_EXPIRED', message, options) }
}

/** The object claims a time further in the future than the allowed clock skew. */
export class FutureError extends ProtocolError {
  override readonly code = 'ERR_FUTURE' as const
  override name = 'FutureError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_FUTURE', message, options) }
}

/** The stated buildId is not the hash of the stated definition. */
export class BuildIdMismatchError extends ProtocolError {
  override readonly code = 'ERR_BUILD_ID_MISMATCH' as const
  override name = 'BuildIdMismatchError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_BUILD_ID_MISMATCH', message, options) }
}

/** A trust policy that cannot be evaluated safely (bad keys, impossible threshold, …). */
export class PolicyError extends ProtocolError {
  override readonly code = 'ERR_POLICY' as const
  override name = 'PolicyError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_POLICY', message, options) }
}

/**
 * Two validly signed attestations that do not prove equivocation: different
 * keys, builds or jobs, a failure, or one artifact twice. Such a "proof"
 * would make a receiver stop counting an honest key, so it is REJECTed.
 */
export class NotEquivocationError extends ProtocolError {
  override readonly code = 'ERR_NOT_EQUIVOCATION' as const
  override name = 'NotEquivocationError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_NOT_EQUIVOCATION', message, options) }
}

export function isProtocolError (e: unknown): e is ProtocolError {
  return e instanceof ProtocolError
}
