/** Decoding any concur message by its DSSE payloadType, and the gossip rules around it. */
import { sha256 } from '@noble/hashes/sha2.js'
import { isProtocolError, MalformedError, PayloadTypeError } from './errors.ts'
import type { ProtocolError, ProtocolErrorCode } from './errors.ts'
import { ATTESTATION_PAYLOAD_TYPE, decodeAttestation } from './attestation.ts'
import type { SignedAttestation } from './attestation.ts'
import { ADVERT_PAYLOAD_TYPE, decodeAdvert } from './advert.ts'
import type { SignedAdvert } from './advert.ts'
import { CLAIM_PAYLOAD_TYPE, RELEASE_PAYLOAD_TYPE, decodeClaim } from './claim.ts'
import type { SignedClaim } from './claim.ts'
import { guard } from './decode.ts'
import { parseEnvelope } from './dsse.ts'
import { decodeEquivocationProof } from './equivocation.ts'
import type { EquivocationProof } from './equivocation.ts'
import { decodeCommitment } from './commitment.ts'
import type { SignedCommitment } from './commitment.ts'
import { JOB_PAYLOAD_TYPE, SHARDED_JOB_PAYLOAD_TYPE, decodeJobAnnouncement } from './job.ts'
import type { JobAnnouncement, SignedJob } from './job.ts'
import { ALL_SHARDS, SHARD_COUNT, shardOf } from './shard.ts'

export const JOBS_TOPIC = '/concur/1/jobs/json'
export const ATTESTATIONS_TOPIC = '/concur/1/attestations/json'
export const CLAIMS_TOPIC = '/concur/1/claims/json'
/**
 * Equivocation proofs (PROTOCOL.md §8.2), protocol v1.1. A topic of their
 * own, not a new payloadType on the attestations topic: a v1 node does not
 * subscribe to it, so gossipsub never sends it one (and its allowedTopics
 * would drop it unread), where an unknown payloadType on a topic it reads
 * would cost it a decode per message and stop the proof at its hop.
 */
export const EQUIVOCATIONS_TOPIC = '/concur/1/equivocations/json'
/**
 * Worker capability adverts (PROTOCOL.md §5.4), protocol v1.1: a topic of
 * their own for the reason proofs have one (a v1 node is sent none), and
 * unsharded: a requester needs to hear the workers of every shard to choose.
 */
export const ADVERTS_TOPIC = '/concur/1/adverts/json'
/**
 * Commitments (PROTOCOL.md §8.3), protocol v1.1: a topic of their own for
 * the same reason as equivocation proofs (a v1 node never receives one).
 */
export const COMMITMENTS_TOPIC = '/concur/1/commitments/json'

/** A message that is one DSSE envelope (decodeMessage reads these) */
export type EnvelopeMessage =
  | { kind: 'job', value: SignedJob }
  | { kind: 'attestation', value: SignedAttestation }
  | { kind: 'claim', value: SignedClaim }
  | { kind: 'advert', value: SignedAdvert }

export type DecodedMessage =
  | EnvelopeMessage
  | { kind: 'equivocation', value: EquivocationProof }
  | { kind: 'commitment', value: SignedCommitment }

export type MessageKind = DecodedMessage['kind']

/**
 * The payloadType each topic carries: the one list of concur's gossip topics
 * (PROTOCOL.md §6). Topic names are /concur/<protocol major>/<kind>/<encoding>,
 * so a future version or encoding gets its own topic instead of confusing old peers.
 */
export const TOPIC_KINDS = Object.freeze({
  [JOBS_TOPIC]: 'job',
  [ATTESTATIONS_TOPIC]: 'attestation',
  [CLAIMS_TOPIC]: 'claim',
  [EQUIVOCATIONS_TOPIC]: 'equivocation',
  [ADVERTS_TOPIC]: 'advert',
  [COMMITMENTS_TOPIC]: 'commitment'
} as const satisfies Record<string, MessageKind>)

export type ConcurTopic = keyof typeof TOPIC_KINDS

/**
 * The kinds of message that travel on shards (PROTOCOL.md §6.1): a job's
 * own, commitments included (one per build: on one topic for the whole
 * network they would be the one message every node still sees); not
 * equivocation proofs (rare, and about a key) nor adverts.
 */
