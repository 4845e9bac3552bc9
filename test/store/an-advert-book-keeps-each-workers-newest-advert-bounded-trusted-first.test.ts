/**
 * AdvertBook (src/store/advert-book.ts, PROTOCOL.md §5.4): the newest advert
 * of each worker, a replay or older one changing nothing; at most MAX_ADVERTS
 * workers, an expired advert making room, and a trusted worker's displacing a
 * stranger's, so throw-away keys cannot crowd out what a requester reads.
 */
import { describe, expect, it } from 'vitest'
import { ADVERT_MIN_INTERVAL_MS, MAX_ADVERT_MS, createAdvert } from '../../protocol/index.ts'
import type { SignedAdvert, SigningKey } from '../../protocol/index.ts'
import { AdvertBook, MAX_ADVERTS } from '../../src/store/advert-book.ts'
import { T0, advertInput, fixedKey } from '../protocol/fixtures.ts'

const advertOf = (key: SigningKey, seq: number, issued = T0, lifeMs = MAX_ADVERT_MS): SignedAdvert => createAdvert(advertInput(key, issued, lifeMs, { seq }), key)

describe('the advert book', () => {
  const w = fixedKey('book-worker')

  it('keeps the newest advert of a worker; a replay or an older one changes nothing', () => {
    const book = new AdvertBook()
    expect(book.record(advertOf(w, 2), T0)).toBe(true)
    expect(book.isStale(advertOf(w, 2), T0)).toBe(true)
    expect(book.record(advertOf(w, 1), T0)).toBe(false)
    expect(book.get(w.did)?.advert.seq).toBe(2)
    // a newer one issued within a minute of the one held: a flood, refused and charged (review: each copy costs every node a signature check)
    expect(book.refusal(advertOf(w, 3, T0 + 1_000), T0 + 1_000)).toMatchObject({ code: 'ERR_ADVERT_TOO_SOON', charged: true })
    expect(book.record(advertOf(w, 3, T0 + 1_000), T0 + 1_000)).toBe(false)
    expect(book.refusal(advertOf(w, 3, T0 + ADVERT_MIN_INTERVAL_MS), T0)).toBeUndefined()
    expect(book.record(advertOf(w, 3, T0 + ADVERT_MIN_INTERVAL_MS), T0)).toBe(true)
    expect(book.live(T0).map(a => a.advert.seq)).toEqual([3])
    expect(book.live(T0 + ADVERT_MIN_INTERVAL_MS + MAX_ADVERT_MS)).toEqual([])
  })

  it('judges a worker\'s next advert only against a live one: once what it sent before has lapsed, a lower seq or an earlier issue is heard again', () => {
    // a worker whose clock was set back an hour: its new adverts are issued
    // before the one held, with a lower seq (seq follows the clock)
    const book = new AdvertBook()
    const ahead = T0 + 3_600_000
    expect(book.record(advertOf(w, ahead, ahead, 60_000), T0)).toBe(true)
    const back = advertOf(w, T0 + 1, T0 + 1)
    // while the held one is live, the new one is older: ignored, as a replay would be
    expect(book.isStale(back, T0 + 1)).toBe(true)
    // once it lapsed (before this review: stale and refused for as long as the book held it)
    const lapsed = ahead + 60_000
    const later = advertOf(w, T0 + 2, lapsed - 3_600_000 + 10, MAX_ADVERT_MS)
    expect(book.isStale(later, lapsed)).toBe(false)
    expect(book.refusal(later, lapsed)).toBeUndefined()
    expect(book.record(later, lapsed)).toBe(true)
    expect(book.get(w.did)?.advert.seq).toBe(T0 + 2)
  })

  it('a key sending adverts that expire at once, one after another, is refused and charged, as a flood of live ones is', () => {
    // review: judged only against a live advert, each was taken, replaced the
    // last in place and was relayed to every node, uncharged
    const book = new AdvertBook()
    expect(book.record(advertOf(w, 1, T0, 100), T0)).toBe(true)
    const next = advertOf(w, 2, T0 + 100, 100)
    expect(book.refusal(next, T0 + 100)).toMatchObject({ code: 'ERR_ADVERT_TOO_SOON', charged: true })
    expect(book.record(next, T0 + 100)).toBe(false)
    // a minute after this node took the lapsed one, the key is heard again
    const later = advertOf(w, 3, T0 + ADVERT_MIN_INTERVAL_MS, 100)
    expect(book.refusal(later, T0 + ADVERT_MIN_INTERVAL_MS)).toBeUndefined()
  })

  it('holds at most MAX_ADVERTS workers: when full, a new worker takes the place of an expired advert, else of the stranger expiring soonest, never of a trusted worker', () => {
    const trusted = fixedKey('book-trusted')
    const book = new AdvertBook({ isTrusted: did => did === trusted.did })
    // the trusted worker's advert is the one expiring soonest: still never displaced by a stranger
    expect(book.record(advertOf(trusted, 1, T0, 30_000), T0)).toBe(true)
    const strangers = Array.from({ length: MAX_ADVERTS - 1 }, (_, i) => fixedKey(`book-stranger-${i}`))
    // the last of them the shortest-lived stranger
    strangers.forEach((k, i) => { expect(book.record(advertOf(k, 1, T0, i === strangers.length - 1 ? 60_000 : MAX_ADVERT_MS), T0)).toBe(true) })
    const late = fixedKey('book-late')
    // a full book of strangers does not stop the next worker's advert (a relay trusts no one: before the review it stopped relaying them)
    expect(book.refusal(advertOf(late, 1), T0)).toBeUndefined()
    expect(book.record(advertOf(late, 1), T0)).toBe(true)
    expect(book.get(strangers[strangers.length - 1]!.did)).toBeUndefined()
    expect(book.get(trusted.did)).toBeDefined()
    expect(book.live(T0)).toHaveLength(MAX_ADVERTS)
    // a held worker's newer advert is always taken
    expect(book.refusal(advertOf(strangers[5]!, 2, T0 + ADVERT_MIN_INTERVAL_MS), T0)).toBeUndefined()
    // once the trusted one expired, it makes room first
    const later = fixedKey('book-later')
    expect(book.record(advertOf(later, 1, T0 + 30_000), T0 + 30_000)).toBe(true)
    expect(book.get(trusted.did)).toBeUndefined()
  })

  it('refuses a stranger only when every advert held is a live trusted one', () => {
    const trustedKeys = Array.from({ length: MAX_ADVERTS }, (_, i) => fixedKey(`book-t-${i}`))
    const dids = new Set(trustedKeys.map(k => k.did))
    const book = new AdvertBook({ isTrusted: did => dids.has(did) })
    for (const k of trustedKeys) book.record(advertOf(k, 1), T0)
    expect(book.refusal(advertOf(fixedKey('book-outsider'), 1), T0)).toMatchObject({ code: 'ERR_ADVERTS_FULL', charged: false })
  })
})
