import { logger } from '@libp2p/logger'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { ALL_SHARDS, SHARDED_KINDS, isShard, isShardedKind, messageIdOf, peekJobRoute, shardOf, topicKind, topicOfJob } from '../../protocol/index.ts'
import type { JobRoute } from '../../protocol/index.ts'
import { InvalidPublishError } from './errors.ts'
import { ALL_CONCUR_TOPICS, CONCUR_TOPICS, TOPIC_OF_KIND, shardTopic } from './topics.ts'
import type { MessageKind } from './topics.ts'
import { createMessageValidator } from './validate.ts'
import type { ConcurMessage, MessageValidatorInit } from './validate.ts'
import { PeerBudget } from './peer-budget.ts'
import { RejectTally, isGraylisted } from './score.ts'
import type { PeerBudgetInit } from './peer-budget.ts'

const log = logger('concur:gossip')

/** gossipsub's msgIdFn: the protocol's message id (sha256 of the data, so identical bytes are one message). */
export const messageId: (data: Uint8Array) => Uint8Array = messageIdOf

export interface GossipStats {
  accepted: number
  ignored: number
  rejected: number
  verified: number
  /** messages IGNOREd unread because their sender had spent its budget of useless ones (peer-budget.ts) */
  rateLimited: number
  /** messages IGNOREd unread because their sender is graylisted (score.ts isGraylisted) */
  graylisted: number
  lastRejections: Array<{ at: number, topic: string, code: string, reason: string, from: string }>
  /** the latest IGNOREd messages (at most 50): duplicates, stale claims, expired ones */
  lastIgnored: Array<{ at: number, topic: string, code: string, from: string }>
}

export interface ConcurGossip {
  /**
   * Publish a message on its topic: a job on the topic it says it travels on
   * (a sharded job on its shard, PROTOCOL.md §6.1); a claim or attestation
   * on the topic of `job`, its job (unsharded when no job is given).
   */
  publish (kind: MessageKind, bytes: Uint8Array, job?: JobRoute): Promise<{ recipients: number }>
  /** Publish arbitrary bytes on a concur topic (used by tests and the adversary harness). */
  publishRaw (topic: string, bytes: Uint8Array): Promise<{ recipients: number }>
  /**
   * Validate bytes that came by another path than gossip (catch-up sync) and
   * deliver them to the application as if gossiped; nothing is published.
   */
  ingest (kind: MessageKind, bytes: Uint8Array): 'accept' | 'ignore' | 'reject'
  onMessage (listener: (message: ConcurMessage, from: PeerId | null) => void): () => void
  subscribers (kind: MessageKind, job?: JobRoute): PeerId[]
  /** the shards this node subscribes to, ascending */
  shards (): number[]
  /**
   * Subscribe to more shards (a requester, to the shards of its sharded
   * jobs). Shards are never left while the node runs: a job's attestations
   * keep coming until it is accepted, and leaving and rejoining costs a
   * mesh each time.
   */
  joinShards (shards: Iterable<number>): void
  stats (): GossipStats
  stop (): void
}

export interface ConcurGossipComponents {
  pubsub: GossipSub
}

/**
 * Binds the concur validators to gossipsub and hands decoded, verified messages
 * to the application. Each unique message is decoded and verified exactly once:
 * gossipsub's seen-cache drops repeats of a message id before the validator,
 * and the validator keeps the decoded value for the delivery that follows.
 */
/** one gossip message's outcome, for metrics: `seconds` is the time its validation took (absent: not decoded) */
export interface GossipOutcome { topic: string, action: 'accept' | 'ignore' | 'reject', code: string, seconds?: number }

export interface ConcurGossipInit extends MessageValidatorInit {
  /**
   * The shards whose topics this node subscribes to (PROTOCOL.md §6.1), as
   * well as the unsharded ones; default every shard, so a node that is not
   * told otherwise hears everything, as before shards. A worker serving a
   * few shards hears only their jobs.
   */
  shards?: readonly number[]
  /** the per-peer budget of valid but useless messages */
  budget?: PeerBudgetInit
  /** told of every validated message's outcome (the daemon's metrics); must not throw */
  observe?: (outcome: GossipOutcome) => void
}

