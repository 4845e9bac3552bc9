/**
 * The daemon's event feed (jobs, attestations, claims, builds, verdicts), kept
 * in a bounded ring so `GET /v1/events?after=N` can long-poll without losing
 * what happened between two polls.
 */
export type DaemonEvent = { type: string } & Record<string, unknown>

export interface SequencedEvent { seq: number, at: string, event: DaemonEvent }

const RING = 10_000

export class EventHub {
  private readonly ring: SequencedEvent[] = []
  private seq = 0
  private readonly waiters = new Set<() => void>()

  emit (event: DaemonEvent): void {
    this.ring.push({ seq: ++this.seq, at: new Date().toISOString(), event })
    if (this.ring.length > RING) this.ring.shift()
    for (const w of this.waiters) w()
    this.waiters.clear()
  }

  get last (): number {
    return this.seq
  }

  since (after: number): SequencedEvent[] {
    return this.ring.filter(e => e.seq > after)
  }

  /** Events after `after`, waiting up to `waitMs` for the first one. */
  async wait (after: number, waitMs: number, signal?: AbortSignal): Promise<SequencedEvent[]> {
    const now = this.since(after)
    if (now.length > 0 || waitMs <= 0) return now
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      this.waiters.add(done)
      signal?.addEventListener('abort', done)
    })
    return this.since(after)
  }
}
