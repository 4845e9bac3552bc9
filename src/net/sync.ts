import { setImmediate as nextTurn } from 'node:timers/promises'
import { logger } from '@libp2p/logger'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peekAttestation } from '../../protocol/index.ts'
import type { AttestationPeek } from '../../protocol/index.ts'
import { AnswerCutError } from './errors.ts'
import { answerRequests, connectedPeers, exchangeWith } from './frames.ts'
import type { FrameStream } from './frames.ts'
import { PeerBudget } from './peer-budget.ts'

const log = logger('concur:sync')

/**
 * Attestation catch-up: gossip is fire-and-forget, so a requester that was
 * down (crash, restart, laptop lid) misses attestations published meanwhile.
 * On start, on new connections and while a job is open, it asks its peers for
 * the attestations they hold for the buildIds it waits on. Answers are plain
 * envelopes that go through the same validation as gossip: a peer can only
 * send what it could have gossiped.
 *
 * An answer is pushed at the asker, by a peer it did not choose for its
 * honesty, so the asker spends on it only what it set aside (PROTOCOL.md
 * §13): each frame is first peeked (protocol's peekAttestation: a parse, no
 * key, no signature), and verified only if it is of a build asked for, not
 * held yet, and signed by a key the asker trusts or within a small allowance
 * for strangers; verification runs in small batches that yield to the event
 * loop. Without this, one peer answering every pull with 1,024 fresh-key
 * attestations held a requester's event loop for seconds at a time (2-5 ms
 * per never-seen key): its API stopped answering for 2-4 s per answer (test:
 * catch-up-answers-stuffed-with-3000-fresh-key-attestations-…).
 */
export const SYNC_PROTOCOL = '/concur/sync/attestations/1.0.0'

const MAX_BUILD_IDS = 64
const MAX_ANSWERS = 1024
const MAX_FRAME = 64 * 1024
const MAX_REQUEST = 8 * 1024

/** What the asker spends on one answer, and on one peer's answers over time. */
export interface CatchUpBudget {
  /** frames read from one answer; past it the answer is cut (the stream reset), unread */
  framesPerAnswer: number
  /**
   * attestations from keys the asker does not trust verified per buildId per
   * answer: enough to see that strangers dissent, not a way in for a flood
   */
  untrustedPerBuild: number
  /**
   * attestations from keys the asker does not trust NOT verified (past the
   * allowance) per buildId per answer; past it the answer is cut. An honest
   * answerer holds few of them (a node keeps at most `maxUntrustedPerBuild`,
   * 32 by default, src/store/limits.ts); a flood is cut after this many, since
   * each frame read costs a peek and the transport's work to receive it
   */
  skippedPerBuild: number
  /** untrusted verifications one peer's answers may cause at once… */
  untrustedPerPeerBurst: number
  /** …and refilled per minute: sybil keys are free, verifying each is not */
  untrustedPerPeerPerMinute: number
  /** the same over every peer's answers together, at once and per minute: peer ids are free too */
  untrustedBurst: number
  untrustedPerMinute: number
  /** verifications run back to back before the event loop gets a turn */
  verifyBatch: number
  /** frames (or bytes, below) read back to back before the event loop gets a turn */
  readBatch: number
  readBatchBytes: number
}

export const DEFAULT_CATCH_UP_BUDGET: Readonly<CatchUpBudget> = Object.freeze({
  // the answerer's own cap (MAX_ANSWERS): an honest answer is never cut by it
  framesPerAnswer: MAX_ANSWERS,
  untrustedPerBuild: 4,
  skippedPerBuild: 64,
  untrustedPerPeerBurst: 16,
  untrustedPerPeerPerMinute: 16,
  untrustedBurst: 64,
  untrustedPerMinute: 64,
  // a fresh key costs ~2-5 ms to verify: a batch holds the loop for ~10-20 ms at most
  verifyBatch: 4,
  // a peek costs ~0.07 ms for a 3 KB attestation, ~1 ms for a 64 KB one
  readBatch: 64,
  readBatchBytes: 256 * 1024
})

/** what the application said of a verified envelope ('reject': no honest peer sends it) */
export type IngestOutcome = 'accept' | 'ignore' | 'reject'

