/**
 * Shards (PROTOCOL.md §6.1, protocol v1.1): a sharded job is a job of version
 * 2 (`shards: 16`); it, its claims and its attestations travel on the topics
 * of shard shardOf(buildId), the first hex digit of sha256 of the buildId
 * text. The topic is a function of the message, so a message on another
 * topic is REJECTed; a v1 job stays on the unsharded topics.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  ALL_SHARDS, ATTESTATIONS_TOPIC, createCommitment, CLAIMS_TOPIC, JOBS_TOPIC, JOB_PAYLOAD_TYPE, SHARDED_JOB_PAYLOAD_TYPE, SHARDED_JOB_TYPE, SHARD_COUNT, SHARD_TOPICS,
  createClaim, decodeJobAnnouncement, gossipActionFor, parseShardTopic, peekJobRoute, shardOf, shardTopic, signEnvelope, topicKind, topicOfJob,
  utf8Encode, validateJobAnnouncement, validateTopicMessage, envelopeBytes
} from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { T0, attest, definitionOnShard, fakeTreeCid, fixedKey, iso, makeJob, requester } from './fixtures.ts'

const at = { now: T0 + 1_000 }
const worker = fixedKey('shard-worker')
const claimOn = (job: SignedJob): Uint8Array => createClaim({
  jobId: job.jobId, buildId: job.job.buildId, worker: worker.did, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), leaseUntil: iso(T0 + 30_000), seq: 1
}, worker).bytes
const relabelled = (j: Record<string, unknown>, type: string): Uint8Array => envelopeBytes(signEnvelope(type, utf8Encode(JSON.stringify(j)), requester))
const payloadOf = (job: SignedJob): Record<string, unknown> => JSON.parse(Buffer.from(job.envelope.payload, 'base64').toString('utf8')) as Record<string, unknown>

describe('the shard of a build', () => {
  it('is the first hex digit of sha256(UTF-8 of the buildId), recomputed without protocol/ code', () => {
    for (let i = 0; i < 64; i++) {
      const buildId = makeJob({ def: { ...definitionOnShard(i % SHARD_COUNT, Math.floor(i / SHARD_COUNT)) } }).job.buildId
      const independent = Number.parseInt(createHash('sha256').update(buildId, 'utf8').digest('hex')[0] as string, 16)
      expect(shardOf(buildId)).toBe(independent)
      expect(shardOf(buildId)).toBe(i % SHARD_COUNT)
    }
  })

  it('has one topic per kind and shard, one spelling each; nothing else parses as one', () => {
    expect(shardTopic('job', 10)).toBe(`${JOBS_TOPIC}/a`)
    expect(SHARD_TOPICS).toHaveLength(4 * SHARD_COUNT)
    for (const t of SHARD_TOPICS) expect(shardTopic(parseShardTopic(t)!.kind, parseShardTopic(t)!.shard)).toBe(t)
    expect(topicKind(shardTopic('claim', 3))).toBe('claim')
    for (const t of [`${JOBS_TOPIC}/A`, `${JOBS_TOPIC}/10`, `${JOBS_TOPIC}/07`, `${JOBS_TOPIC}/`, `${JOBS_TOPIC}/g`, '/concur/1/equivocations/json/0', `${CLAIMS_TOPIC}/-1`]) {
      expect(parseShardTopic(t)).toBeUndefined()
      expect(topicKind(t)).toBeUndefined()
    }
    expect(() => shardTopic('job', SHARD_COUNT)).toThrow(RangeError)
    expect(ALL_SHARDS).toEqual([...Array(SHARD_COUNT).keys()])
  })
})

describe('a sharded job (version 2)', () => {
  const def = definitionOnShard(5)
  const sharded = makeJob({ def, sharded: true })
  const plain = makeJob({ def })

  it('is version 2 with `shards: 16` last; the same build and fields otherwise, and another jobId', () => {
    expect(sharded.envelope.payloadType).toBe(SHARDED_JOB_PAYLOAD_TYPE)
    expect(sharded.job._type).toBe(SHARDED_JOB_TYPE)
    expect(Object.keys(payloadOf(sharded)).at(-1)).toBe('shards')
    expect(payloadOf(sharded).shards).toBe(16)
    expect(sharded.job.buildId).toBe(plain.job.buildId)
    expect(sharded.jobId).not.toBe(plain.jobId)
    expect(decodeJobAnnouncement(sharded.bytes, at).job).toEqual(sharded.job)
    expect(peekJobRoute(sharded.bytes)).toEqual({ buildId: sharded.job.buildId, shards: 16 })
    expect(peekJobRoute(plain.bytes)).toEqual({ buildId: plain.job.buildId })
  })

  it('refuses `shards` in version 1, a version 2 without it, and any count but 16 (ERR_SCHEMA)', () => {
    const p = payloadOf(sharded)
    const code = (f: () => unknown): string | undefined => { try { f(); return undefined } catch (err) { return (err as { code?: string }).code } }
    // a v1 decoder reads a sharded job's fields as version 1 with an unknown field
    expect(code(() => decodeJobAnnouncement(relabelled({ ...p, _type: 'https://concur.dev/JobAnnouncement/v1' }, JOB_PAYLOAD_TYPE), at))).toBe('ERR_SCHEMA')
    const { shards: _, ...without } = p
    expect(code(() => decodeJobAnnouncement(relabelled(without, SHARDED_JOB_PAYLOAD_TYPE), at))).toBe('ERR_SCHEMA')
    expect(code(() => decodeJobAnnouncement(relabelled({ ...p, shards: 32 }, SHARDED_JOB_PAYLOAD_TYPE), at))).toBe('ERR_SCHEMA')
    // a version 1 payload under the version 2 label, and the reverse
    expect(code(() => decodeJobAnnouncement(relabelled(payloadOf(plain), SHARDED_JOB_PAYLOAD_TYPE), at))).toBe('ERR_SCHEMA')
    expect(code(() => validateJobAnnouncement(p, JOB_PAYLOAD_TYPE))).toBe('ERR_SCHEMA')
    // a later version is IGNOREd, as §9 says, by this node as by a v1 node for version 2
    expect(code(() => decodeJobAnnouncement(relabelled({ ...p, _type: 'https://concur.dev/JobAnnouncement/v3' }, SHARDED_JOB_PAYLOAD_TYPE), at))).toBe('ERR_UNSUPPORTED_VERSION')
    expect(gossipActionFor('ERR_UNSUPPORTED_VERSION')).toBe('ignore')
    expect(gossipActionFor('ERR_PAYLOAD_TYPE')).toBe('ignore')
  })
})

describe('topics (validateTopicMessage, PROTOCOL.md §6.1)', () => {
  const def = definitionOnShard(7)
  const sharded = makeJob({ def, sharded: true })
  const plain = makeJob({ def })
  const elsewhere = makeJob({ def: definitionOnShard(8), sharded: true })
  const verdict = (topic: string, bytes: Uint8Array): string => {
    const v = validateTopicMessage(topic, bytes, at)
    return v.action === 'accept' ? 'accept' : `${v.action}${v.wrongTopic != null ? ' (wrong topic)' : ` ${v.error.code}`}`
  }

  it('a sharded job is accepted on its shard only; a v1 job on the unsharded topic only', () => {
    expect(topicOfJob('job', sharded.job)).toBe(shardTopic('job', 7))
    expect(topicOfJob('claim', plain.job)).toBe(CLAIMS_TOPIC)
    expect(verdict(shardTopic('job', 7), sharded.bytes)).toBe('accept')
    expect(verdict(shardTopic('job', 8), sharded.bytes)).toBe('reject (wrong topic)')
    expect(verdict(JOBS_TOPIC, sharded.bytes)).toBe('reject (wrong topic)')
    expect(verdict(JOBS_TOPIC, plain.bytes)).toBe('accept')
    expect(verdict(shardTopic('job', 7), plain.bytes)).toBe('reject (wrong topic)')
    expect(verdict(shardTopic('job', 8), elsewhere.bytes)).toBe('accept')
  })

  it('a claim or attestation on a shard topic must be of a build of that shard; on the unsharded topics it is not checked', () => {
    const att = attest(worker, { def, jobId: sharded.jobId, artifact: fakeTreeCid('A') }).bytes
    expect(verdict(shardTopic('claim', 7), claimOn(sharded))).toBe('accept')
    expect(verdict(shardTopic('claim', 8), claimOn(sharded))).toBe('reject (wrong topic)')
    expect(verdict(shardTopic('attestation', 7), att)).toBe('accept')
    // a commitment (PROTOCOL.md §8.3) travels on its build's shard too
    const commitment = createCommitment({ buildId: sharded.job.buildId, jobId: sharded.jobId, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: new Date(T0).toISOString(), artifact: fakeTreeCid('A') }, worker).bytes
    expect(topicOfJob('commitment', sharded.job)).toBe(shardTopic('commitment', 7))
    expect(verdict(shardTopic('commitment', 7), commitment)).toBe('accept')
    expect(verdict(shardTopic('commitment', 8), commitment)).toBe('reject (wrong topic)')
    expect(verdict(shardTopic('attestation', 6), att)).toBe('reject (wrong topic)')
    // a claim on the attestations shard topic is the wrong kind, as on the unsharded ones
    expect(verdict(shardTopic('attestation', 7), claimOn(sharded))).toBe('reject (wrong topic)')
    // a node holding the job decides (it is of a job held elsewhere, or not at all)
    expect(verdict(CLAIMS_TOPIC, claimOn(sharded))).toBe('accept')
    expect(verdict(ATTESTATIONS_TOPIC, att)).toBe('accept')
  })

  it('a relabelled or resigned job does not move it: the topic follows what was signed', () => {
    // a v1 job re-signed by its requester as version 2 is another job (another jobId) on its shard
    const p = payloadOf(plain)
    const moved = relabelled({ ...p, _type: SHARDED_JOB_TYPE, shards: 16 }, SHARDED_JOB_PAYLOAD_TYPE)
    expect(verdict(shardTopic('job', 7), moved)).toBe('accept')
    expect(decodeJobAnnouncement(moved, at).jobId).not.toBe(plain.jobId)
  })
})
