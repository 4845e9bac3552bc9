/**
 * Which job a worker tries next, fair across requesters (issue 13). Pure: no
 * I/O, time is passed in.
 *
 * The rule: when a build slot is free, the next job comes from the requester
 * served least recently (one never served first; among those, the one heard
 * first), and within a requester its jobs go in the order the worker heard
 * them. A requester is passed over while it already has `maxPerRequester`
 * builds under way (or being started), or has had `maxPerRequesterPerHour`
 * builds started in the last hour. So 1,000 jobs from one key cost every
 * other requester at most one turn of that key per round, not 1,000 builds;
 * the store order, which a flood decides, no longer matters.
 *
 * Round-robin is over requester keys, and keys are free: a flood from 1,000
 * keys gets 1,000 turns per round. A volunteer who must not build for
 * strangers serves a list (VolunteerPolicy.requesters); this rule is what
 * keeps the requesters it does serve from starving one another.
 *
 * A "turn" is spent when a job is taken, whatever comes of it (the job may
 * turn out to be fully claimed, or its inputs may not come): a requester
 * whose jobs cannot start must not keep the head of the line.
 */

/** the window of the per-requester rate */
export const RATE_WINDOW_MS = 3_600_000

/**
 * Jobs waiting per requester. More are not queued, only offered again at a
 * later scan once these are taken: the worker's own memory, whatever the
 * store holds.
 */
export const MAX_QUEUED_PER_REQUESTER = 256

export interface FairQueueLimits {
  /** builds of one requester under way at once (jobs taken and being started count) */
  maxPerRequester: number
  /** builds of one requester started in any RATE_WINDOW_MS (taken and being started count) */
  maxPerRequesterPerHour: number
}

export interface Taken { requester: string, jobId: string }

interface RequesterState {
  /** waiting job ids, in the order heard (a Set keeps insertion order; its first is the head) */
  queue: Set<string>
  /** jobs taken and not yet started or released */
  pending: number
  /** builds started and not yet finished */
  building: number
  /** when builds were started, oldest first, within the last window */
  starts: number[]
  /** the turn at which this requester was last served; 0: never */
  lastTurn: number
}

export class FairQueue {
  private readonly limits: FairQueueLimits
  private readonly windowMs: number
  /** in the order requesters were first heard: the tie-break among the never-served */
  private readonly requesters = new Map<string, RequesterState>()
  /** every job taken and not yet done with, and whose it is */
  private readonly out = new Map<string, { requester: string, started: boolean }>()
  private turn = 0

  constructor (limits: FairQueueLimits, windowMs = RATE_WINDOW_MS) {
    if (!(limits.maxPerRequester >= 1) || !(limits.maxPerRequesterPerHour >= 1)) throw new RangeError('per-requester limits must be at least 1')
    this.limits = { ...limits }
    this.windowMs = windowMs
  }

  /** queue a job; false if it is already queued or taken, or its requester's queue is full */
  offer (requester: string, jobId: string): boolean {
    if (this.out.has(jobId)) return false
    let s = this.requesters.get(requester)
    if (s == null) {
      s = { queue: new Set(), pending: 0, building: 0, starts: [], lastTurn: 0 }
      this.requesters.set(requester, s)
    }
    if (s.queue.has(jobId) || s.queue.size >= MAX_QUEUED_PER_REQUESTER) return false
    s.queue.add(jobId)
    return true
  }

  /**
   * The next job to try, or undefined when no requester with a waiting job
   * is under its limits. Taking it spends its requester's turn and holds one
   * of its places until `started` or `release`.
   */
  take (now: number): Taken | undefined {
    let best: { requester: string, s: RequesterState } | undefined
    for (const [requester, s] of this.requesters) {
      while (s.starts.length > 0 && (s.starts[0] as number) <= now - this.windowMs) s.starts.shift()
      if (s.queue.size === 0) {
        // nothing waiting, nothing under way, nothing to remember against it
        if (s.pending === 0 && s.building === 0 && s.starts.length === 0) this.requesters.delete(requester)
        continue
      }
      if (s.pending + s.building >= this.limits.maxPerRequester) continue
      if (s.starts.length + s.pending >= this.limits.maxPerRequesterPerHour) continue
      if (best == null || s.lastTurn < best.s.lastTurn) best = { requester, s }
    }
    if (best == null) return undefined
    const jobId = best.s.queue.values().next().value as string
    best.s.queue.delete(jobId)
    best.s.pending++
    best.s.lastTurn = ++this.turn
    this.out.set(jobId, { requester: best.requester, started: false })
    return { requester: best.requester, jobId }
  }

  /** a taken job's build started: it counts against its requester's hour until the window passes */
  started (jobId: string, now: number): void {
    const o = this.out.get(jobId)
    const s = o == null ? undefined : this.requesters.get(o.requester)
    if (o == null || o.started || s == null) return
    o.started = true
    s.pending--
    s.building++
    s.starts.push(now)
  }

  /** a taken job was not started (not startable now); no-op once started */
  release (jobId: string): void {
    const o = this.out.get(jobId)
    if (o == null || o.started) return
    this.out.delete(jobId)
    const s = this.requesters.get(o.requester)
    if (s != null) s.pending--
  }

  /** a started build ended */
  finished (jobId: string): void {
    const o = this.out.get(jobId)
    if (o == null || !o.started) return
    this.out.delete(jobId)
    const s = this.requesters.get(o.requester)
    if (s != null) s.building--
  }

  /** jobs waiting, over every requester */
  get size (): number {
    let n = 0
    for (const s of this.requesters.values()) n += s.queue.size
    return n
  }

  /** builds under way or being started for `requester` */
  active (requester: string): number {
    const s = this.requesters.get(requester)
    return s == null ? 0 : s.pending + s.building
  }
}
