/**
 * Worker capability adverts (PROTOCOL.md §5.4, protocol v1.1): a worker's
 * signed statement of its environments, platforms, tier, limits, the
 * requesters it serves and the shards it reads. The decoder is bounded (every
 * list capped and sorted, the advert good for at most an hour) and an advert
 * signed by another key than the worker it names is refused.
 */
import { describe, expect, it } from 'vitest'
import {
  ADVERTS_TOPIC, ADVERT_PAYLOAD_TYPE, JOBS_TOPIC, MAX_ADVERT_MS, advertsFor, validateTopicMessage, MAX_ADVERT_PLATFORMS, MAX_BUILDERS, SHARD_COUNT, advertRefuses, createAdvert, decodeAdvert, envelopeBytes,
  gossipActionFor, shardOf, signEnvelope, utf8Encode
} from '../../protocol/index.ts'
import type { WorkerAdvert } from '../../protocol/index.ts'
import { T0, advertInput, definitionOnShard, fixedKey, iso, makeJob, requester } from './fixtures.ts'

const worker = fixedKey('advert-worker')
const other = fixedKey('advert-other')
const at = { now: T0 + 1_000 }
const base: Omit<WorkerAdvert, '_type'> = advertInput(worker, T0, MAX_ADVERT_MS)
const payload = (a: Record<string, unknown>): Uint8Array => utf8Encode(JSON.stringify({ _type: 'https://concur.dev/WorkerAdvert/v1', ...a }))
const signed = (a: Record<string, unknown>, key = worker): Uint8Array => envelopeBytes(signEnvelope(ADVERT_PAYLOAD_TYPE, payload(a), key))
const code = (f: () => unknown): string | undefined => { try { f(); return undefined } catch (err) { return (err as { code?: string }).code } }
const pathOf = (f: () => unknown): string | undefined => { try { f(); return undefined } catch (err) { return (err as { path?: string }).path } }

