/**
 * Admission and the per-requester limits of a volunteer (issue 13): whom it
 * builds for (anyone, or a list), how many builds of one requester run at
 * once (default: one slot fewer than the machine has, at least one, so with
 * two slots or more a requester never holds them all), how many start per
 * requester per hour (default 120); from config.json's worker section and
 * from flags.
 */
import { describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../protocol/index.ts'
import { DEFAULT_WORKER } from '../../node/home.ts'
import { volunteerPolicy } from '../../node/worker-options.ts'
import { DEFAULT_MAX_PER_REQUESTER_PER_HOUR, admits, perRequesterLimits } from '../../src/worker/volunteer-policy.ts'

describe('per-requester limits and admission', () => {
  it('default: one slot fewer than maxConcurrent (at least one) at once, 120 started an hour', () => {
    expect(DEFAULT_MAX_PER_REQUESTER_PER_HOUR).toBe(120)
    expect(perRequesterLimits({ maxConcurrent: 1 })).toEqual({ maxPerRequester: 1, maxPerRequesterPerHour: 120 })
    expect(perRequesterLimits({ maxConcurrent: 2 })).toEqual({ maxPerRequester: 1, maxPerRequesterPerHour: 120 })
    expect(perRequesterLimits({ maxConcurrent: 8 })).toEqual({ maxPerRequester: 7, maxPerRequesterPerHour: 120 })
    expect(perRequesterLimits({ maxConcurrent: 8, maxPerRequester: 8, maxPerRequesterPerHour: 5 })).toEqual({ maxPerRequester: 8, maxPerRequesterPerHour: 5 })
  })

  it('config.json\'s worker section, then flags over it; nonsense refused', () => {
    expect(volunteerPolicy({ ...DEFAULT_WORKER, maxPerRequester: 2 }, {}).maxPerRequester).toBe(2)
    const p = volunteerPolicy({ ...DEFAULT_WORKER, maxPerRequester: 2 }, { 'max-per-requester': '3', 'max-per-requester-hour': '30' })
    expect(perRequesterLimits(p)).toEqual({ maxPerRequester: 3, maxPerRequesterPerHour: 30 })
    expect(() => volunteerPolicy(DEFAULT_WORKER, { 'max-per-requester': '0' })).toThrow(/--max-per-requester takes a positive number/)
    expect(() => volunteerPolicy(DEFAULT_WORKER, { 'max-per-requester-hour': 'many' })).toThrow(/--max-per-requester-hour takes a positive number/)
    expect(() => volunteerPolicy({ ...DEFAULT_WORKER, maxPerRequesterPerHour: 0.5 }, {})).toThrow(/"worker.maxPerRequesterPerHour" must be a whole number/)
  })

  it('admission: anyone when the list is empty, else only the keys listed', () => {
    const listed = generateSigningKey().did
    const stranger = generateSigningKey().did
    expect(admits({ requesters: [] }, stranger)).toBe(true)
    expect(admits(volunteerPolicy(DEFAULT_WORKER, { serve: [listed] }), listed)).toBe(true)
    expect(admits(volunteerPolicy(DEFAULT_WORKER, { serve: [listed] }), stranger)).toBe(false)
  })
})
