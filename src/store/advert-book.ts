import type { SignedAdvert } from '../../protocol/index.ts'

/**
 * Workers whose adverts are kept. An advert costs a throw-away key nothing
 * to sign, so the book is bounded; past it a new worker's advert is kept
 * only in place of one that expired, or, if its key is trusted here, of an
 * untrusted one: strangers cannot crowd out the adverts a requester reads.
 */
export const MAX_ADVERTS = 1024

export interface AdvertBookInit {
  /** whether this node's policy trusts `did` (its adverts are kept over strangers') */
  isTrusted?: (did: string) => boolean
}

/**
 * The latest advert of each worker (PROTOCOL.md §5.4): one per key, a
 * higher `seq` replacing a lower one, so a replayed older advert changes
 * nothing. Fed by the daemon with every advert it validates; read by the
 * requester (which workers could take a job) and by gossip's duplicate check.
 */
export class AdvertBook {
  private readonly adverts = new Map<string, SignedAdvert>()
  private readonly init: AdvertBookInit

  constructor (init: AdvertBookInit = {}) {
    this.init = init
  }

  /** whether `signed` is no newer than the advert held from its worker (a copy, a replay) */
  isStale (signed: SignedAdvert): boolean {
    const held = this.adverts.get(signed.advert.worker)
    return held != null && held.advert.seq >= signed.advert.seq
  }

  /** why `signed` would not be kept (the book is full of live adverts it may not displace), or undefined */
  refusal (signed: SignedAdvert, now: number): { code: string, reason: string } | undefined {
    if (this.adverts.has(signed.advert.worker) || this.adverts.size < MAX_ADVERTS || this.room(signed, now) != null) return undefined
    return { code: 'ERR_ADVERTS_FULL', reason: `${MAX_ADVERTS} workers' live adverts are held` }
  }

  /** keeps `signed` if it is its worker's newest advert and there is room; true if kept */
  record (signed: SignedAdvert, now = Date.now()): boolean {
    const worker = signed.advert.worker
    if (this.isStale(signed)) return false
    if (!this.adverts.has(worker) && this.adverts.size >= MAX_ADVERTS) {
      const room = this.room(signed, now)
      if (room == null) return false
      this.adverts.delete(room)
    }
    this.adverts.set(worker, signed)
    return true
  }

  /** the live adverts (not expired at `now`) */
  live (now: number): SignedAdvert[] {
    return [...this.adverts.values()].filter(a => Date.parse(a.advert.expiresAt) > now)
  }

  get (worker: string): SignedAdvert | undefined {
    return this.adverts.get(worker)
  }

  /** the worker whose advert may make room for `signed`: an expired one, else (for a trusted key) an untrusted one */
  private room (signed: SignedAdvert, now: number): string | undefined {
    const entries = [...this.adverts.entries()]
    const trusted = (did: string): boolean => this.init.isTrusted?.(did) === true
    return (entries.find(([, a]) => Date.parse(a.advert.expiresAt) <= now) ??
      (trusted(signed.advert.worker) ? entries.find(([did]) => !trusted(did)) : undefined))?.[0]
  }
}
