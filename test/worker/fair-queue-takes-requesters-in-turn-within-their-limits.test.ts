/**
 * FairQueue (src/worker/fair-queue.ts), the rule a worker picks its next job
 * by: round-robin over requesters, the least recently served first (never
 * served first of all), each requester's jobs in the order heard, within a
 * limit of builds at once and of builds started per hour per requester.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FairQueue, MAX_QUEUED_PER_REQUESTER, RATE_WINDOW_MS } from '../../src/worker/fair-queue.ts'

const WIDE = { maxPerRequester: 1_000_000, maxPerRequesterPerHour: 1_000_000 }

/** take everything, each job started and finished at once; the requesters in the order taken */
function drain (q: FairQueue, now = 0): string[] {
  const out: string[] = []
  for (let t = q.take(now); t != null; t = q.take(now)) {
    out.push(t.requester)
    q.started(t.jobId, now)
    q.finished(t.jobId)
  }
  return out
}

describe('FairQueue', () => {
  it('1,000 jobs of one requester, then one of another: the other is the next taken', () => {
    const q = new FairQueue(WIDE)
    for (let i = 0; i < 1000; i++) q.offer('flood', `f${i}`)
    const first = q.take(0)
    expect(first).toEqual({ requester: 'flood', jobId: 'f0' })
    q.started('f0', 0)
    q.offer('honest', 'h0')
    expect(q.take(0)).toEqual({ requester: 'honest', jobId: 'h0' })
  })

  it('goes round the requesters, each one\'s jobs in the order heard', () => {
    const q = new FairQueue(WIDE)
    for (const [r, j] of [['a', 'a1'], ['a', 'a2'], ['a', 'a3'], ['b', 'b1'], ['c', 'c1'], ['c', 'c2']]) q.offer(r as string, j as string)
    const ids: string[] = []
    for (let t = q.take(0); t != null; t = q.take(0)) { ids.push(t.jobId); q.release(t.jobId) }
    expect(ids).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3'])
  })

  it('holds a requester to maxPerRequester builds at once, and frees its place when one ends or is let go', () => {
    const q = new FairQueue({ maxPerRequester: 2, maxPerRequesterPerHour: 100 })
    for (let i = 0; i < 5; i++) q.offer('a', `a${i}`)
    const x = q.take(0)!
    const y = q.take(0)!
    expect(q.take(0)).toBeUndefined()
    q.started(x.jobId, 0)
    q.release(y.jobId)
    expect(q.take(0)?.jobId).toBe('a2')
    expect(q.take(0)).toBeUndefined()
    q.finished(x.jobId)
    expect(q.take(0)?.jobId).toBe('a3')
    expect(q.active('a')).toBe(2)
  })

  it('starts at most maxPerRequesterPerHour builds of a requester in any hour', () => {
    const q = new FairQueue({ maxPerRequester: 10, maxPerRequesterPerHour: 3 })
    for (let i = 0; i < 10; i++) q.offer('a', `a${i}`)
    expect(drain(q, 1000)).toEqual(['a', 'a', 'a'])
    expect(q.take(1000 + RATE_WINDOW_MS - 1)).toBeUndefined()
    // released (not started) takes do not count against the hour
    const t = q.take(1000 + RATE_WINDOW_MS)!
    q.release(t.jobId)
    q.offer('a', t.jobId)
    expect(drain(q, 1000 + RATE_WINDOW_MS)).toHaveLength(3)
  })

  it('queues at most MAX_QUEUED_PER_REQUESTER jobs per requester, and never a job twice', () => {
    const q = new FairQueue(WIDE)
    let queued = 0
    for (let i = 0; i < MAX_QUEUED_PER_REQUESTER + 50; i++) if (q.offer('a', `a${i}`)) queued++
    expect(queued).toBe(MAX_QUEUED_PER_REQUESTER)
    expect(q.offer('a', 'a0')).toBe(false)
    const t = q.take(0)!
    expect(q.offer('a', t.jobId)).toBe(false)
    expect(q.offer('b', 'b0')).toBe(true)
  })

  it('property: while two requesters both have jobs waiting, neither is taken twice without the other taken in between', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 200 }), (offers) => {
      const q = new FairQueue(WIDE)
      offers.forEach((r, i) => { q.offer(r, `${r}${i}`) })
      const order = drain(q)
      expect(order).toHaveLength(offers.length)
      order.forEach((x, i) => {
        const j = order.indexOf(x, i + 1)
        if (j < 0) return
        // every requester still taken after j had jobs waiting all along: it was taken between i and j
        for (const y of new Set(order.slice(j + 1))) if (y !== x) expect(order.slice(i + 1, j)).toContain(y)
      })
    }), { numRuns: 300 })
  })

  it('property: under any sequence of offers, takes, starts, releases, ends and time, the limits hold and a job is out at most once', () => {
    type Op = { op: 'offer', r: string, n: number } | { op: 'take' } | { op: 'start', k: number } | { op: 'release', k: number } | { op: 'finish', k: number } | { op: 'wait', ms: number }
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('offer' as const), r: fc.constantFrom('a', 'b', 'c'), n: fc.nat(30) }),
      fc.constant({ op: 'take' as const }),
      fc.record({ op: fc.constant('start' as const), k: fc.nat(20) }),
      fc.record({ op: fc.constant('release' as const), k: fc.nat(20) }),
      fc.record({ op: fc.constant('finish' as const), k: fc.nat(20) }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: RATE_WINDOW_MS / 2 }) })
    )
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 300 }), (perRequester, perHour, ops) => {
      const q = new FairQueue({ maxPerRequester: perRequester, maxPerRequesterPerHour: perHour })
      let now = 0
      const pending = new Map<string, string>()
      const building = new Map<string, string>()
      const starts: Record<string, number[]> = {}
      const pick = <K, V>(m: Map<K, V>, k: number): [K, V] | undefined => [...m.entries()][k % Math.max(1, m.size)]
      for (const o of ops) {
        if (o.op === 'offer') q.offer(o.r, `${o.r}${o.n}`)
        else if (o.op === 'wait') now += o.ms
        else if (o.op === 'take') {
          const t = q.take(now)
          if (t == null) continue
          expect(pending.has(t.jobId) || building.has(t.jobId)).toBe(false)
          pending.set(t.jobId, t.requester)
        } else if (o.op === 'start') {
          const e = pick(pending, o.k)
          if (e == null) continue
          q.started(e[0], now)
          pending.delete(e[0])
          building.set(e[0], e[1]);
          (starts[e[1]] ??= []).push(now)
        } else if (o.op === 'release') {
          const e = pick(pending, o.k)
          if (e == null) continue
          q.release(e[0])
          pending.delete(e[0])
        } else {
          const e = pick(building, o.k)
          if (e == null) continue
          q.finished(e[0])
          building.delete(e[0])
        }
        for (const r of ['a', 'b', 'c']) {
          const active = [...pending.values(), ...building.values()].filter(x => x === r).length
          expect(q.active(r)).toBe(active)
          expect(active).toBeLessThanOrEqual(perRequester)
          const s = starts[r] ?? []
          for (const t of s) expect(s.filter(u => u > t - RATE_WINDOW_MS && u <= t).length).toBeLessThanOrEqual(perHour)
        }
      }
    }), { numRuns: 300 })
  })
})
