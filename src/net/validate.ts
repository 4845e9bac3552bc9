import { decodeMessage, gossipActionFor, isProtocolError, MAX_MESSAGE_BYTES } from '../../protocol/index.ts'
import type { SignedAttestation, SignedClaim, SignedJob } from '../../protocol/index.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, JOBS_TOPIC } from './topics.ts'
import type { MessageKind } from './topics.ts'

export type ConcurMessage =
  | { kind: 'job', value: SignedJob }
  | { kind: 'attestation', value: SignedAttestation }
  | { kind: 'claim', value: SignedClaim }

export type ValidationOutcome =
  | { action: 'accept', message: ConcurMessage }
  | { action: 'ignore', reason: string, code: string }
  | { action: 'reject', reason: string, code: string }

const KIND_OF_TOPIC: Record<string, MessageKind> = {
  [JOBS_TOPIC]: 'job',
  [ATTESTATIONS_TOPIC]: 'attestation',
  [CLAIMS_TOPIC]: 'claim'
}

export interface MessageValidatorInit {
  /** Clock, injected so tests can move time; protocol/ itself never reads it. */
  now?: () => number
  maxMessageBytes?: number
  /**
   * Whether this node already holds an equal object (e.g. the same attestation
   * re-wrapped with other JSON whitespace, so a different gossip message id).
   */
  isKnown?: (message: ConcurMessage) => boolean
}

/**
 * Decide what gossipsub does with one message. REJECT lowers the score of the
 * peer that forwarded it, so it is kept for what no honest peer would forward:
 * malformed, oversized, wrongly signed, far-future, or on the wrong topic.
 * Expired and duplicate messages, and versions newer than ours, can come from
 * honest peers (clock skew, slow links, re-publication, upgrades) and are only
 * IGNOREd.
 */
export function createMessageValidator (init: MessageValidatorInit = {}): (topic: string, data: Uint8Array) => ValidationOutcome {
  const now = init.now ?? Date.now
  const maxBytes = init.maxMessageBytes ?? MAX_MESSAGE_BYTES

  return (topic, data) => {
    const expected = KIND_OF_TOPIC[topic]
    if (expected == null) {
      return { action: 'ignore', reason: `not a concur topic: ${topic}`, code: 'ERR_UNKNOWN_TOPIC' }
    }
    if (data.byteLength > maxBytes) {
      return { action: 'reject', reason: `message of ${data.byteLength} bytes exceeds the cap of ${maxBytes}`, code: 'ERR_TOO_LARGE' }
    }
    let message: ConcurMessage
    try {
      message = decodeMessage(data, { now: now() })
    } catch (err) {
      if (isProtocolError(err)) {
        // one rule for every implementation: PROTOCOL.md §6 (expired in flight,
        // a newer version or payloadType → IGNORE; everything else → REJECT)
        return { action: gossipActionFor(err), reason: err.message, code: err.code }
      }
      // a decoder must only throw its own errors; anything else is a bug, but a
      // peer must not be able to crash us with it
      return { action: 'reject', reason: `decoder failure: ${String(err)}`, code: 'ERR_INTERNAL' }
    }
    if (message.kind !== expected) {
      return { action: 'reject', reason: `a ${message.kind} on the ${expected} topic`, code: 'ERR_WRONG_TOPIC' }
    }
    if (init.isKnown?.(message) === true) {
      return { action: 'ignore', reason: 'duplicate', code: 'ERR_DUPLICATE' }
    }
    return { action: 'accept', message }
  }
}
