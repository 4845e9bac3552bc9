/**
 * A worker's adverts across restarts (PROTOCOL.md §5.4, protocol's
 * nextAdvert, src/worker/advert.ts): nodes refuse, and charge, an advert
 * issued less than ADVERT_MIN_INTERVAL_MS after the one they hold from its
 * worker, and ignore one with no higher seq. A worker that signed an advert
 * and restarted within the minute used to advertise at once, so every
 * neighbour charged it, once per restart (a crash loop graylists it). It now
 * keeps its last advert's seq and issue time, and its next advert waits out
 * the minute with a higher seq.
 */
import { describe, expect, it } from 'vitest'
import { MemoryDatastore } from 'datastore-core/memory'
import { ADVERT_MIN_INTERVAL_MS, createAdvert, nextAdvert } from '../../protocol/index.ts'
import type { SignedAdvert } from '../../protocol/index.ts'
import { AdvertBook } from '../../src/store/advert-book.ts'
import { noteAdvert, scheduleAdvert } from '../../src/worker/advert.ts'
import { T0, advertInput, fixedKey } from '../protocol/fixtures.ts'

const key = fixedKey('restarting-worker')
const advertAt = (at: number, seq: number): SignedAdvert => createAdvert(advertInput(key, at, 30 * 60_000, { seq }), key)

describe('a worker restarted within a minute of its last advert', () => {
  it('waits out the minute with a higher seq, and a peer holding the last one takes the next without a charge', async () => {
    const datastore = new MemoryDatastore()
    // the first start: nothing kept, an advert at once
    const first = await scheduleAdvert(datastore, T0)
    expect(first.at).toBe(T0)
    const sent = advertAt(first.at, first.seq)
    await noteAdvert(datastore, sent)
    const peer = new AdvertBook()
    expect(peer.record(sent, T0)).toBe(true)

    // restarted 10 s later: what it used to do (an advert now, seq from the clock) is refused and charged
    const restart = T0 + 10_000
    expect(peer.refusal(advertAt(restart, restart), restart)).toMatchObject({ code: 'ERR_ADVERT_TOO_SOON', charged: true })
    // what it does now
    const next = await scheduleAdvert(datastore, restart)
    expect(next.at).toBe(T0 + ADVERT_MIN_INTERVAL_MS)
    expect(next.seq).toBeGreaterThan(first.seq)
    const again = advertAt(next.at, next.seq)
    expect(peer.isStale(again, next.at)).toBe(false)
    expect(peer.refusal(again, next.at)).toBeUndefined()
    expect(peer.record(again, next.at)).toBe(true)
  })

  it('nextAdvert: never refused after the last one, never a wait past a minute, whatever the restart time or a clock set back', () => {
    for (const [issued, now] of [[T0, T0], [T0, T0 + 1], [T0, T0 + 59_999], [T0, T0 + 60_000], [T0, T0 + 3_600_000], [T0 + 3_600_000, T0]] as const) {
      const { seq, at } = nextAdvert({ issuedAt: new Date(issued).toISOString(), seq: issued }, now)
      expect(at).toBeGreaterThanOrEqual(now)
      expect(at).toBeLessThanOrEqual(now + ADVERT_MIN_INTERVAL_MS)
      expect(seq).toBeGreaterThan(issued)
      // a clock set back an hour: the held one is dated ahead, so the next is heard once it lapses (the book's test)
      if (issued <= now) expect(at - issued).toBeGreaterThanOrEqual(ADVERT_MIN_INTERVAL_MS)
    }
  })

  it('a kept record that cannot be read, or that no advert could follow, counts as none: the worker advertises at once rather than not start or never advertise', async () => {
    const { Key } = await import('interface-datastore')
    for (const record of ['{"issuedAt": 5', '{"issuedAt": "2026-01-01", "seq": 1}', `{"issuedAt": "2026-01-01T00:00:00Z", "seq": ${Number.MAX_SAFE_INTEGER}}`, '{"issuedAt": "2026-01-01T00:00:00Z", "seq": -1}']) {
      const datastore = new MemoryDatastore()
      await datastore.put(new Key('/concur/worker/last-advert'), new TextEncoder().encode(record))
      expect(await scheduleAdvert(datastore, T0), record).toEqual({ seq: T0, at: T0 })
    }
  })
})
