import { peekAttestation, peekClaim, peekCommitment, topicKind, validateTopicMessage } from '../../protocol/index.ts'
import type { DecodedMessage } from '../../protocol/index.ts'

/** what a message says about itself before it is verified (protocol's peek functions): only ever a reason to skip it */
export type MessagePeek =
  | { kind: 'attestation', buildId: string, worker: string, id: string }
  | { kind: 'claim', jobId: string, worker: string }
  | { kind: 'commitment', jobId: string, worker: string }

/** A decoded, verified concur message: protocol's DecodedMessage. */
export type ConcurMessage = DecodedMessage

export type ValidationOutcome =
  | { action: 'accept', message: ConcurMessage }
  | { action: 'ignore', reason: string, code: string, /** valid but of no use here: charged to the sender's budget (peer-budget.ts) */ useless?: true }
  | { action: 'reject', reason: string, code: string }

export interface MessageValidatorInit {
  /** Clock, injected so tests can move time; protocol/ itself never reads it. */
  now?: () => number
  /**
   * Whether this node already holds an equal object (e.g. the same attestation
   * re-wrapped with other JSON whitespace, so a different gossip message id).
   */
  isKnown?: (message: ConcurMessage) => boolean
  /**
   * Why this node will not keep a valid message (a claim on a job it does not
   * hold, an attestation of a build no held job names, a store at its cap), or
   * undefined. Such a message is IGNOREd: a node relays only what it keeps, so
   * junk that costs nothing to sign does not travel past the first hop.
   */
  refuse?: (message: ConcurMessage) => { code: string, reason: string, /** false: not the sender's fault (a cap reached here), so not charged to it */ charged?: boolean } | undefined
  /**
   * The same refusals where the peeked fields suffice (an attestation of a
   * build, a claim on a job, this node does not hold), asked BEFORE the
   * signature is checked: such junk costs a parse, not a key decode and a
   * verification (~2–5 ms for a fresh key). IGNOREd and charged like `refuse`.
   */
  refuseUnread?: (peek: MessagePeek) => { code: string, reason: string } | undefined
  /**
   * Every message that decoded and verified, before it is judged a
   * duplicate or refused: what a node has SEEN, whether or not it keeps or
   * relays it. Commit-then-reveal needs exactly that (PROTOCOL.md §8.3): an
   * attestation this node drops at a cap still made its CID public, and a
   * copier must not be able to hide the reveal it copied from by filling
   * the caps first.
   */
  verified?: (message: ConcurMessage) => void
}

function peek (kind: string, data: Uint8Array): MessagePeek | undefined {
  try {
    if (kind === 'attestation') return { kind, ...peekAttestation(data) }
    if (kind === 'claim') return { kind, ...peekClaim(data) }
    if (kind === 'commitment') return { kind, ...peekCommitment(data) }
  } catch {
    // malformed: the full decode below says how, and REJECTs it
  }
  return undefined
}

/**
 * Decide what gossipsub does with one message. The rule is protocol's
 * (validateTopicMessage, PROTOCOL.md §6): REJECT lowers the score of the peer
 * that forwarded it, so it is kept for what no honest peer would forward:
 * malformed, oversized, wrongly signed, far-future, or on the wrong topic.
 * Expired messages and versions newer than ours can come from honest peers
 * (clock skew, slow links, upgrades) and are only IGNOREd. This layer adds
 * what only a node knows: which topics it serves, and what it already holds
 * (a duplicate is IGNOREd: honest peers re-publish).
 */
export function createMessageValidator (init: MessageValidatorInit = {}): (topic: string, data: Uint8Array) => ValidationOutcome {
  const now = init.now ?? Date.now

  return (topic, data) => {
    // gossipsub runs validators only on the topics we registered; anything else is not ours to judge
    if (topicKind(topic) == null) {
      return { action: 'ignore', reason: `not a concur topic: ${topic}`, code: 'ERR_UNKNOWN_TOPIC' }
    }
    const kind = topicKind(topic)
    const peeked = init.refuseUnread != null && kind != null ? peek(kind, data) : undefined
    const unread = peeked != null ? init.refuseUnread?.(peeked) : undefined
    if (unread != null) return { action: 'ignore', reason: unread.reason, code: unread.code, useless: true }
    const out = validateTopicMessage(topic, data, { now: now() })
    if (out.action !== 'accept') {
      // the wrong topic gets its own code here so that logs and stats tell it from an unknown payloadType
      return { action: out.action, reason: out.error.message, code: out.wrongTopic != null ? 'ERR_WRONG_TOPIC' : out.error.code }
    }
    init.verified?.(out.message)
    if (init.isKnown?.(out.message) === true) {
      return { action: 'ignore', reason: 'duplicate', code: 'ERR_DUPLICATE', useless: true }
    }
    const refused = init.refuse?.(out.message)
    if (refused != null) {
      return refused.charged === false
        ? { action: 'ignore', reason: refused.reason, code: refused.code }
        : { action: 'ignore', reason: refused.reason, code: refused.code, useless: true }
    }
    return { action: 'accept', message: out.message }
  }
}
