/**
 * The daemon's event feed (records, claims, builds, verdicts), kept in a
 * bounded ring so `GET /v1/events?after=N` can long-poll without losing what
 * happened between two polls.
 */
import type { FeedEvent, SequencedEvent } from './api/types.ts'

const RING = 10_000

export class EventHub {
  private readonly ring: SequencedEvent[] = []
  private seq = 0
  private readonly waiters = new Set<() => void>()

  emit (event: FeedEvent): void {
    this.ring.push({ seq: ++this.seq, at: new Date().toISOString(), event })
    if (this.ring.length > RING) this.ring.shift()
    for (const w of this.waiters) w()
    this.waiters.clear()
  }

  get last (): number {
    return this.seq
  }

  since (after: number, match: (e: FeedEvent) => boolean = () => true): SequencedEvent[] {
    return this.ring.filter(e => e.seq > after && match(e.event))
  }

  /** Events after `after` that `match`, waiting up to `waitMs` for the first one. */
  async wait (after: number, waitMs: number, options: { signal?: AbortSignal, match?: (e: FeedEvent) => boolean } = {}): Promise<SequencedEvent[]> {
    const { signal, match } = options
    const deadline = Date.now() + waitMs
    while (true) {
      const found = this.since(after, match)
      const left = deadline - Date.now()
      if (found.length > 0 || left <= 0 || signal?.aborted === true) return found
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          this.waiters.delete(done)
          signal?.removeEventListener('abort', done)
          resolve()
        }
        const timer = setTimeout(done, left)
        this.waiters.add(done)
        signal?.addEventListener('abort', done)
      })
    }
  }
}
