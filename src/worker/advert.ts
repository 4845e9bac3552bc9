/**
 * A worker's capability advert (PROTOCOL.md §5.4) from what it enforces: its
 * volunteer policy, its sandbox's tier, the shards its node reads. Built from
 * the same values decideJob applies, so the advert never promises a job the
 * worker would decline for its limits.
 */
import type { AbortOptions } from '@libp2p/interface'
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { ADVERT_RENEW_MS, MAX_ADVERT_MS, createAdvert, nextAdvert, parseTime } from '../../protocol/index.ts'
import type { SandboxTier, SignedAdvert, SigningKey } from '../../protocol/index.ts'
import type { VolunteerPolicy } from './volunteer-policy.ts'
// this machine's platform, as a requester on it names it in a host-environment job
import { hostPlatform } from '../requester/defaults.ts'

export interface AdvertInput {
  key: SigningKey
  peerId: string
  policy: Pick<VolunteerPolicy, 'environments' | 'memoryBytes' | 'cpus' | 'diskBytes' | 'wallSeconds' | 'processes' | 'maxConcurrent' | 'requesters'>
  tier: SandboxTier
  shards: readonly number[]
  now: number
  seq: number
}

/**
 * The signed advert; it is good for MAX_ADVERT_MS and re-published every
 * ADVERT_RENEW_MS, so one lost copy leaves the requesters' view whole.
 */
export function workerAdvert (input: AdvertInput): SignedAdvert {
  const { policy } = input
  return createAdvert({
    worker: input.key.did,
    workerPeerId: input.peerId,
    environments: [...policy.environments],
    platforms: [hostPlatform()],
    tier: input.tier,
    limits: { memoryBytes: policy.memoryBytes, cpus: policy.cpus, diskBytes: policy.diskBytes, wallSeconds: policy.wallSeconds, processes: policy.processes },
    maxConcurrent: policy.maxConcurrent,
    ...(policy.requesters.length > 0 ? { serves: [...policy.requesters] } : {}),
    shards: [...input.shards],
    issuedAt: new Date(input.now).toISOString(),
    expiresAt: new Date(input.now + Math.min(MAX_ADVERT_MS, 3 * ADVERT_RENEW_MS)).toISOString(),
    seq: input.seq
  }, input.key)
}

/** the seq and issue time of the last advert this worker signed, kept across its restarts */
const LAST_ADVERT = new Key('/concur/worker/last-advert')

/**
 * The seq and earliest time of this worker's next advert (protocol's
 * nextAdvert, §5.4), from the last one it signed before a restart; a record
 * that cannot be read counts as none (the worker then risks one refusal, not
 * its start).
 */
export async function scheduleAdvert (datastore: Pick<Datastore, 'get' | 'has'>, now: number, options?: AbortOptions): Promise<{ seq: number, at: number }> {
  try {
    if (await datastore.has(LAST_ADVERT, options)) {
      const o = JSON.parse(new TextDecoder().decode(await datastore.get(LAST_ADVERT, options))) as { issuedAt?: unknown, seq?: unknown }
      parseTime(o.issuedAt, 'issuedAt')
      // room above it for every renewal of a lifetime: a seq no advert can carry would stop them all
      if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0 || (o.seq as number) > Number.MAX_SAFE_INTEGER - 2 ** 32) throw new RangeError('seq out of range')
      return nextAdvert({ issuedAt: o.issuedAt as string, seq: o.seq as number }, now)
    }
  } catch {
    options?.signal?.throwIfAborted()
  }
  return nextAdvert(undefined, now)
}

/** notes `signed` as the last advert this worker signed, before it is published */
export async function noteAdvert (datastore: Pick<Datastore, 'put'>, signed: SignedAdvert, options?: AbortOptions): Promise<void> {
  await datastore.put(LAST_ADVERT, new TextEncoder().encode(JSON.stringify({ issuedAt: signed.advert.issuedAt, seq: signed.advert.seq })), options)
}