export type ShardedKind = 'job' | 'claim' | 'attestation' | 'commitment'
export const SHARDED_KINDS: readonly ShardedKind[] = Object.freeze(['job', 'claim', 'attestation', 'commitment'] as const)
/** whether messages of `kind` travel on their job's shard topic (§6.1); proofs and adverts are about keys, not jobs */
export function isShardedKind (kind: string): kind is ShardedKind {
  return (SHARDED_KINDS as readonly string[]).includes(kind)
}
const UNSHARDED_TOPIC_OF: Readonly<Record<ShardedKind, string>> = Object.freeze({ job: JOBS_TOPIC, claim: CLAIMS_TOPIC, attestation: ATTESTATIONS_TOPIC, commitment: COMMITMENTS_TOPIC })

/**
 * The topic of one kind on one shard (PROTOCOL.md §6.1): the kind's
 * unsharded topic and the shard in lower-case hex, e.g. `/concur/1/jobs/json/7`.
 * One spelling per shard, so two nodes never mesh on two names of one shard.
 */
export function shardTopic (kind: ShardedKind, shard: number): string {
  if (!Number.isInteger(shard) || shard < 0 || shard >= SHARD_COUNT) throw new RangeError(`no shard ${shard}`)
  return `${UNSHARDED_TOPIC_OF[kind]}/${shard.toString(16)}`
}

/** Every shard topic (SHARDED_KINDS × ALL_SHARDS): what a node allows and scores. */
export const SHARD_TOPICS: readonly string[] = Object.freeze(SHARDED_KINDS.flatMap(kind => ALL_SHARDS.map(s => shardTopic(kind, s))))

/** The kind and shard of a shard topic; undefined for any other string. */
export function parseShardTopic (topic: string): { kind: ShardedKind, shard: number } | undefined {
  for (const kind of SHARDED_KINDS) {
    const base = UNSHARDED_TOPIC_OF[kind] + '/'
    if (!topic.startsWith(base)) continue
    const rest = topic.slice(base.length)
    if (!/^[0-9a-f]$/.test(rest)) return undefined
    const shard = Number.parseInt(rest, 16)
    return shard < SHARD_COUNT ? { kind, shard } : undefined
  }
  return undefined
}

/** The kind of message `topic` carries, shard topics included; undefined for a topic that is not concur's (`toString` included). */
export function topicKind (topic: string): MessageKind | undefined {
  return Object.hasOwn(TOPIC_KINDS, topic) ? TOPIC_KINDS[topic as ConcurTopic] : parseShardTopic(topic)?.kind
}

/**
 * The topic a job's message of `kind` travels on (PROTOCOL.md §6.1): its
 * shard's, for a sharded job (version 2); the unsharded topic, where v1
 * nodes read it, for any other. Read from the job itself, so a node that
 * got the job by catch-up publishes where its requester listens.
 */
export function topicOfJob (kind: ShardedKind, job: Pick<JobAnnouncement, 'buildId' | 'shards'>): string {
  return job.shards === undefined ? UNSHARDED_TOPIC_OF[kind] : shardTopic(kind, shardOf(job.buildId))
}

export interface DecodeMessageOptions { now: number; maxFutureSkewMs?: number }

export function decodeMessage (bytes: Uint8Array, opts: DecodeMessageOptions): EnvelopeMessage {
  return guard((): EnvelopeMessage => {
    const env = parseEnvelope(bytes)
    switch (env.payloadType) {
      case JOB_PAYLOAD_TYPE:
      case SHARDED_JOB_PAYLOAD_TYPE: return { kind: 'job', value: decodeJobAnnouncement(env, opts) }
      case ATTESTATION_PAYLOAD_TYPE: return { kind: 'attestation', value: decodeAttestation(env, opts) }
      case CLAIM_PAYLOAD_TYPE:
      case RELEASE_PAYLOAD_TYPE: return { kind: 'claim', value: decodeClaim(env, opts) }
      case ADVERT_PAYLOAD_TYPE: return { kind: 'advert', value: decodeAdvert(env, opts) }
      default: throw new PayloadTypeError(`unknown payloadType ${JSON.stringify(env.payloadType.slice(0, 100))}`)
    }
  })
}