export interface AttestationSyncInit {
  /** attestation envelopes (wire bytes) this node holds for a buildId */
  lookup: (buildId: string) => Uint8Array[]
  /** hand an answer to the application: it verifies, validates and stores it */
  ingest: (bytes: Uint8Array) => IngestOutcome
  /**
   * The did:keys whose attestations the asker always verifies (its trust
   * policy, its own key); read once per answer. Compared as text with the
   * peeked signer: a trusted key has one canonical did:key, and any other
   * spelling fails decoding anyway. None: every signer is a stranger.
   */
  trustedSigners?: () => ReadonlySet<string>
  /** whether the asker already holds attestation `id` of `buildId`: held ones are not verified again */
  holds?: (buildId: string, id: string) => boolean
  budget?: Partial<CatchUpBudget>
  timeoutMs?: number
  now?: () => number
}

/** Counters of what answers cost (for logs and tests). */
export interface CatchUpStats {
  answers: number
  /** frames read */
  read: number
  /** frames handed to `ingest` (each a full decode and signature check) */
  verified: number
  /** …of which by keys not trusted */
  untrustedVerified: number
  /** frames not verified: already held */
  held: number
  /** frames not verified: an untrusted key past the allowance */
  skipped: number
  /** answers cut before their end */
  cut: number
}

export interface AttestationSync {
  start (): Promise<void>
  stop (): Promise<void>
  /** ask up to `maxPeers` connected peers (not one whose answer is still being read); returns how many envelopes were accepted */
  pull (buildIds: string[], options?: { maxPeers?: number }): Promise<number>
  stats (): CatchUpStats
}

