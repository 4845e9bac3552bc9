import { ADVERT_MIN_INTERVAL_MS, advertTooSoon } from '../../protocol/index.ts'
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
type AdvertRefusal = { code: string, reason: string, charged: boolean }
interface Held { signed: SignedAdvert, expires: number, heardAt: number }

export class AdvertBook {
  /** each worker's advert, with its expiry read once (room() scans them all) and when this node took it */
  private readonly adverts = new Map<string, Held>()
  private readonly init: AdvertBookInit

  constructor (init: AdvertBookInit = {}) {
    this.init = init
  }

  /**
   * The advert held from `worker` that the next one is judged against: an
   * expired one is not (a worker whose clock was set back, or whose seq
   * restarted lower, is heard again once what it sent before has lapsed; an
   * older advert replayed is expired itself, and the decoder ignores it).
   */
  private heldFrom (worker: string, now: number): Held | undefined {
    const held = this.adverts.get(worker)
    return held != null && held.expires > now ? held : undefined
  }

  /** whether `signed` is no newer than the live advert held from its worker (a copy, a replay) */
  isStale (signed: SignedAdvert, now: number): boolean {
    const held = this.heldFrom(signed.advert.worker, now)
    return held != null && held.signed.advert.seq >= signed.advert.seq
  }

  /**
   * Why `signed` would not be kept, or undefined: issued too soon after its
   * worker's advert held here (charged: a flood), or the book is full of
   * adverts it may not displace (not charged: this node's state).
   */
  refusal (signed: SignedAdvert, now: number): AdvertRefusal | undefined {
    const r = this.admit(signed, now)
    return 'refusal' in r ? r.refusal : undefined
  }

  /** keeps `signed` if it is its worker's newest advert and there is room; true if kept */
  record (signed: SignedAdvert, now = Date.now()): boolean {
    if (this.isStale(signed, now)) return false
    const r = this.admit(signed, now)
    if ('refusal' in r) return false
    if (r.evict != null) this.adverts.delete(r.evict)
    this.adverts.set(signed.advert.worker, { signed, expires: Date.parse(signed.advert.expiresAt), heardAt: now })
    return true
  }

  /** the one decision behind refusal() and record() (a stale copy aside): refused, or kept, in place of `evict` when the book is full */
  private admit (signed: SignedAdvert, now: number): { refusal: AdvertRefusal } | { evict?: string } {
    const held = this.adverts.get(signed.advert.worker)
    if (held != null) {
      const live = held.expires > now
      // a live one is judged by the signed times; a lapsed one by when this
      // node took it, since its sender chose its lifetime: adverts that
      // expire at once, one a second, would otherwise each be taken and
      // relayed to every node, uncharged (an honest one lives 30 minutes)
      const tooSoon = live
        ? held.signed.advert.seq < signed.advert.seq && advertTooSoon(held.signed.advert, signed.advert)
        : now - held.heardAt < ADVERT_MIN_INTERVAL_MS
      if (tooSoon) return { refusal: { code: 'ERR_ADVERT_TOO_SOON', reason: `${signed.advert.worker} advertised at ${held.signed.advert.issuedAt}: another comes no sooner than a minute after`, charged: true } }
      return {}
    }
    if (this.adverts.size < MAX_ADVERTS) return {}
    const evict = this.room(now)
    if (evict != null) return { evict }
    return { refusal: { code: 'ERR_ADVERTS_FULL', reason: `${MAX_ADVERTS} trusted workers' live adverts are held`, charged: false } }
  }

  /** the live adverts (not expired at `now`) */
  live (now: number): SignedAdvert[] {
    const out: SignedAdvert[] = []
    for (const { signed, expires } of this.adverts.values()) if (expires > now) out.push(signed)
    return out
  }

  get (worker: string): SignedAdvert | undefined {
    return this.adverts.get(worker)?.signed
  }

  /** the worker whose advert makes room for another: an expired one, else the untrusted one that expires soonest (one pass) */
  private room (now: number): string | undefined {
    let soonest: string | undefined
    let soonestAt = Infinity
    for (const [did, { expires }] of this.adverts) {
      if (expires <= now) return did
      if (expires < soonestAt && this.init.isTrusted?.(did) !== true) { soonest = did; soonestAt = expires }
    }
    return soonest
  }
}
