/**
 * Shards (PROTOCOL.md §6.1, protocol v1.1): a sharded job, its claims and its
 * attestations travel on the topics of one of SHARD_COUNT shards, chosen from
 * its buildId, so a node hears only the shards it serves instead of every
 * message of the network.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8Encode } from './encoding.ts'

/**
 * How many shards the network's sharded topics are split into. A sharded job
 * names this number (`shards`), so a later partition (more shards as the
 * network grows) is a new value a node can refuse or map, not a silent
 * disagreement about which topic a job is on.
 */
export const SHARD_COUNT = 16

/** Every shard, 0..SHARD_COUNT-1. */
export const ALL_SHARDS: readonly number[] = Object.freeze(Array.from({ length: SHARD_COUNT }, (_, i) => i))

/**
 * The shard of a build: the first hex digit of sha256(UTF-8 of the buildId
 * text), i.e. its first 4 bits. Of the buildId, not the jobId: every job,
 * claim and attestation of one build meets on one shard, so a worker that
 * built it once sees it again, and attestation catch-up (by buildId) asks
 * the peers that serve that shard. Hashed again (rather than the buildId's
 * own leading characters, which are the CID's fixed prefix) so that shards
 * fill evenly whatever the CID's encoding.
 */
export function shardOf (buildId: string): number {
  return (sha256(utf8Encode(buildId))[0] as number) >> 4
}

/** Whether `x` is a shard number (an integer 0..SHARD_COUNT-1). */
export function isShard (x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < SHARD_COUNT
}