export function attestationSync (init: AttestationSyncInit) {
  return (components: { libp2p: Libp2p }): AttestationSync => {
    const { libp2p } = components
    const timeoutMs = init.timeoutMs ?? 5000
    const budget: CatchUpBudget = { ...DEFAULT_CATCH_UP_BUDGET, ...init.budget }
    const clock = init.now != null ? { now: init.now } : {}
    const untrusted = new PeerBudget({ burst: budget.untrustedPerPeerBurst, perSecond: budget.untrustedPerPeerPerMinute / 60, ...clock })
    /** one bucket ('*') for all peers together */
    const untrustedAll = new PeerBudget({ burst: budget.untrustedBurst, perSecond: budget.untrustedPerMinute / 60, maxPeers: 1, ...clock })
    const stats: CatchUpStats = { answers: 0, read: 0, verified: 0, untrustedVerified: 0, held: 0, skipped: 0, cut: 0 }
    /** peers whose answer is being read: not asked again meanwhile, so slow answers cannot pile up */
    const asking = new Set<string>()

    const handler = answerRequests({ maxFrame: MAX_FRAME, maxRequest: MAX_REQUEST, timeoutMs, log }, async (request, lp, signal) => {
      const { buildIds } = (request ?? {}) as { buildIds?: unknown }
      const ids = Array.isArray(buildIds) ? buildIds.filter((x): x is string => typeof x === 'string').slice(0, MAX_BUILD_IDS) : []
      let sent = 0
      for (const id of ids) {
        for (const bytes of init.lookup(id)) {
          if (sent++ >= MAX_ANSWERS || bytes.byteLength > MAX_FRAME) break
          await lp.write(bytes, { signal })
        }
      }
      // an empty frame ends the answer
      await lp.write(new Uint8Array(0), { signal })
    })

    /**
     * Reads one answer under the budget, counting what was accepted into
     * `counts`. Throws AnswerCutError where it stops before the end: the
     * exchange then resets the stream, so the answerer stops writing.
     */
    const readAnswer = async (lp: FrameStream, signal: AbortSignal, peer: string, asked: ReadonlySet<string>, counts: { accepted: number }): Promise<void> => {
      const trusted = init.trustedSigners?.() ?? new Set<string>()
      const strangersPerBuild = new Map<string, number>()
      const skippedPerBuild = new Map<string, number>()
      let read = 0
      let sinceYield = 0
      let bytesSinceYield = 0
      let verifiedSinceYield = 0
      const cut = (reason: string): never => {
        stats.cut++
        throw new AnswerCutError(reason, read)
      }
      while (true) {
        const frame = await lp.read({ signal })
        if (frame.byteLength === 0) return
        if (read >= budget.framesPerAnswer) cut(`past the budget of ${budget.framesPerAnswer} frames`)
        read++
        stats.read++
        // reading buffered frames resolves without ever leaving the microtask
        // queue: give the event loop its turn now and then
        bytesSinceYield += frame.byteLength
        if (++sinceYield >= budget.readBatch || bytesSinceYield >= budget.readBatchBytes) {
          sinceYield = 0
          bytesSinceYield = 0
          await nextTurn()
        }
        const bytes = frame.subarray()
        let peek: AttestationPeek
        try {
          peek = peekAttestation(bytes)
        } catch (err) {
          // honest peers send only envelopes they verified themselves
          return cut(`not an attestation (${(err as { code?: string }).code ?? 'ERR_MALFORMED'})`)
        }
        // an honest peer answers what was asked; anything else is pushed at us
        if (!asked.has(peek.buildId)) cut(`an attestation of build ${peek.buildId}, not asked for`)
        if (init.holds?.(peek.buildId, peek.id) === true) {
          stats.held++
          continue
        }
        const isTrusted = trusted.has(peek.worker)
        if (!isTrusted) {
          const n = strangersPerBuild.get(peek.buildId) ?? 0
          if (n >= budget.untrustedPerBuild || !untrusted.allows(peer) || !untrustedAll.allows('*')) {
            stats.skipped++
            const skipped = (skippedPerBuild.get(peek.buildId) ?? 0) + 1
            skippedPerBuild.set(peek.buildId, skipped)
            if (skipped > budget.skippedPerBuild) cut(`more than ${budget.skippedPerBuild} attestations of build ${peek.buildId} from keys not trusted`)
            continue
          }
          strangersPerBuild.set(peek.buildId, n + 1)
          untrusted.charge(peer)
          untrustedAll.charge('*')
          stats.untrustedVerified++
        }
        stats.verified++
        const outcome = init.ingest(bytes)
        if (outcome === 'accept') counts.accepted++
        // a forgery, a bad signature: what no honest peer sends (an honest
        // one whose clock runs minutes ahead is cut too, until our clock
        // catches up with its dates; gossip still brings what it publishes)
        if (outcome === 'reject') cut('an attestation that does not validate')
        if (++verifiedSinceYield >= budget.verifyBatch) {
          verifiedSinceYield = 0
          await nextTurn()
        }
      }
    }

    const ask = async (peer: PeerId, buildIds: string[]): Promise<number> => {
      const key = peer.toString()
      if (asking.has(key)) return 0
      asking.add(key)
      const counts = { accepted: 0 }
      const ids = buildIds.slice(0, MAX_BUILD_IDS)
      try {
        stats.answers++
        await exchangeWith(libp2p, peer, SYNC_PROTOCOL, { maxFrame: MAX_FRAME, signal: AbortSignal.timeout(timeoutMs) }, async (lp, signal) => {
          await lp.write(new TextEncoder().encode(JSON.stringify({ buildIds: ids })), { signal })
          await readAnswer(lp, signal, key, new Set(ids), counts)
        })
      } catch (err) {
        // a cut answer was read as far as it was worth: what it gave counts
        if (!(err instanceof AnswerCutError)) throw err
        log('answer from %p cut: %s', peer, err.message)
      } finally {
        asking.delete(key)
      }
      return counts.accepted
    }

    return {
      async start () {
        await libp2p.handle(SYNC_PROTOCOL, handler, { maxInboundStreams: 8, runOnLimitedConnection: true })
      },
      async stop () {
        await libp2p.unhandle(SYNC_PROTOCOL)
      },
      async pull (buildIds, options) {
        if (buildIds.length === 0) return 0
        const peers = connectedPeers(libp2p).slice(0, options?.maxPeers ?? 16)
        const counts = await Promise.allSettled(peers.map(async p => await ask(p, buildIds)))
        return counts.reduce((s, r) => s + (r.status === 'fulfilled' ? r.value : 0), 0)
      },
      stats () {
        return { ...stats }
      }
    }
  }
}
