/**
 * The validators' own count of REJECTs (src/net/score.ts RejectTally) must
 * graylist exactly where gossipsub's P4 with concur's parameters would: eight
 * invalid messages on one topic are forgiven (−64), the ninth graylists
 * (−81); counts on different topics add as squares, not as one count; and
 * the count halves every 10 minutes. Stricter would cut off honest peers
 * that relayed a few messages gone stale; looser would let the message after
 * a burst through (the burst test in the adversary suite).
 */
import { describe, expect, it } from 'vitest'
import { GRAYLIST_THRESHOLD, RejectTally } from '../../src/net/score.ts'

describe('the REJECT count', () => {
  it('forgives eight on one topic and graylists at the ninth', () => {
    const t = new RejectTally({ now: () => 0 })
    for (let i = 0; i < 8; i++) t.reject('p', 'jobs')
    expect(t.score('p')).toBeCloseTo(-64)
    expect(t.graylisted('p')).toBe(false)
    t.reject('p', 'jobs')
    expect(t.score('p')).toBeCloseTo(-81)
    expect(t.score('p')).toBeLessThan(GRAYLIST_THRESHOLD)
    expect(t.graylisted('p')).toBe(true)
    expect(t.graylisted('someone else')).toBe(false)
  })

  it('adds topics as squares: 6 and 6 on two topics are −72, forgiven', () => {
    const t = new RejectTally({ now: () => 0 })
    for (let i = 0; i < 6; i++) { t.reject('p', 'jobs'); t.reject('p', 'claims') }
    expect(t.score('p')).toBeCloseTo(-72)
    expect(t.graylisted('p')).toBe(false)
  })

  it('halves the count every 10 minutes', () => {
    let now = 0
    const t = new RejectTally({ now: () => now })
    for (let i = 0; i < 10; i++) t.reject('p', 'jobs')
    expect(t.graylisted('p')).toBe(true)
    now = 600_000
    expect(t.score('p')).toBeCloseTo(-25)
    expect(t.graylisted('p')).toBe(false)
  })

  it('forgets the oldest peer past its bound', () => {
    const t = new RejectTally({ now: () => 0, maxPeers: 2 })
    for (const p of ['a', 'b', 'c']) for (let i = 0; i < 9; i++) t.reject(p, 'jobs')
    expect(['a', 'b', 'c'].map(p => t.graylisted(p))).toEqual([false, true, true])
  })
})
