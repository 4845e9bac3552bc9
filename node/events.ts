/**
 * The daemon's event feed (records, claims, builds, verdicts), kept in a
 * bounded ring so `GET /v1/events?after=N` can long-poll without losing what
 * happened between two polls.
 *
 * Any peer can make events (a flood of cheap claims, attestations): so an
 * event costs one look at each waiting request (its filter), not a scan of
 * the ring, and a reader's scan starts where it left off (the ring is in seq
 * order), not at the ring's start.
 */
import type { FeedEvent, SequencedEvent } from './api/types.ts'

const RING = 10_000

interface Waiter { match: (e: FeedEvent) => boolean, wake: () => void }

export class EventHub {
  private readonly ring: SequencedEvent[] = []
  private seq = 0
  private readonly waiters = new Set<Waiter>()

  private readonly listeners = new Set<(e: FeedEvent, at: string) => void>()

  emit (event: FeedEvent): void {
    const at = new Date().toISOString()
    this.ring.push({ seq: ++this.seq, at, event })
    if (this.ring.length > RING) this.ring.shift()
    for (const w of this.waiters) if (w.match(event)) w.wake()
    for (const l of this.listeners) {
      // a renderer's bug must not break the feed for everyone else
      try { l(event, at) } catch { /* ignored */ }
    }
  }

  /** call `listener` with every event from now on and its time (the daemon's terminal, its log); returns the unsubscribe */
  listen (listener: (e: FeedEvent, at: string) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  get last (): number {
    return this.seq
  }

  /** the oldest seq still held (a reader whose `after` is older has missed some) */
  get first (): number {
    return this.ring[0]?.seq ?? this.seq + 1
  }

  since (after: number, match: (e: FeedEvent) => boolean = () => true): SequencedEvent[] {
    // seqs in the ring are consecutive: the first one after `after` is at a known index
    const start = Math.max(0, after + 1 - this.first)
    const out: SequencedEvent[] = []
    for (let i = start; i < this.ring.length; i++) {
      const e = this.ring[i] as SequencedEvent
      if (match(e.event)) out.push(e)
    }
    return out
  }

  /**
   * Events after `after` that `match`, waiting up to `waitMs` for the first
   * one, with the feed's bounds at that moment: every matching event up to
   * `last` is in `events`.
   */
  async wait (after: number, waitMs: number, options: { signal?: AbortSignal, match?: (e: FeedEvent) => boolean } = {}): Promise<{ events: SequencedEvent[], first: number, last: number }> {
    const { signal } = options
    const match = options.match ?? (() => true)
    const snapshot = (): { events: SequencedEvent[], first: number, last: number } => ({ events: this.since(after, match), first: this.first, last: this.last })
    const now = snapshot()
    if (now.events.length > 0 || waitMs <= 0 || signal?.aborted === true) return now
    await new Promise<void>((resolve) => {
      const waiter: Waiter = { match, wake: () => { done() } }
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(waiter)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      this.waiters.add(waiter)
      signal?.addEventListener('abort', done)
    })
    return snapshot()
  }
}
