/**
 * AdvertBook (src/store/advert-book.ts, PROTOCOL.md §5.4): the newest advert
 * of each worker, a replay or older one changing nothing; at most MAX_ADVERTS
 * workers, an expired advert making room, and a trusted worker's displacing a
 * stranger's, so throw-away keys cannot crowd out what a requester reads.
 */
import { describe, expect, it } from 'vitest'
import { MAX_ADVERT_MS, createAdvert } from '../../protocol/index.ts'
import type { SignedAdvert, SigningKey } from '../../protocol/index.ts'
import { AdvertBook, MAX_ADVERTS } from '../../src/store/advert-book.ts'
import { T0, advertInput, fixedKey } from '../protocol/fixtures.ts'

const advertOf = (key: SigningKey, seq: number, issued = T0, lifeMs = MAX_ADVERT_MS): SignedAdvert => createAdvert(advertInput(key, issued, lifeMs, { seq }), key)

describe('the advert book', () => {
  const w = fixedKey('book-worker')

  it('keeps the newest advert of a worker; a replay or an older one changes nothing', () => {
    const book = new AdvertBook()
    expect(book.record(advertOf(w, 2), T0)).toBe(true)
    expect(book.isStale(advertOf(w, 2))).toBe(true)
    expect(book.record(advertOf(w, 1), T0)).toBe(false)
    expect(book.get(w.did)?.advert.seq).toBe(2)
    expect(book.record(advertOf(w, 3), T0)).toBe(true)
    expect(book.live(T0).map(a => a.advert.seq)).toEqual([3])
    expect(book.live(T0 + MAX_ADVERT_MS)).toEqual([])
  })

  it('holds at most MAX_ADVERTS workers: a stranger is refused when full, a trusted worker displaces a stranger, an expired advert makes room', () => {
    const trusted = fixedKey('book-trusted')
    const book = new AdvertBook({ isTrusted: did => did === trusted.did })
    const strangers = Array.from({ length: MAX_ADVERTS }, (_, i) => fixedKey(`book-stranger-${i}`))
    // the last of them short-lived (a trusted worker displaces the first stranger)
    strangers.forEach((k, i) => { expect(book.record(advertOf(k, 1, T0, i === MAX_ADVERTS - 1 ? 60_000 : MAX_ADVERT_MS), T0)).toBe(true) })
    const late = fixedKey('book-late')
    expect(book.refusal(advertOf(late, 1), T0)).toEqual({ code: 'ERR_ADVERTS_FULL', reason: `${MAX_ADVERTS} workers' live adverts are held` })
    expect(book.record(advertOf(late, 1), T0)).toBe(false)
    // a held worker's newer advert is always taken
    expect(book.refusal(advertOf(strangers[5]!, 2), T0)).toBeUndefined()
    expect(book.record(advertOf(trusted, 1), T0)).toBe(true)
    expect(book.get(trusted.did)).toBeDefined()
    expect(book.get(strangers[0]!.did)).toBeUndefined()
    expect(book.live(T0)).toHaveLength(MAX_ADVERTS)
    // once the short-lived one expired, a stranger finds room
    expect(book.record(advertOf(late, 1, T0), T0 + 60_000)).toBe(true)
    expect(book.get(late.did)).toBeDefined()
  })
})
