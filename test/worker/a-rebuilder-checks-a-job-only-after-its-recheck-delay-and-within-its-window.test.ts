/**
 * When a rebuilder spot-checks a job (src/worker/worker.ts spotCheckOf):
 * a job of a followed requester, or in the sample, is checked no earlier
 * than `--recheck-after` after it was announced ('later' until then, and not
 * built as a replica meanwhile), and not at all once it is older than
 * `--recheck-window`. The options are checked where they are parsed.
 */
import { describe, expect, it } from 'vitest'
import { spotCheckOf } from '../../src/worker/worker.ts'
import { rebuildOptions } from '../../node/worker-options.ts'

const T0 = Date.parse('2026-11-30T12:00:00.000Z')
const job = (requester: string, createdAt = T0) => ({ jobId: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', job: { requester, createdAt: new Date(createdAt).toISOString() } })
const me = 'did:key:z6MkrebuilderXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'
const followed = 'did:key:z6MkfollowedXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX'

describe('spotCheckOf', () => {
  const rb = { requesters: [followed], sample: 0, only: true, recheckAfterMs: 60_000, recheckWindowMs: 3_600_000 }

  it('a job it does not follow or sample is not its check', () => {
    expect(spotCheckOf(rb, job('did:key:z6Mkother'), me, T0 + 120_000)).toBe('no')
    expect(spotCheckOf(undefined, job(followed), me, T0)).toBe('no')
  })

  it('a followed job is due only once the recheck delay has passed', () => {
    expect(spotCheckOf(rb, job(followed), me, T0)).toBe('later')
    expect(spotCheckOf(rb, job(followed), me, T0 + 59_999)).toBe('later')
    expect(spotCheckOf(rb, job(followed), me, T0 + 60_000)).toBe('now')
  })

  it('a job older than the window is left alone', () => {
    expect(spotCheckOf(rb, job(followed), me, T0 + 3_600_000)).toBe('now')
    expect(spotCheckOf(rb, job(followed), me, T0 + 3_600_001)).toBe('no')
  })

  it('without a delay a check is due at once (the earlier behaviour)', () => {
    expect(spotCheckOf({ requesters: [followed], sample: 0, only: false }, job(followed), me, T0)).toBe('now')
    expect(spotCheckOf({ requesters: [], sample: 1, only: false }, job('did:key:z6Mkanyone'), me, T0)).toBe('now')
  })
})

describe('--recheck-after and --recheck-window', () => {
  it('are whole seconds, and need a rebuilder', () => {
    expect(rebuildOptions({ sample: '1', 'recheck-after': '300', 'recheck-window': '86400' })).toMatchObject({ recheckAfterMs: 300_000, recheckWindowMs: 86_400_000 })
    expect(() => rebuildOptions({ 'recheck-after': '300' })).toThrow(/need --rebuild-for DID or --sample P/)
    expect(() => rebuildOptions({ sample: '1', 'recheck-after': '2.5' })).toThrow(/whole seconds/)
    expect(() => rebuildOptions({ sample: '1', 'recheck-after': '-1' })).toThrow(/whole seconds/)
    expect(() => rebuildOptions({ sample: '1', 'recheck-after': '600', 'recheck-window': '600' })).toThrow(/must be longer than --recheck-after/)
  })
})