/** gossipsub message id: sha256 of the message data (not of sender + seqno), so re-publications dedupe. */
export function messageIdOf (data: Uint8Array): Uint8Array {
  return sha256(data)
}

export type GossipAction = 'reject' | 'ignore'

/**
 * What a topic validator answers for a decode error. REJECT penalises the
 * forwarding peer (it relayed something no honest peer would); IGNORE drops
 * silently where an honest peer could have relayed it: expired in flight,
 * or a newer protocol version / payloadType than ours.
 */
export function gossipActionFor (err: ProtocolError | ProtocolErrorCode): GossipAction {
  const code = typeof err === 'string' ? err : err.code
  switch (code) {
    case 'ERR_EXPIRED':
    case 'ERR_UNSUPPORTED_VERSION':
    case 'ERR_PAYLOAD_TYPE':
      return 'ignore'
    default:
      return 'reject'
  }
}

export type TopicValidation =
  | { action: 'accept', message: DecodedMessage }
  | {
    action: GossipAction
    error: ProtocolError
    /** Set when the message decoded as this kind but came on another topic (REJECT, `error` is a PayloadTypeError). */
    wrongTopic?: MessageKind
  }

/**
 * A topic validator in one call. A known payloadType published on the wrong
 * topic is REJECTed (no honest peer does that); an unknown one is IGNOREd.
 * De-duplication (IGNORE) is the caller's: gossipsub's seen-cache by message id,
 * plus the application's own store keyed by job id / attestation id.
 */
export function validateTopicMessage (topic: string, data: Uint8Array, opts: DecodeMessageOptions): TopicValidation {
  let message: DecodedMessage
  try {
    // a proof is not a DSSE envelope (it carries two): its topic says how to
    // read it; a commitment is read only on its own topic (v1.1), so an
    // attestations-topic reader treats one as any unknown payloadType
    const kind = topicKind(topic)
    message = kind === 'equivocation'
      ? { kind: 'equivocation', value: decodeEquivocationProof(data, opts) }
      : kind === 'commitment'
        ? { kind: 'commitment', value: decodeCommitment(data, opts) }
        : decodeMessage(data, opts)
  } catch (err) {
    // decodeMessage throws only ProtocolError (guard); should that ever break, the input is still refused, never a crash
    const error = isProtocolError(err) ? err : new MalformedError('input could not be decoded', { cause: err })
    return { action: gossipActionFor(error), error }
  }
  if (topicKind(topic) !== message.kind) {
    return { action: 'reject', error: new PayloadTypeError(`a ${message.kind} message does not belong on topic ${topic}`), wrongTopic: message.kind }
  }
  const misplaced = shardMismatch(topic, message)
  if (misplaced !== undefined) return { action: 'reject', error: new PayloadTypeError(misplaced), wrongTopic: message.kind }
  return { action: 'accept', message }
}

/**
 * Why a message is on the wrong shard, or undefined (PROTOCOL.md §6.1): on a
 * shard topic, a message of a build of another shard, or a job that is not
 * sharded; on the unsharded jobs topic, a sharded job. No honest peer
 * publishes either (the topic is a function of the message), so both are
 * REJECTed like any message on the wrong topic: a peer that sprays a shard's
 * messages onto others' would otherwise make their subscribers verify them.
 * A claim or an attestation on an unsharded topic is not checked: whether
 * its job is sharded is known only to a node that holds the job, and such a
 * node refuses it anyway as being of a job it does not hold there.
 */
function shardMismatch (topic: string, message: DecodedMessage): string | undefined {
  const shard = parseShardTopic(topic)
  if (message.kind === 'job') {
    const sharded = message.value.job.shards !== undefined
    if (shard === undefined) return sharded ? `a sharded job does not belong on topic ${topic}` : undefined
    if (!sharded) return `a job that is not sharded does not belong on topic ${topic}`
  }
  if (shard === undefined || message.kind === 'equivocation' || message.kind === 'advert') return undefined
  const buildId = message.kind === 'job' ? message.value.job.buildId : message.kind === 'commitment' ? message.value.commitment.buildId : message.value.claim.buildId
  const its = shardOf(buildId)
  return its === shard.shard ? undefined : `a ${message.kind} of shard ${its.toString(16)} does not belong on topic ${topic}`
}
