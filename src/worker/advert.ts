/**
 * A worker's capability advert (PROTOCOL.md §5.4) from what it enforces: its
 * volunteer policy, its sandbox's tier, the shards its node reads. Built from
 * the same values decideJob applies, so the advert never promises a job the
 * worker would decline for its limits.
 */
import { ADVERT_RENEW_MS, MAX_ADVERT_MS, createAdvert } from '../../protocol/index.ts'
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
