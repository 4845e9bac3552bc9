/**
 * The claim order (PROTOCOL.md §7 rule 4): a job's named builders sorted by
 * sha256(jobId ‖ "\n" ‖ did); the first `replicas` claim at once, each later
 * one waits CLAIM_ORDER_STEP_MS per place beyond them (at most
 * CLAIM_ORDER_MAX_WAIT_MS) and counts the slots again. Checked against the
 * rule written from its words with node:crypto, and for what it is for: a
 * different order for every job, one place per builder.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CLAIM_ORDER_MAX_WAIT_MS, CLAIM_ORDER_STEP_MS, claimOrder, claimOrderWaitMs } from '../../protocol/index.ts'
import { fakeRawCid, fixedKey } from './fixtures.ts'

const builders = Array.from({ length: 12 }, (_, i) => fixedKey(`builder-${i}`).did).sort()

/** §7 rule 4 from its words */
function independentOrder (jobId: string, dids: string[]): string[] {
  const h = (d: string): string => createHash('sha256').update(`${jobId}\n${d}`, 'utf8').digest('hex')
  return [...dids].sort((a, b) => h(a) < h(b) ? -1 : h(a) > h(b) ? 1 : 0)
}

describe('the claim order of a job naming its builders', () => {
  it('gives each builder the place the rule\'s own words give it, one place each', () => {
    for (const label of ['job-1', 'job-2', 'job-3']) {
      const jobId = fakeRawCid(label)
      const places = builders.map(d => claimOrder({ jobId, builders }, d)!)
      expect([...places].sort((a, b) => a - b)).toEqual(builders.map((_, i) => i))
      expect(independentOrder(jobId, builders)).toEqual([...builders].sort((a, b) => claimOrder({ jobId, builders }, a)! - claimOrder({ jobId, builders }, b)!))
    }
  })

  it('is another order for another job: no key is always first', () => {
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => {
      const jobId = fakeRawCid(`job-${i}`)
      return builders.find(d => claimOrder({ jobId, builders }, d) === 0)
    }))
    expect(firsts.size).toBeGreaterThan(4)
  })

  it('lets the first `replicas` go at once and makes the others wait a step per place, up to the cap', () => {
    expect(claimOrderWaitMs(0, 3)).toBe(0)
    expect(claimOrderWaitMs(2, 3)).toBe(0)
    expect(claimOrderWaitMs(3, 3)).toBe(CLAIM_ORDER_STEP_MS)
    expect(claimOrderWaitMs(4, 3)).toBe(2 * CLAIM_ORDER_STEP_MS)
    expect(claimOrderWaitMs(100, 3)).toBe(CLAIM_ORDER_MAX_WAIT_MS)
  })

  it('has no order for a job naming no builders, nor for a key it does not name', () => {
    const jobId = fakeRawCid('job-1')
    expect(claimOrder({ jobId }, builders[0]!)).toBeUndefined()
    expect(claimOrder({ jobId, builders }, fixedKey('stranger').did)).toBeUndefined()
    expect(claimOrderWaitMs(undefined, 3)).toBe(0)
  })
})