export function concurGossip (init: ConcurGossipInit = {}) {
  return (components: ConcurGossipComponents): ConcurGossip => {
    const { pubsub } = components
    const validate = createMessageValidator(init)
    const observe = init.observe
    const budget = new PeerBudget(init.budget)
    const rejects = new RejectTally()
    const listeners = new Set<(message: ConcurMessage, from: PeerId | null) => void>()
    const decoded = new Map<string, ConcurMessage>()
    const stats: GossipStats = { accepted: 0, ignored: 0, rejected: 0, verified: 0, rateLimited: 0, graylisted: 0, lastRejections: [], lastIgnored: [] }

    const deliver = (message: ConcurMessage, from: PeerId | null): void => {
      for (const l of listeners) {
        try {
          l(message, from)
        } catch (err) {
          log.error('listener failed: %e', err)
        }
      }
    }

    const served = new Set<number>()
    const join = (shards: Iterable<number>): void => {
      for (const shard of shards) {
        if (!isShard(shard) || served.has(shard)) continue
        served.add(shard)
        for (const kind of SHARDED_KINDS) pubsub.subscribe(shardTopic(kind, shard))
      }
    }
    /** what places a message of `kind`: a job's own route (read from it; unreadable: the unsharded topic's decode says why), or its job's */
    const routeFor = (kind: MessageKind, bytes: Uint8Array, job?: JobRoute): JobRoute | undefined => {
      if (kind !== 'job') return job
      try { return peekJobRoute(bytes) } catch { return undefined }
    }
    /** the topic a message of `kind` on `route` is validated against; not sharded (PROTOCOL.md §6.1): proofs and adverts, about keys */
    const topicFor = (kind: MessageKind, route: JobRoute | undefined): string =>
      route == null || !isShardedKind(kind) ? TOPIC_OF_KIND[kind] : topicOfJob(kind, route)

    // validators on every shard's topics, served or not: a peer that sends a
    // message on a topic this node did not subscribe to still has it checked
    for (const topic of ALL_CONCUR_TOPICS) {
      pubsub.topicValidators.set(topic, (peer, msg) => {
        const from = peer.toString()
        // checked before decoding: the point is not to spend a signature check on it
        if (isGraylisted(pubsub, from, rejects)) {
          stats.graylisted++
          stats.ignored++
          observe?.({ topic, action: 'ignore', code: 'ERR_GRAYLISTED' })
          return TopicValidatorResult.Ignore
        }
        if (!budget.allows(from)) {
          stats.rateLimited++
          stats.ignored++
          observe?.({ topic, action: 'ignore', code: 'ERR_RATE_LIMITED' })
          return TopicValidatorResult.Ignore
        }
        const started = observe != null ? performance.now() : 0
        const outcome = validate(topic, msg.data)
        stats.verified++
        observe?.({ topic, action: outcome.action, code: outcome.action === 'accept' ? 'OK' : outcome.code, seconds: (performance.now() - started) / 1000 })
        if (outcome.action === 'accept') {
          stats.accepted++
          decoded.set(Buffer.from(messageId(msg.data)).toString('hex'), outcome.message)
          // bound the hand-over map: a validated message is delivered right after
          if (decoded.size > 4096) {
            const first = decoded.keys().next().value
            if (first != null) decoded.delete(first)
          }
          return TopicValidatorResult.Accept
        }
        if (outcome.action === 'ignore') {
          if (outcome.useless === true) budget.charge(from)
          stats.ignored++
          stats.lastIgnored.push({ at: Date.now(), topic, code: outcome.code, from: peer.toString() })
          if (stats.lastIgnored.length > 50) stats.lastIgnored.shift()
          log('ignored message on %s from %p: %s (%s)', topic, peer, outcome.reason, outcome.code)
          return TopicValidatorResult.Ignore
        }
        stats.rejected++
        rejects.reject(from, topic)
        stats.lastRejections.push({ at: Date.now(), topic, code: outcome.code, reason: outcome.reason, from: peer.toString() })
        if (stats.lastRejections.length > 50) stats.lastRejections.shift()
        log('REJECTED message on %s from %p: %s (%s)', topic, peer, outcome.reason, outcome.code)
        return TopicValidatorResult.Reject
      })
    }
    for (const topic of CONCUR_TOPICS) pubsub.subscribe(topic)
    join(init.shards ?? ALL_SHARDS)

    const onGossip = (evt: CustomEvent<{ propagationSource: PeerId, msgId: string, msg: { topic: string, data: Uint8Array } }>): void => {
      const { msg, propagationSource } = evt.detail
      if (topicKind(msg.topic) == null) return
      const key = Buffer.from(messageId(msg.data)).toString('hex')
      const message = decoded.get(key)
      if (message == null) return
      decoded.delete(key)
      deliver(message, propagationSource)
    }
    pubsub.addEventListener('gossipsub:message', onGossip as EventListener)

    const publishRaw = async (topic: string, bytes: Uint8Array): Promise<{ recipients: number }> => {
      const result = await pubsub.publish(topic, bytes)
      return { recipients: result.recipients.length }
    }

    return {
      async publish (kind, bytes, job) {
        // our own messages go through the same validator: never send what peers
        // would reject (it would cost us score), and deliver locally as well
        const topic = topicFor(kind, routeFor(kind, bytes, job))
        const outcome = validate(topic, bytes)
        if (outcome.action === 'reject') {
          throw new InvalidPublishError(kind, outcome.reason, outcome.code)
        }
        if (outcome.action === 'accept') deliver(outcome.message, null)
        return await publishRaw(topic, bytes)
      },
      publishRaw,
      ingest (kind, bytes) {
        const route = routeFor(kind, bytes)
        const topic = topicFor(kind, route)
        // a sharded job of a shard this node does not serve: not taken in by
        // catch-up either (an answer from a node that ignores the asker's
        // shards, a v1 one included), or the node would hold, build and
        // answer for jobs of every shard
        if (kind === 'job' && route != null && topic !== TOPIC_OF_KIND.job && !served.has(shardOf(route.buildId))) return 'ignore'
        const outcome = validate(topic, bytes)
        if (outcome.action === 'accept') deliver(outcome.message, null)
        else if (outcome.action === 'reject') log('REJECTED synced %s: %s (%s)', kind, outcome.reason, outcome.code)
        return outcome.action
      },
      onMessage (listener) {
        listeners.add(listener)
        return () => { listeners.delete(listener) }
      },
      subscribers (kind, job) {
        return pubsub.getSubscribers(topicFor(kind, job))
      },
      shards () {
        return [...served].sort((a, b) => a - b)
      },
      joinShards: join,
      stats () {
        return { ...stats, lastRejections: [...stats.lastRejections], lastIgnored: [...stats.lastIgnored] }
      },
      stop () {
        pubsub.removeEventListener('gossipsub:message', onGossip as EventListener)
        for (const topic of ALL_CONCUR_TOPICS) {
          pubsub.topicValidators.delete(topic)
          pubsub.unsubscribe(topic)
        }
        listeners.clear()
      }
    }
  }
}
