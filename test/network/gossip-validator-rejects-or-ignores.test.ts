import { describe, expect, it } from 'vitest'
import { createMessageValidator } from '../../src/net/validate.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, JOBS_TOPIC } from '../../src/net/topics.ts'
import { MAX_MESSAGE_BYTES } from '../../protocol/index.ts'
import { signedJob, wronglySignedJob } from '../helpers/fixtures.ts'

const enc = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x))

describe('gossip validation: REJECT what no honest peer sends, IGNORE what honest peers may', () => {
  const now = Date.parse('2026-06-01T00:00:00Z')
  const validate = createMessageValidator({ now: () => now })

  it('accepts a valid signed job on the jobs topic', () => {
    const job = signedJob({ now })
    const out = validate(JOBS_TOPIC, job.bytes)
    expect(out.action).toBe('accept')
  })

  it('rejects an oversized message before decoding it', () => {
    const big = new Uint8Array(MAX_MESSAGE_BYTES + 1)
    expect(validate(JOBS_TOPIC, big)).toMatchObject({ action: 'reject', code: 'ERR_TOO_LARGE' })
  })

  it('rejects malformed bytes and a wrongly signed job', () => {
    expect(validate(JOBS_TOPIC, new TextEncoder().encode('{"payload":'))).toMatchObject({ action: 'reject' })
    expect(createMessageValidator()(JOBS_TOPIC, enc(wronglySignedJob()))).toMatchObject({ action: 'reject', code: 'ERR_BAD_SIGNATURE' })
  })

  it('rejects a job on the attestations or claims topic', () => {
    const job = signedJob({ now })
    expect(validate(ATTESTATIONS_TOPIC, job.bytes)).toMatchObject({ action: 'reject', code: 'ERR_WRONG_TOPIC' })
    expect(validate(CLAIMS_TOPIC, job.bytes)).toMatchObject({ action: 'reject', code: 'ERR_WRONG_TOPIC' })
  })

  it('ignores an expired job (an honest peer may be late) but rejects a far-future one', () => {
    const old = signedJob({ now: now - 2 * 3600_000, ttlMs: 60_000 })
    expect(validate(JOBS_TOPIC, old.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_EXPIRED' })
    const future = signedJob({ now: now + 24 * 3600_000 })
    expect(validate(JOBS_TOPIC, future.bytes)).toMatchObject({ action: 'reject', code: 'ERR_FUTURE' })
  })

  it('ignores a message this node already holds', () => {
    const job = signedJob({ now })
    const known = createMessageValidator({ now: () => now, isKnown: (m) => m.kind === 'job' && m.value.jobId === job.jobId })
    expect(known(JOBS_TOPIC, job.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_DUPLICATE' })
  })
})
