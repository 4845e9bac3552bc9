/**
 * Errors of the network layer (src/net). Each failure has its own class,
 * every class extends {@link NetError} and carries a stable `code`, so callers
 * (the daemon, the API) can branch on `err.code` without parsing messages.
 * What peers send is judged by protocol/ (ProtocolError and the gossip
 * actions); these are the node's own failures around it.
 */
import { CodedError } from '../coded-error.ts'

/** Every code a {@link NetError} can carry. */
export const NET_ERROR_CODES = [
  'ERR_INVALID_MESSAGE',
  'ERR_REQUEST_TOO_LARGE',
  'ERR_MALFORMED_REQUEST',
  'ERR_ANSWER_CUT',
  'ERR_TRANSFER_MISMATCH',
  'ERR_TRANSFER_PROTOCOL',
  'ERR_TRANSFER_STALLED'
] as const

export type NetErrorCode = typeof NET_ERROR_CODES[number]

/** The base of every error of src/net: never thrown itself, only its subclasses. */
export class NetError extends CodedError<NetErrorCode> {}

export function isNetError (e: unknown): e is NetError {
  return e instanceof NetError
}

/**
 * The node refused to publish a message its own validator rejects: peers
 * would reject it too and score this node down for relaying it. `reason` and
 * `validation` are the validator's (`validation` is its code, e.g.
 * `ERR_BAD_SIGNATURE`, `ERR_WRONG_TOPIC`).
 */
export class InvalidPublishError extends NetError {
  override readonly code = 'ERR_INVALID_MESSAGE' as const
  override name = 'InvalidPublishError'
  readonly kind: string
  readonly reason: string
  readonly validation: string

  constructor (kind: string, reason: string, validation: string) {
    super('ERR_INVALID_MESSAGE', `refusing to publish an invalid ${kind}: ${reason}`)
    this.kind = kind
    this.reason = reason
    this.validation = validation
  }
}

/** A request/response exchange got a request larger than its protocol allows. */
export class RequestTooLargeError extends NetError {
  override readonly code = 'ERR_REQUEST_TOO_LARGE' as const
  override name = 'RequestTooLargeError'
  readonly bytes: number
  readonly limit: number

  constructor (bytes: number, limit: number) {
    super('ERR_REQUEST_TOO_LARGE', `request of ${bytes} bytes exceeds the limit of ${limit}`)
    this.bytes = bytes
    this.limit = limit
  }
}

/** A request/response exchange got a request that is not UTF-8 JSON. */
export class MalformedRequestError extends NetError {
  override readonly code = 'ERR_MALFORMED_REQUEST' as const
  override name = 'MalformedRequestError'

  constructor (message: string, options?: ErrorOptions) {
    super('ERR_MALFORMED_REQUEST', message, options)
  }
}

/**
 * A catch-up answer was cut: the asker stopped reading it and reset the
 * stream, because it went past its budget or carried what no honest peer
 * sends (PROTOCOL.md §13). `read` is how many frames had been read.
 */
export class AnswerCutError extends NetError {
  override readonly code = 'ERR_ANSWER_CUT' as const
  override name = 'AnswerCutError'
  readonly reason: string
  readonly read: number

  constructor (reason: string, read: number) {
    super('ERR_ANSWER_CUT', `catch-up answer cut after ${read} frame(s): ${reason}`)
    this.reason = reason
    this.read = read
  }
}

/**
 * A peer answering a DAG transfer sent a block whose hash is not the CID the
 * asker expected next (PROTOCOL.md §17): no honest peer does, since a block
 * is only stored after its hash was checked. The peer is not asked again.
 */
export class TransferMismatchError extends NetError {
  override readonly code = 'ERR_TRANSFER_MISMATCH' as const
  override name = 'TransferMismatchError'
  readonly cid: string

  constructor (cid: string) {
    super('ERR_TRANSFER_MISMATCH', `a peer sent bytes that are not the block ${cid}`)
    this.cid = cid
  }
}

/** A DAG transfer answer broke the wire format: an unknown frame, a frame too large, a block nobody expected, an early end. */
export class TransferProtocolError extends NetError {
  override readonly code = 'ERR_TRANSFER_PROTOCOL' as const
  override name = 'TransferProtocolError'

  constructor (message: string) {
    super('ERR_TRANSFER_PROTOCOL', message)
  }
}

/** A DAG transfer answer carried less than its minimum in a window of `ms` (nothing, or a trickle): the provider is given up and its share fetched elsewhere. */
export class TransferStalledError extends NetError {
  override readonly code = 'ERR_TRANSFER_STALLED' as const
  override name = 'TransferStalledError'
  readonly ms: number
  readonly bytes: number

  constructor (ms: number, bytes = 0) {
    super('ERR_TRANSFER_STALLED', bytes === 0 ? `the answer stalled: nothing for ${ms} ms` : `the answer stalled: ${bytes} bytes in ${ms} ms`)
    this.ms = ms
    this.bytes = bytes
  }
}