describe('a worker advert', () => {
  it('round-trips, its lists in canonical order', () => {
    const a = createAdvert({ ...base, environments: ['rootfs', 'host'], shards: [7, 0, 3], serves: [requester.did, other.did] }, worker)
    const back = decodeAdvert(a.bytes, at)
    expect(back.advert).toEqual(a.advert)
    expect(back.advert.environments).toEqual(['host', 'rootfs'])
    expect(back.advert.shards).toEqual([0, 3, 7])
    expect(back.advert.serves).toEqual([requester.did, other.did].sort())
  })

  it('signed by another key than the worker it names is refused (ERR_BAD_SIGNATURE, REJECT)', () => {
    const forged = signed({ ...base }, other)
    expect(code(() => decodeAdvert(forged, at))).toBe('ERR_BAD_SIGNATURE')
    expect(gossipActionFor('ERR_BAD_SIGNATURE')).toBe('reject')
    // the same advert signed by its worker is fine
    expect(decodeAdvert(signed({ ...base }), at).advert.worker).toBe(worker.did)
  })

  it('is bounded: lists capped, sorted and known; good for at most an hour; no unknown field', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, environments: [] }, 'environments'],
      [{ ...base, environments: ['host', 'host'] }, 'environments[1]'],
      [{ ...base, environments: ['vm'] }, 'environments[0]'],
      [{ ...base, platforms: Array.from({ length: MAX_ADVERT_PLATFORMS + 1 }, (_, i) => `linux-a${i}`) }, 'platforms'],
      [{ ...base, platforms: ['linux/arm64', 'linux/amd64'] }, 'platforms[1]'],
      [{ ...base, platforms: ['Linux AMD64'] }, 'platforms[0]'],
      [{ ...base, shards: [SHARD_COUNT] }, 'shards[0]'],
      [{ ...base, shards: [3, 2] }, 'shards[1]'],
      [{ ...base, shards: Array.from({ length: SHARD_COUNT + 1 }, (_, i) => i) }, 'shards'],
      [{ ...base, serves: [] }, 'serves'],
      [{ ...base, serves: Array.from({ length: MAX_BUILDERS + 1 }, (_, i) => fixedKey(`s${i}`).did).sort() }, 'serves'],
      [{ ...base, tier: 'chroot' }, 'tier'],
      [{ ...base, maxConcurrent: 0 }, 'maxConcurrent'],
      [{ ...base, limits: { ...base.limits, cpus: 0 } }, 'limits.cpus'],
      [{ ...base, expiresAt: iso(T0 + MAX_ADVERT_MS + 1) }, 'expiresAt'],
      [{ ...base, expiresAt: iso(T0) }, 'expiresAt'],
      [{ ...base, note: 'hello' }, 'note']
    ]
    for (const [a, path] of cases) {
      const bytes = signed(a)
      expect(code(() => decodeAdvert(bytes, at)), path).toBe('ERR_SCHEMA')
      expect(pathOf(() => decodeAdvert(bytes, at)), path).toBe(path)
    }
    // an empty shard list is an advert of a worker that reads only the unsharded topics
    expect(decodeAdvert(signed({ ...base, shards: [] }), at).advert.shards).toEqual([])
  })

  it('lapses: expired is ERR_EXPIRED (IGNORE), dated ahead past the skew ERR_FUTURE, a later version ERR_UNSUPPORTED_VERSION', () => {
    const a = createAdvert(base, worker)
    expect(code(() => decodeAdvert(a.bytes, { now: T0 + MAX_ADVERT_MS }))).toBe('ERR_EXPIRED')
    expect(code(() => decodeAdvert(a.bytes, { now: T0 - 5 * 60_000 - 1 }))).toBe('ERR_FUTURE')
    expect(code(() => decodeAdvert(envelopeBytes(signEnvelope(ADVERT_PAYLOAD_TYPE, utf8Encode(JSON.stringify({ ...a.advert, _type: 'https://concur.dev/WorkerAdvert/v2' })), worker)), at))).toBe('ERR_UNSUPPORTED_VERSION')
    expect(code(() => decodeAdvert(envelopeBytes(signEnvelope('application/vnd.concur.claim+json; version=1', payload(base), worker)), at))).toBe('ERR_PAYLOAD_TYPE')
  })

  it('says why its worker would not take a job, or nothing', () => {
    const a = createAdvert({ ...base, serves: [requester.did] }, worker).advert
    const job = (o: Parameters<typeof makeJob>[0] = {}): ReturnType<typeof makeJob>['job'] => makeJob(o).job
    expect(advertRefuses(a, job())).toBeUndefined()
    expect(advertRefuses({ ...a, environments: ['rootfs'] }, job())).toBe('does not build in host environments')
    expect(advertRefuses({ ...a, platforms: ['linux/arm64'] }, job())).toBe('does not build for linux/amd64')
    expect(advertRefuses({ ...a, limits: { ...a.limits, cpus: 1 } }, job())).toBe('takes at most cpus 1 (the job asks 2)')
    expect(advertRefuses(a, job({ key: other }))).toBe('builds only for the requesters it names')
    const far = job({ def: definitionOnShard(12), sharded: true })
    expect(shardOf(far.buildId)).toBe(12)
    expect(advertRefuses(a, far)).toBe('does not read shard c')
    // the same build as a v1 job reaches it: v1 jobs are not on shards
    expect(advertRefuses(a, job({ def: definitionOnShard(12) }))).toBeUndefined()
    expect(advertRefuses(a, job(), 'vm')).toBe('its sandbox tier namespaces+cgroups is below vm')
  })

  it('travels on its own topic: accepted there, a forged one REJECTed, elsewhere the wrong topic', () => {
    const a = createAdvert(base, worker)
    expect(validateTopicMessage(ADVERTS_TOPIC, a.bytes, at).action).toBe('accept')
    expect(validateTopicMessage(ADVERTS_TOPIC, signed({ ...base }, other), at).action).toBe('reject')
    const elsewhere = validateTopicMessage(JOBS_TOPIC, a.bytes, at)
    expect(elsewhere.action === 'reject' && elsewhere.wrongTopic).toBe('advert')
  })

  it('read for a requester: only trusted workers\' adverts, which would take the job and why the others would not', () => {
    const job = makeJob().job
    const able = createAdvert(base, worker).advert
    const small = createAdvert({ ...base, worker: other.did, limits: { ...base.limits, cpus: 1 } }, other).advert
    const stranger = fixedKey('advert-stranger')
    const strangers = createAdvert({ ...base, worker: stranger.did }, stranger).advert
    const trusted = (did: string): boolean => did !== stranger.did
    expect(advertsFor(job, [able, small, strangers], trusted)).toEqual({ able: [worker.did], refusing: [{ worker: other.did, reason: 'takes at most cpus 1 (the job asks 2)' }] })
    // a stranger's advert is not read, whatever it says
    expect(advertsFor(job, [strangers], trusted)).toEqual({ able: [], refusing: [] })
  })
})
