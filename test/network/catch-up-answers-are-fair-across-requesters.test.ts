/**
 * fairJobOrder (src/net/job-sync.ts, PROTOCOL.md §15): a catch-up answer goes
 * round-robin over requester keys, newest-received first within each, with a
 * cap per requester, so one requester cannot fill an answer.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fairJobOrder } from '../../src/net/job-sync.ts'

const job = (requester: string, n: number): { requester: string, n: number } => ({ requester, n })

describe('fair catch-up order', () => {
  it('interleaves requesters, newest received first, and caps each', () => {
    const received = [job('a', 1), job('a', 2), job('a', 3), job('b', 1), job('a', 4), job('c', 1), job('b', 2)]
    expect(fairJobOrder(received, 2, 256).map(j => `${j.requester}${j.n}`)).toEqual(['b2', 'c1', 'a4', 'b1', 'a3'])
  })

  it('one requester with 1,000 jobs leaves room for every other requester\'s newest job', () => {
    const flood = Array.from({ length: 1000 }, (_, i) => job('flooder', i))
    const out = fairJobOrder([job('honest', 0), ...flood], 32, 256)
    expect(out.filter(j => j.requester === 'flooder')).toHaveLength(32)
    expect(out).toContainEqual(job('honest', 0))
  })

  it('never more than max, never more than the cap per requester, never a job twice', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.nat(50)), { maxLength: 300 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 300 }), (list, cap, max) => {
      const jobs = list.map(([r], i) => job(r, i))
      const out = fairJobOrder(jobs, cap, max)
      expect(out.length).toBeLessThanOrEqual(max)
      expect(new Set(out).size).toBe(out.length)
      for (const r of ['a', 'b', 'c', 'd']) expect(out.filter(j => j.requester === r).length).toBeLessThanOrEqual(cap)
      // every requester with a job is in the answer when there is room for one each
      const requesters = new Set(jobs.map(j => j.requester))
      if (max >= requesters.size) expect(new Set(out.map(j => j.requester))).toEqual(requesters)
    }), { numRuns: 200 })
  })
})
