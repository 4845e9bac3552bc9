import { describe, expect, it } from 'vitest'
import type { GossipSub } from '@libp2p/gossipsub'
import { createMessageValidator } from '../../src/net/validate.ts'
import { concurGossip } from '../../src/net/gossip.ts'
import { isNetError } from '../../src/net/errors.ts'
import { ADVERTS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC, COMMITMENTS_TOPIC, CONCUR_TOPICS, EQUIVOCATIONS_TOPIC, JOBS_TOPIC, TOPIC_OF_KIND } from '../../src/net/topics.ts'
import { MAX_MESSAGE_BYTES, TOPIC_KINDS, topicKind } from '../../protocol/index.ts'
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

  it('ignores a topic that is not concur\'s, including names of Object.prototype', () => {
    const job = signedJob({ now })
    for (const topic of ['/concur/2/jobs/json', 'toString', '__proto__', 'constructor']) {
      expect(topicKind(topic)).toBeUndefined()
      expect(validate(topic, job.bytes)).toMatchObject({ action: 'ignore', code: 'ERR_UNKNOWN_TOPIC' })
    }
  })
})

describe('the topics of src/net are protocol\'s', () => {
  it('CONCUR_TOPICS and TOPIC_OF_KIND are derived from TOPIC_KINDS', () => {
    expect([...CONCUR_TOPICS].sort()).toEqual(Object.keys(TOPIC_KINDS).sort())
    expect(TOPIC_OF_KIND).toEqual({ job: JOBS_TOPIC, attestation: ATTESTATIONS_TOPIC, claim: CLAIMS_TOPIC, equivocation: EQUIVOCATIONS_TOPIC, advert: ADVERTS_TOPIC, commitment: COMMITMENTS_TOPIC })
    for (const [kind, topic] of Object.entries(TOPIC_OF_KIND)) expect(topicKind(topic)).toBe(kind)
  })
})

describe('publishing', () => {
  const now = Date.parse('2026-06-01T00:00:00Z')
  // just what concurGossip touches of gossipsub
  const fakePubsub = (published: string[]): GossipSub => ({
    topicValidators: new Map(),
    subscribe: () => {},
    unsubscribe: () => {},
    addEventListener: () => {},
    removeEventListener: () => {},
    getSubscribers: () => [],
    publish: async (topic: string) => { published.push(topic); return { recipients: [] } }
  }) as unknown as GossipSub

  it('a node refuses to publish what peers would reject, with ERR_INVALID_MESSAGE, and publishes a valid job on the jobs topic', async () => {
    const published: string[] = []
    const gossip = concurGossip({ now: () => now })({ pubsub: fakePubsub(published) })
    const err = await gossip.publish('attestation', signedJob({ now }).bytes).then(() => null, (e: unknown) => e)
    expect(isNetError(err)).toBe(true)
    expect(err).toMatchObject({ name: 'InvalidPublishError', code: 'ERR_INVALID_MESSAGE', kind: 'attestation', validation: 'ERR_WRONG_TOPIC' })
    expect(published).toEqual([])
    await gossip.publish('job', signedJob({ now }).bytes)
    expect(published).toEqual([JOBS_TOPIC])
    gossip.stop()
  })
})
