import { advertTooSoon } from '../../protocol/index.ts'
import type { SignedAdvert } from '../../protocol/index.ts'

/**
 * Workers whose adverts are kept. An advert costs a throw-away key nothing
 * to sign, so the book is bounded; past it a new worker's advert takes the
 * place of one that expired, else of the untrusted one that expires soonest.
 * Never of a trusted worker's (strangers cannot crowd out the adverts a
 * requester reads), and never refused for want of room unless every advert
 * held is trusted: a book full of strangers' adverts must not stop a node
 * relaying the next worker's (a relay trusts no one).
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

  /**
   * Why `signed` would not be kept, or undefined: issued too soon after its
   * worker's advert held here (charged: a flood), or the book is full of
   * adverts it may not displace (not charged: this node's state).
   */
  refusal (signed: SignedAdvert, now: number): { code: string, reason: string, charged: boolean } | undefined {
    const held = this.adverts.get(signed.advert.worker)
    if (held != null) {
      if (held.advert.seq < signed.advert.seq && advertTooSoon(held.advert, signed.advert)) return { code: 'ERR_ADVERT_TOO_SOON', reason: `${signed.advert.worker} advertised at ${held.advert.issuedAt}: another comes no sooner than a minute after`, charged: true }
      return undefined
    }
    if (this.adverts.size < MAX_ADVERTS || this.room(now) != null) return undefined
    return { code: 'ERR_ADVERTS_FULL', reason: `${MAX_ADVERTS} trusted workers' live adverts are held`, charged: false }
  }

  /** keeps `signed` if it is its worker's newest advert and there is room; true if kept */
  record (signed: SignedAdvert, now = Date.now()): boolean {
    const worker = signed.advert.worker
    if (this.isStale(signed)) return false
    const held = this.adverts.get(worker)
    if (held != null && advertTooSoon(held.advert, signed.advert)) return false
    if (held == null && this.adverts.size >= MAX_ADVERTS) {
      const room = this.room(now)
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

  /** the worker whose advert makes room for another: an expired one, else the untrusted one that expires soonest (one pass) */
  private room (now: number): string | undefined {
    let soonest: string | undefined
    let soonestAt = Infinity
    for (const [did, a] of this.adverts) {
      const at = Date.parse(a.advert.expiresAt)
      if (at <= now) return did
      if (at < soonestAt && this.init.isTrusted?.(did) !== true) { soonest = did; soonestAt = at }
    }
    return soonest
  }
}
