import type { Claim } from '../../protocol/index.ts'

/**
 * What this node knows of who is building which job: the latest claim of each
 * worker per job (highest seq wins, so a replayed old claim cannot extend a
 * lease), and which workers already attested. A replica slot is taken by a
 * live lease or by an attestation from a worker that claimed a replica slot; a
 * lapsed lease without an attestation frees the slot, which is how a job
 * survives a worker that died mid-build.
 *
 * Why an attestation only fills a slot when its signer claimed first: anyone
 * can sign an attestation with a throw-away key at no cost, so counting every
 * attestation would let an adversary publish `replicas` of them the moment a
 * job is announced and keep every honest worker from ever building it (a lost
 * job for two signatures; test/adversary/replica-slots-…). Honest workers
 * always claim before they build, so their attestations still count.
 */
export class ClaimBook {
  private readonly claims = new Map<string, Map<string, Claim>>()

  record (claim: Claim): boolean {
    let perJob = this.claims.get(claim.jobId)
    if (perJob == null) {
      perJob = new Map()
      this.claims.set(claim.jobId, perJob)
    }
    const prev = perJob.get(claim.worker)
    if (prev != null && prev.seq >= claim.seq) return false
    perJob.set(claim.worker, claim)
    return true
  }

  /** workers holding a replica lease on `jobId` at `now` (spot checks take no slot) */
  live (jobId: string, now: number): string[] {
    const perJob = this.claims.get(jobId)
    if (perJob == null) return []
    return [...perJob.values()].filter(c => c.purpose !== 'spot-check' && Date.parse(c.leaseUntil) > now).map(c => c.worker)
  }

  /** workers that announced a spot check of `jobId` */
  spotCheckers (jobId: string): Set<string> {
    return new Set([...(this.claims.get(jobId)?.values() ?? [])].filter(c => c.purpose === 'spot-check').map(c => c.worker))
  }

  /** workers that ever claimed a replica slot of `jobId` (lapsed leases included) */
  replicaClaimants (jobId: string): Set<string> {
    return new Set([...(this.claims.get(jobId)?.values() ?? [])].filter(c => c.purpose !== 'spot-check').map(c => c.worker))
  }

  /**
   * How many replica slots are taken: live leases plus attestations from
   * workers that claimed a replica slot, not counting rebuilders (their
   * attestation is extra evidence, not a replica) nor unclaimed attestations.
   */
  taken (jobId: string, attested: Iterable<string>, now: number, except?: string): number {
    const workers = new Set<string>(this.live(jobId, now))
    const claimants = this.replicaClaimants(jobId)
    for (const w of attested) if (claimants.has(w)) workers.add(w)
    if (except != null) workers.delete(except)
    return workers.size
  }

  forget (jobId: string): void {
    this.claims.delete(jobId)
  }
}
