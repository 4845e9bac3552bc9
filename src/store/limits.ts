/**
 * How much a node keeps of what peers send it. Sybil keys are free, so every
 * bound here is per node and set by its operator, never by the sender: memory
 * and disk under a flood grow to these figures and stop. A volunteer changes
 * them in config.json ("limits": { … }).
 */
export interface StoreLimits {
  /** jobs held at once; beyond it the oldest job of the requester holding the most goes */
  maxJobs: number
  /** wire bytes of the jobs held at once (a job is at most 64 KiB) */
  maxJobBytes: number
  /** jobs held per requester key: one requester cannot take the whole store */
  maxJobsPerRequester: number
  /**
   * The longest a job may ask to stay open, from when this node first hears
   * it: a job that expires later is not kept (nor relayed). A requester that
   * needs longer re-announces.
   */
  maxJobLifetimeMs: number
  /** how long an expired job (and its claims and attestations) is kept after it expires, for late catch-up and `status` */
  expiredGraceMs: number
  /**
   * Attestations per buildId from keys this node does not trust (its trust
   * policy, or the job's named builders): enough to show dissent from
   * strangers, not a place to store a flood. Trusted keys are always kept.
   */
  maxUntrustedPerBuild: number
  /**
   * Attestations one key may have here for one job: two are the proof that
   * it equivocated (PROTOCOL.md §8); a third adds nothing.
   */
  maxPerSignerPerJob: number
  /**
   * Attestations one trusted key may have here for one buildId, over its
   * jobs: every job is an attempt, and a rerun (`--no-reuse`, `--vary`, a
   * rebuilder's later check) must still be heard after earlier ones. Per
   * build, not per job, so a key cannot fill a build with invented jobs. An
   * untrusted key keeps `maxPerSignerPerJob` per build: it is free to make.
   */
  maxPerSignerPerBuild: number
  /** attestations kept from one untrusted key, over every build */
  maxUntrustedPerSigner: number
  /** wire bytes of attestations from untrusted keys, over every build */
  maxUntrustedAttestationBytes: number
  /**
   * Equivocation proofs (PROTOCOL.md §8.2) kept per buildId for keys this
   * node does not trust. One per key per build at most; a proof about a
   * trusted key is always kept. Sybil keys equivocate for free, so theirs
   * are capped: enough to relay a few, not a place to store a flood.
   */
  maxUntrustedEquivocationsPerBuild: number
  /** equivocation proofs about untrusted keys, over every build (each up to ~130 KiB) */
  maxUntrustedEquivocations: number
  /**
   * Bytes of blocks on disk (`<home>/blocks`) before unpinned ones (fetched
   * for builds and for others) are collected; what the node pinned (its
   * requests, builds' outputs, `concur add`) is never collected.
   */
  blockstoreQuotaBytes: number
}

const MiB = 1024 * 1024

export const DEFAULT_STORE_LIMITS: Readonly<StoreLimits> = Object.freeze({
  maxJobs: 10_000,
  maxJobBytes: 128 * MiB,
  maxJobsPerRequester: 256,
  maxJobLifetimeMs: 7 * 24 * 3600_000,
  expiredGraceMs: 3600_000,
  maxUntrustedPerBuild: 32,
  maxPerSignerPerJob: 2,
  maxPerSignerPerBuild: 32,
  maxUntrustedPerSigner: 1024,
  maxUntrustedAttestationBytes: 64 * MiB,
  maxUntrustedEquivocationsPerBuild: 4,
  maxUntrustedEquivocations: 256,
  blockstoreQuotaBytes: 16 * 1024 * MiB
})

/** the limits a config names, over the defaults; every value a positive integer */
export function storeLimits (overrides: Partial<Record<keyof StoreLimits, unknown>> = {}): StoreLimits {
  const out: StoreLimits = { ...DEFAULT_STORE_LIMITS }
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in DEFAULT_STORE_LIMITS)) throw new RangeError(`unknown store limit "${k}" (known: ${Object.keys(DEFAULT_STORE_LIMITS).join(', ')})`)
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new RangeError(`store limit "${k}" must be a positive integer`)
    out[k as keyof StoreLimits] = v
  }
  return out
}

/** whether a job expiring at `expiresAt` asks to stay open past the lifetime ceiling, heard at `now` */
export function pastLifetimeCeiling (expiresAt: string, now: number, limits: Pick<StoreLimits, 'maxJobLifetimeMs'>): boolean {
  return Date.parse(expiresAt) - now > limits.maxJobLifetimeMs
}
