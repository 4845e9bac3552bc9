import { replacesClaim, takenSlots } from '../../protocol/index.ts'
import type { Claim } from '../../protocol/index.ts'
import type { SignedClaim } from '../../protocol/index.ts'

/**
 * Jobs whose claims are kept; beyond it the oldest job's go. The daemon only
 * records claims on jobs it holds (gossip IGNOREs the rest, PROTOCOL.md §6),
 * and drops a job's claims when the job is pruned, so this is a backstop.
 */
const MAX_JOBS = 16_384
/**
 * Claims kept over every job (~1.4 KB each in memory: ~90 MB). Claims from
 * fresh keys on a job its announcer made up are valid and cost nothing to
 * sign; past this a new claimant is kept only if its job names it.
 */
export const MAX_CLAIMS = 65_536
/** a lapsed lease without an attestation is forgotten this long after it lapsed (it takes no slot any more) */
export const LAPSED_KEPT_MS = 10 * 60_000
/**
 * Claimants kept per job: room for 128 named builders, or 64 replicas and
 * spot checks on an open job. Beyond it a new claimant is kept only in place
 * of one whose lease lapsed, or, if the job names it as a builder, of one the
 * job does not name: throw-away keys cannot grow one job's entry without
 * bound, nor keep a builder's lease out of it.
 */
export const MAX_CLAIMANTS_PER_JOB = 160

/**
 * What this node knows of who is building which job: the latest claim of each
 * worker per job (highest seq wins, so a replayed old claim cannot extend a
 * lease). With the workers that attested a job (from the record store), it
 * counts the job's replica slots: a slot is taken by a live lease or by an
 * attestation from a worker that claimed a replica slot; a lapsed lease
 * without an attestation frees the slot, which is how a job survives a worker
 * that died mid-build. The rule itself is protocol's (takenSlots,
 * replacesClaim; PROTOCOL.md §7): this book only keeps the claims.
 *
 * Why an attestation only fills a slot when its signer claimed first: anyone
 * can sign an attestation with a throw-away key at no cost, so counting every
 * attestation would let an adversary publish `replicas` of them the moment a
 * job is announced and keep every honest worker from ever building it (a lost
 * job for two signatures; see
 * test/adversary/replica-slots-are-not-taken-by-bogus-attestations.test.ts).
 * Honest workers always claim before they build, so their attestations still
 * count. Claims cost nothing to sign either: on a job that names its builders,
 * a claim from any other key takes no slot (see
 * test/adversary/replica-slots-are-not-squatted-by-100-claiming-and-renewing-keys.test.ts).
 *
 * One book per node, fed by the daemon with every claim it validates (gossip,
 * catch-up and its own): the worker reads it to count slots, job catch-up
 * hands its live claims, with their signed bytes, to workers that join late.
 */
export interface ClaimBookInit {
  /**
   * Whether a claim's worker is one its job names as a builder (PROTOCOL.md
   * §5.1): when a job's entry is full, such a claim takes the place of one
   * whose worker the job does not name, so strangers cannot keep a builder's
   * lease out of the book.
   */
  isBuilder?: (claim: SignedClaim['claim']) => boolean
  /** whether `worker` attested `jobId` (its lapsed claim then still takes a slot, so it is kept) */
  attested?: (jobId: string, worker: string) => boolean
}

export class ClaimBook {
  private readonly claims = new Map<string, Map<string, SignedClaim>>()
  private readonly init: ClaimBookInit
  private count = 0

  constructor (init: ClaimBookInit = {}) {
    this.init = init
  }

  /** keeps `signed` if it is the worker's newest claim on its job; false for a replay or an older one */
  record (signed: SignedClaim): boolean {
    const { jobId, worker } = signed.claim
    let perJob = this.claims.get(jobId)
    if (perJob == null) {
      perJob = new Map()
      this.claims.set(jobId, perJob)
      if (this.claims.size > MAX_JOBS) {
        const first = this.claims.keys().next().value as string
        this.count -= this.claims.get(first)?.size ?? 0
        this.claims.delete(first)
      }
    }
    if (!replacesClaim(signed.claim, perJob.get(worker)?.claim)) return false
    if (!perJob.has(worker) && this.count >= MAX_CLAIMS && this.init.isBuilder?.(signed.claim) !== true) return false
    if (!perJob.has(worker) && perJob.size >= MAX_CLAIMANTS_PER_JOB) {
      const now = Date.now()
      const entries = [...perJob.entries()]
      const isBuilder = (c: SignedClaim['claim']): boolean => this.init.isBuilder?.(c) === true
      const room = entries.find(([, c]) => Date.parse(c.claim.leaseUntil) <= now) ??
        (isBuilder(signed.claim) ? entries.find(([, c]) => !isBuilder(c.claim)) : undefined)
      if (room == null) return false
      perJob.delete(room[0])
      this.count--
    }
    if (!perJob.has(worker)) this.count++
    perJob.set(worker, signed)
    return true
  }

  /** how many claims are kept, over every job */
  size (): number {
    return this.count
  }

  /**
   * Forget claims whose lease lapsed more than LAPSED_KEPT_MS ago and whose
   * worker did not attest: they take no slot, and keeping them would let
   * throw-away keys grow the book for as long as their jobs live.
   */
  sweep (now: number): number {
    let n = 0
    for (const [jobId, perJob] of this.claims) {
      for (const [worker, c] of perJob) {
        if (Date.parse(c.claim.leaseUntil) + LAPSED_KEPT_MS <= now && this.init.attested?.(jobId, worker) !== true) {
          perJob.delete(worker)
          this.count--
          n++
        }
      }
      if (perJob.size === 0) this.claims.delete(jobId)
    }
    return n
  }

  /** forget a job's claims (the job was pruned or evicted from the record store) */
  forget (jobId: string): void {
    this.count -= this.claims.get(jobId)?.size ?? 0
    this.claims.delete(jobId)
  }

  /**
   * Whether this claim is not its worker's newest on its job: a replay, or an
   * older one re-wrapped (PROTOCOL.md §6: IGNOREd at gossip, so never relayed)
   */
  isStale (signed: SignedClaim): boolean {
    const prev = this.claims.get(signed.claim.jobId)?.get(signed.claim.worker)?.claim
    return prev !== undefined && !replacesClaim(signed.claim, prev)
  }

  /** each worker's newest claim on `jobId` */
  claimsOf (jobId: string): Claim[] {
    return [...(this.claims.get(jobId)?.values() ?? [])].map(c => c.claim)
  }

  /** every claim whose lease runs at `now`, on any job (what job catch-up hands out) */
  allLive (now: number): SignedClaim[] {
    const out: SignedClaim[] = []
    for (const perJob of this.claims.values()) {
      for (const c of perJob.values()) if (Date.parse(c.claim.leaseUntil) > now) out.push(c)
    }
    return out
  }

  /**
   * How many replica slots of `jobId` are taken at `now`: live replica leases
   * plus attestations from workers that claimed a replica slot, not counting
   * rebuilders (their attestation is extra evidence, not a replica), unclaimed
   * attestations, nor `except`; on a job naming `builders` (the job's field),
   * no key outside them. See takenSlots.
   */
  taken (jobId: string, attested: Iterable<string>, now: number, except?: string, builders?: readonly string[]): number {
    return takenSlots([...(this.claims.get(jobId)?.values() ?? [])].map(c => c.claim), attested, now, except, builders)
  }
}
