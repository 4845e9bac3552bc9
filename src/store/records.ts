import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, Startable, TypedEventTarget } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { createEquivocationProof, decodeAttestation, decodeEquivocationProof, decodeJobAnnouncement, keyHex } from '../../protocol/index.ts'
import type { EquivocationProof, SignedAttestation, SignedJob } from '../../protocol/index.ts'
import { DEFAULT_STORE_LIMITS, pastLifetimeCeiling } from './limits.ts'
import type { StoreLimits } from './limits.ts'

const log = logger('concur:records')

const JOBS = '/concur/jobs'
const ATTESTATIONS = '/concur/attestations'
const EQUIVOCATIONS = '/concur/equivocations'

/**
 * What the store announces, after the record is in memory and persisted: a
 * listener (the requester, the event feed) reads the store and finds it there.
 * This is the one ordering rule between the daemon's ingest and everyone who
 * reacts to a record; nobody waits on a timer hoping the store got there first.
 */
export interface RecordStoreEvents {
  'job:stored': CustomEvent<SignedJob>
  'attestation:stored': CustomEvent<SignedAttestation>
  /**
   * an equivocation proof is kept (PROTOCOL.md §8.2): `detected` when this
   * node made it from two attestations of its own store (it is the one to
   * publish it), not when it came from a peer
   */
  'equivocation:stored': CustomEvent<{ proof: EquivocationProof, detected: boolean }>
  /** a job (with its claims, and its build's attestations if no other job names that build) is gone: expired past its grace, or evicted at the cap */
  'job:pruned': CustomEvent<{ jobId: string, buildId: string, reason: 'expired' | 'evicted' }>
}

/** why a record is not kept (gossip IGNOREs it: a node relays only what it keeps) */
export type RefusalCode =
  | 'ERR_UNKNOWN_BUILD'
  | 'ERR_JOB_LIFETIME'
  | 'ERR_REQUESTER_FULL'
  | 'ERR_STORE_FULL'
  | 'ERR_BUILD_FULL'
  | 'ERR_SIGNER_FULL'
  | 'ERR_PROOFS_FULL'
  | 'ERR_UNKNOWN_JOB'
  | 'ERR_DUPLICATE'
  | 'ERR_COMMITMENTS_FULL'

/**
 * `charged`: whether the refusal says something about the sender, so the
 * peer that relayed it may be charged for it (src/net/peer-budget.ts). A cap
 * reached here says only what this node holds: an honest relay with room
 * forwards such records in good faith, and must not be rate-limited for it.
 */
export interface Refusal { code: RefusalCode, reason: string, charged: boolean }

export interface RecordStore extends TypedEventTarget<RecordStoreEvents>, Startable {
  /** @returns false when the job was already held or is refused (see refusal) */
  putJob (job: SignedJob, options?: AbortOptions): Promise<boolean>
  /** @returns false when the attestation was already held or is refused (see refusal) */
  putAttestation (att: SignedAttestation, options?: AbortOptions): Promise<boolean>
  /**
   * Keep an equivocation proof (PROTOCOL.md §8.2): one per key per build,
   * for builds of held jobs, capped for keys not trusted here.
   * @returns false when a proof about that key and build is held already, or it is refused
   */
  putEquivocation (proof: EquivocationProof, options?: AbortOptions): Promise<boolean>
  /** whether a proof about this key and build (EquivocationProof.key) is held */
  hasEquivocation (key: string): boolean
  /** the proofs held about keys that equivocated on this build */
  equivocations (buildId: string): EquivocationProof[]
  /** why this record would not be kept now, or undefined if it would (duplicates are not refusals: see hasJob, hasAttestation) */
  refusal (record: StorableRecord, now?: number): Refusal | undefined
  hasJob (jobId: string): boolean
  /** whether some held job names this build (attestations are kept only for those) */
  hasBuild (buildId: string): boolean
  hasAttestation (att: SignedAttestation): boolean
  getJob (jobId: string): SignedJob | undefined
  jobs (): SignedJob[]
  attestations (buildId?: string): SignedAttestation[]
  /** counts and bytes held, against the limits (`GET /v1/stats`, the bench) */
  usage (): StoreUsage
  /** drop jobs expired more than `expiredGraceMs` ago, with what only they needed */
  prune (options?: AbortOptions & { now?: number }): Promise<number>
  /** load what an earlier run stored, under today's limits; entries that no longer decode, or are over a limit, are dropped and logged */
  load (options?: AbortOptions & { now?: number }): Promise<{ jobs: number, attestations: number, skipped: number, dropped: number }>
}

export type StorableRecord =
  | { kind: 'job', value: SignedJob }
  | { kind: 'attestation', value: SignedAttestation }
  | { kind: 'equivocation', value: EquivocationProof }

export interface StoreUsage {
  jobs: number
  jobBytes: number
  attestations: number
  untrustedAttestations: number
  untrustedAttestationBytes: number
  equivocations: number
  untrustedEquivocations: number
  limits: StoreLimits
}

export interface RecordStoreInit {
  limits?: StoreLimits
  /** the node's own did:key: jobs it signed are its requests and are never pruned nor evicted */
  own?: string
  /**
   * Whether an attestation's signer is one this node counts (its trust policy,
   * or a builder the job names): those are always kept; the rest live under
   * the untrusted caps. Asked when the attestation arrives.
   */
  trusts?: (att: SignedAttestation) => boolean
  /** how often expired jobs are pruned while started */
  pruneEveryMs?: number
  now?: () => number
}

export interface RecordStoreComponents {
  datastore: Pick<Datastore, 'put' | 'query' | 'delete'>
}

/**
 * Received jobs and attestations, kept in the node's datastore so they survive
 * a restart. Stored as the exact envelope bytes that were verified, and decoded
 * (so verified) again when loaded: a tampered datastore cannot inject records.
 * Attestations are keyed by buildId: the same build asked for by anyone has the
 * same buildId, so they are reusable across jobs.
 *
 * Bounded by StoreLimits, whatever peers send: attestations only for builds of
 * held jobs, capped per build and per key unless trusted; jobs capped per
 * requester and in all, with a lifetime ceiling; expired jobs pruned. The
 * node's own requests are exempt (they are bounded by what its owner submits).
 */
export function recordStore (init: RecordStoreInit = {}) {
  return (components: RecordStoreComponents): RecordStore => new Records(init, components)
}

/** `trusted` as judged when the proof arrived; `listed` once persisted and announced */
interface ProofEntry { proof: EquivocationProof, trusted: boolean, listed: boolean }

interface AttEntry { signer: string, trusted: boolean, bytes: number, job: string }

const signerOf = (att: SignedAttestation): string => Buffer.from(att.signer).toString('hex')
const jobKey = (jobId: string): Key => new Key(`${JOBS}/${jobId}`)
const attKey = (buildId: string, id: string): Key => new Key(`${ATTESTATIONS}/${buildId}/${id}`)
const proofKey = (proof: EquivocationProof): Key => new Key(`${EQUIVOCATIONS}/${proof.key}`)
const artifactOf = (a: SignedAttestation): string | undefined => a.claim.result.status === 'success' ? a.claim.result.artifact : undefined

class Records extends TypedEventEmitter<RecordStoreEvents> implements RecordStore {
  private readonly datastore: RecordStoreComponents['datastore']
  private readonly limits: StoreLimits
  private readonly init: RecordStoreInit
  private readonly now: () => number
  /** listed jobs, in the order received */
  private readonly jobMap = new Map<string, SignedJob>()
  /** listed attestations by buildId */
  private readonly byBuild = new Map<string, Map<string, SignedAttestation>>()

  // Accounting covers what is listed and what is being persisted: a burst of
  // concurrent puts is counted as it is admitted, so it cannot overshoot a cap
  // while the datastore writes are in flight.
  /** ids being persisted: held (a second copy is a duplicate) but not yet listed */
  private readonly persisting = new Set<string>()
  private readonly jobsOf = new Map<string, Set<string>>()
  /** held jobs (listed or being written) by buildId */
  private readonly jobsOfBuild = new Map<string, Map<string, SignedJob>>()
  private jobCount = 0
  private jobBytes = 0
  /** the node's own jobs, counted apart: they are not under the caps, so they do not fill them either */
  private ownCount = 0
  private ownBytes = 0
  private readonly attsOf = new Map<string, Map<string, AttEntry>>()
  private readonly perSigner = new Map<string, number>()
  private attCount = 0
  private untrustedCount = 0
  private untrustedBytes = 0
  /** proofs held (listed, or being persisted) by buildId, then by EquivocationProof.key */
  private readonly proofs = new Map<string, Map<string, ProofEntry>>()
  private proofCount = 0
  private untrustedProofCount = 0
  private timer: ReturnType<typeof setInterval> | undefined

  constructor (init: RecordStoreInit, components: RecordStoreComponents) {
    super()
    this.init = init
    this.limits = init.limits ?? { ...DEFAULT_STORE_LIMITS }
    this.now = init.now ?? Date.now
    this.datastore = components.datastore
  }

  start (): void {
    this.timer = setInterval(() => {
      this.prune().catch((err: Error) => { log.error('pruning failed: %e', err) })
    }, this.init.pruneEveryMs ?? 60_000)
    this.timer.unref?.()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  private isOwn (job: SignedJob): boolean {
    return this.init.own != null && job.job.requester === this.init.own
  }

  refusal (record: StorableRecord, now = this.now()): Refusal | undefined {
    if (record.kind === 'job') return this.jobRefusal(record.value, now)
    if (record.kind === 'equivocation') return this.proofRefusal(record.value, this.trusted(record.value.attestations[0]))
    return this.attRefusal(record.value, this.trusted(record.value))
  }

  private proofRefusal (proof: EquivocationProof, trusted: boolean): Refusal | undefined {
    const { buildId } = proof
    // the same rule as for attestations: a node relays only what it keeps,
    // and it keeps proofs only for builds its jobs name
    if (!this.hasBuild(buildId)) return { code: 'ERR_UNKNOWN_BUILD', charged: true, reason: `no job held here names build ${buildId}` }
    if (trusted) return undefined
    let here = 0
    for (const e of this.proofs.get(buildId)?.values() ?? []) if (!e.trusted) here++
    if (here >= this.limits.maxUntrustedEquivocationsPerBuild) return { code: 'ERR_PROOFS_FULL', charged: false, reason: `build ${buildId} already has ${here} equivocation proofs about untrusted keys` }
    if (this.untrustedProofCount >= this.limits.maxUntrustedEquivocations) return { code: 'ERR_PROOFS_FULL', charged: false, reason: `${this.untrustedProofCount} equivocation proofs about untrusted keys are held here` }
    return undefined
  }

  hasEquivocation (key: string): boolean {
    return this.proofs.get(key.slice(0, key.indexOf('/')))?.has(key) === true
  }

  equivocations (buildId: string): EquivocationProof[] {
    return [...(this.proofs.get(buildId)?.values() ?? [])].filter(e => e.listed).map(e => e.proof)
  }

  async putEquivocation (proof: EquivocationProof, options?: AbortOptions): Promise<boolean> {
    return await this.keepProof(proof, false, options)
  }

  // Like attestations, a proof is counted when admitted, before it is
  // persisted: a burst of concurrent ones cannot overshoot a cap meanwhile.
  private async keepProof (proof: EquivocationProof, detected: boolean, options?: AbortOptions): Promise<boolean> {
    if (this.hasEquivocation(proof.key)) return false
    const trusted = this.trusted(proof.attestations[0])
    const refused = this.proofRefusal(proof, trusted)
    if (refused != null) {
      log('not keeping equivocation proof %s: %s', proof.key, refused.reason)
      return false
    }
    const entry = { proof, trusted, listed: false }
    this.accountProof(entry)
    try {
      await this.datastore.put(proofKey(proof), proof.bytes, options)
    } catch (err) {
      this.unaccountProof(proof)
      throw err
    }
    // the job may have been pruned while this was written: then it goes too
    if (!this.hasBuild(proof.buildId)) {
      this.unaccountProof(proof)
      await this.datastore.delete(proofKey(proof), options)
      return false
    }
    entry.listed = true
    this.safeDispatchEvent('equivocation:stored', { detail: { proof, detected } })
    return true
  }

  private accountProof (entry: ProofEntry): void {
    let m = this.proofs.get(entry.proof.buildId)
    if (m == null) { m = new Map(); this.proofs.set(entry.proof.buildId, m) }
    m.set(entry.proof.key, entry)
    this.proofCount++
    if (!entry.trusted) this.untrustedProofCount++
  }

  private unaccountProof (proof: EquivocationProof): void {
    const m = this.proofs.get(proof.buildId)
    const e = m?.get(proof.key)
    if (m == null || e == null) return
    m.delete(proof.key)
    if (m.size === 0) this.proofs.delete(proof.buildId)
    this.proofCount--
    if (!e.trusted) this.untrustedProofCount--
  }

  /**
   * After `att` is stored: whether its key has, in this store, another
   * success for the same job naming another artifact. The first node to
   * hold both makes the proof (and is the one to publish it); a node that
   * holds a proof about this key and build already makes none.
   */
  private async detectEquivocation (att: SignedAttestation, options?: AbortOptions): Promise<void> {
    const mine = artifactOf(att)
    if (mine === undefined) return
    const signer = keyHex(att.signer)
    if (this.hasEquivocation(`${att.claim.buildId}/${signer}`)) return
    const other = this.attestations(att.claim.buildId).find(a =>
      a.claim.jobId === att.claim.jobId && artifactOf(a) !== undefined && artifactOf(a) !== mine && keyHex(a.signer) === signer)
    if (other == null) return
    await this.keepProof(createEquivocationProof(att, other), true, options)
  }

  /**
   * Kept whatever the caps for strangers: keys the node trusts (its policy,
   * its own), and the builders its own jobs of this build name.
   */
  private trusted (att: SignedAttestation): boolean {
    if (this.init.trusts?.(att) === true) return true
    // only the builders the node's own jobs name: anyone can announce a job
    // naming 128 fresh keys, and those must not escape the caps for strangers
    for (const job of this.jobsOfBuild.get(att.claim.buildId)?.values() ?? []) {
      if (this.isOwn(job) && job.job.builders?.includes(att.claim.worker) === true) return true
    }
    return false
  }

  private jobRefusal (job: SignedJob, now: number): Refusal | undefined {
    if (this.isOwn(job)) return undefined
    const l = this.limits
    if (pastLifetimeCeiling(job.job.expiresAt, now, l)) {
      return { code: 'ERR_JOB_LIFETIME', charged: true, reason: `expires at ${job.job.expiresAt}, past this node's ceiling of ${Math.round(l.maxJobLifetimeMs / 3600_000)} h from now` }
    }
    if ((this.jobsOf.get(job.job.requester)?.size ?? 0) >= l.maxJobsPerRequester) {
      return { code: 'ERR_REQUESTER_FULL', charged: false, reason: `requester ${job.job.requester} already has ${l.maxJobsPerRequester} jobs here` }
    }
    if (this.full(job.bytes.byteLength) && this.evictable() == null) {
      return { code: 'ERR_STORE_FULL', charged: false, reason: `the job store is full (${this.jobCount} jobs, ${this.jobBytes} bytes) with nothing to make room` }
    }
    return undefined
  }

  private attRefusal (att: SignedAttestation, trusted: boolean): Refusal | undefined {
    const { buildId } = att.claim
    const l = this.limits
    if (!this.hasBuild(buildId)) return { code: 'ERR_UNKNOWN_BUILD', charged: true, reason: `no job held here names build ${buildId}` }
    const entries = this.attsOf.get(buildId)
    const signer = signerOf(att)
    let sameSigner = 0
    let sameJob = 0
    let untrusted = 0
    for (const e of entries?.values() ?? []) {
      if (e.signer === signer) {
        sameSigner++
        if (e.job === att.claim.jobId) sameJob++
      }
      if (!e.trusted) untrusted++
    }
    // per job first: a key's answers to earlier jobs of the build (replayed
    // by anyone: they are genuine) must not shut out its answer to this one
    if (sameJob >= l.maxPerSignerPerJob) return { code: 'ERR_SIGNER_FULL', charged: false, reason: `key already has ${sameJob} attestations of job ${att.claim.jobId}` }
    const perBuild = trusted ? l.maxPerSignerPerBuild : Math.min(l.maxPerSignerPerBuild, l.maxPerSignerPerJob)
    if (sameSigner >= perBuild) return { code: 'ERR_SIGNER_FULL', charged: false, reason: `key already has ${sameSigner} attestations of build ${buildId}` }
    if (trusted) return undefined
    if (untrusted >= l.maxUntrustedPerBuild) return { code: 'ERR_BUILD_FULL', charged: false, reason: `build ${buildId} already has ${untrusted} attestations from untrusted keys` }
    if ((this.perSigner.get(signer) ?? 0) >= l.maxUntrustedPerSigner) return { code: 'ERR_SIGNER_FULL', charged: false, reason: `untrusted key already has ${l.maxUntrustedPerSigner} attestations here` }
    if (this.untrustedBytes + att.bytes.byteLength > l.maxUntrustedAttestationBytes && this.untrustedVictim(buildId) == null) {
      return { code: 'ERR_STORE_FULL', charged: false, reason: 'the store for untrusted attestations is full' }
    }
    return undefined
  }

  /**
   * The untrusted attestation to drop to make room for one of `incoming`: the
   * oldest of the build holding the most untrusted ones, if that is another
   * build. First come is not first kept: a flood on the attacker's own builds
   * must not lock strangers' attestations of every other build out for days.
   */
  private untrustedVictim (incoming: string): { buildId: string, id: string } | undefined {
    let most = 0
    let victim: string | undefined
    for (const [buildId, m] of this.attsOf) {
      let n = 0
      for (const e of m.values()) if (!e.trusted) n++
      if (n > most) { most = n; victim = buildId }
    }
    if (victim == null || victim === incoming) return undefined
    for (const [id, e] of this.attsOf.get(victim) ?? []) {
      // listed ones only: one still being written is not ours to drop yet
      if (!e.trusted && this.byBuild.get(victim)?.has(id) === true) return { buildId: victim, id }
    }
    return undefined
  }

  /**
   * The job to drop to make room for another: the oldest held job of the
   * requester holding the most (never the node's own; on a tie, the requester
   * heard last). One key flooding evicts its own jobs first; fresh keys with
   * one job each evict one another. A requester with many jobs still loses
   * its oldest to a flood of fresh keys (README, Known limits).
   */
  private evictable (): SignedJob | undefined {
    let largest: string | undefined
    let most = 0
    for (const [requester, ids] of this.jobsOf) {
      if (requester === this.init.own) continue
      // ties go to the requester heard last: when a flood of fresh keys holds
      // one job each, it churns itself rather than the oldest requesters' jobs
      if (ids.size >= most) { most = ids.size; largest = requester }
    }
    for (const id of this.jobsOf.get(largest ?? '') ?? []) {
      const job = this.jobMap.get(id)
      if (job != null) return job
    }
    return undefined
  }

  private account (job: SignedJob): void {
    const { requester, buildId } = job.job
    let ids = this.jobsOf.get(requester)
    if (ids == null) { ids = new Set(); this.jobsOf.set(requester, ids) }
    ids.add(job.jobId)
    let same = this.jobsOfBuild.get(buildId)
    if (same == null) { same = new Map(); this.jobsOfBuild.set(buildId, same) }
    same.set(job.jobId, job)
    this.jobCount++
    this.jobBytes += job.bytes.byteLength
    if (this.isOwn(job)) { this.ownCount++; this.ownBytes += job.bytes.byteLength }
  }

  private unaccount (job: SignedJob): void {
    const { requester, buildId } = job.job
    const ids = this.jobsOf.get(requester)
    ids?.delete(job.jobId)
    if (ids?.size === 0) this.jobsOf.delete(requester)
    const same = this.jobsOfBuild.get(buildId)
    same?.delete(job.jobId)
    if (same?.size === 0) this.jobsOfBuild.delete(buildId)
    this.jobCount--
    this.jobBytes -= job.bytes.byteLength
    if (this.isOwn(job)) { this.ownCount--; this.ownBytes -= job.bytes.byteLength }
  }

  /** whether one more job of `bytes` from a peer would pass the global caps */
  private full (bytes: number): boolean {
    return this.jobCount - this.ownCount >= this.limits.maxJobs || this.jobBytes - this.ownBytes + bytes > this.limits.maxJobBytes
  }

  private accountAtt (att: SignedAttestation, trusted: boolean): void {
    const { buildId } = att.claim
    let m = this.attsOf.get(buildId)
    if (m == null) { m = new Map(); this.attsOf.set(buildId, m) }
    const e: AttEntry = { signer: signerOf(att), trusted, bytes: att.bytes.byteLength, job: att.claim.jobId }
    m.set(att.id, e)
    this.perSigner.set(e.signer, (this.perSigner.get(e.signer) ?? 0) + 1)
    this.attCount++
    if (!trusted) { this.untrustedCount++; this.untrustedBytes += e.bytes }
  }

  private unaccountAtt (buildId: string, id: string): void {
    const m = this.attsOf.get(buildId)
    const e = m?.get(id)
    if (m == null || e == null) return
    m.delete(id)
    if (m.size === 0) this.attsOf.delete(buildId)
    const n = (this.perSigner.get(e.signer) ?? 1) - 1
    if (n > 0) this.perSigner.set(e.signer, n)
    else this.perSigner.delete(e.signer)
    this.attCount--
    if (!e.trusted) { this.untrustedCount--; this.untrustedBytes -= e.bytes }
  }

  // A record is listed only once it is persisted and announced: whoever sees
  // it in the store (an API call, a verdict) knows its 'stored' event has run,
  // so the evaluation it triggered is already scheduled.
  async putJob (job: SignedJob, options?: AbortOptions): Promise<boolean> {
    if (this.hasJob(job.jobId)) return false
    const refused = this.jobRefusal(job, this.now())
    if (refused != null) {
      log('not keeping job %s: %s', job.jobId, refused.reason)
      return false
    }
    // held from here on: a second copy arriving while room is made is a duplicate
    this.persisting.add(job.jobId)
    // room first, before this one is counted
    while (!this.isOwn(job) && this.full(job.bytes.byteLength)) {
      const victim = this.evictable()
      if (victim == null) {
        this.persisting.delete(job.jobId)
        return false
      }
      try {
        await this.dropJob(victim, 'evicted', options)
      } catch (err) {
        this.persisting.delete(job.jobId)
        throw err
      }
    }
    this.account(job)
    try {
      await this.datastore.put(jobKey(job.jobId), job.bytes, options)
    } catch (err) {
      this.unaccount(job)
      throw err
    } finally {
      this.persisting.delete(job.jobId)
    }
    this.jobMap.set(job.jobId, job)
    this.safeDispatchEvent('job:stored', { detail: job })
    return true
  }

  async putAttestation (att: SignedAttestation, options?: AbortOptions): Promise<boolean> {
    if (this.hasAttestation(att)) return false
    const trusted = this.trusted(att)
    const refused = this.attRefusal(att, trusted)
    if (refused != null) {
      log('not keeping attestation %s: %s', att.id, refused.reason)
      return false
    }
    this.persisting.add(att.id)
    if (!trusted) {
      while (this.untrustedBytes + att.bytes.byteLength > this.limits.maxUntrustedAttestationBytes) {
        const victim = this.untrustedVictim(att.claim.buildId)
        if (victim == null) {
          this.persisting.delete(att.id)
          return false
        }
        this.unaccountAtt(victim.buildId, victim.id)
        this.byBuild.get(victim.buildId)?.delete(victim.id)
        await this.datastore.delete(attKey(victim.buildId, victim.id), options)
      }
    }
    this.accountAtt(att, trusted)
    try {
      await this.datastore.put(attKey(att.claim.buildId, att.id), att.bytes, options)
    } catch (err) {
      this.unaccountAtt(att.claim.buildId, att.id)
      throw err
    } finally {
      this.persisting.delete(att.id)
    }
    // the job may have been pruned while this was written: then it goes too
    if (!this.hasBuild(att.claim.buildId)) {
      this.unaccountAtt(att.claim.buildId, att.id)
      await this.datastore.delete(attKey(att.claim.buildId, att.id), options)
      return false
    }
    let m = this.byBuild.get(att.claim.buildId)
    if (m == null) { m = new Map(); this.byBuild.set(att.claim.buildId, m) }
    m.set(att.id, att)
    this.safeDispatchEvent('attestation:stored', { detail: att })
    await this.detectEquivocation(att, options).catch((err: Error) => { log.error('keeping an equivocation proof failed: %e', err) })
    return true
  }

  /** removes a job; its build's attestations go too when no other held job names that build */
  private async dropJob (job: SignedJob, reason: 'expired' | 'evicted', options?: AbortOptions): Promise<void> {
    if (!this.jobMap.delete(job.jobId)) return
    this.unaccount(job)
    const { buildId } = job.job
    const keys = [jobKey(job.jobId)]
    if (!this.hasBuild(buildId)) {
      for (const id of [...(this.attsOf.get(buildId)?.keys() ?? [])]) {
        this.unaccountAtt(buildId, id)
        keys.push(attKey(buildId, id))
      }
      this.byBuild.delete(buildId)
      for (const e of [...(this.proofs.get(buildId)?.values() ?? [])]) {
        this.unaccountProof(e.proof)
        keys.push(proofKey(e.proof))
      }
    }
    for (const k of keys) await this.datastore.delete(k, options)
    log('dropped job %s (%s) and %d attestations', job.jobId, reason, keys.length - 1)
    this.safeDispatchEvent('job:pruned', { detail: { jobId: job.jobId, buildId, reason } })
  }

  async prune (options?: AbortOptions & { now?: number }): Promise<number> {
    const now = options?.now ?? this.now()
    let n = 0
    for (const job of [...this.jobMap.values()]) {
      if (this.isOwn(job) || Date.parse(job.job.expiresAt) + this.limits.expiredGraceMs > now) continue
      await this.dropJob(job, 'expired', options)
      n++
    }
    return n
  }

  hasJob (jobId: string): boolean {
    return this.jobMap.has(jobId) || this.persisting.has(jobId)
  }

  hasBuild (buildId: string): boolean {
    return this.jobsOfBuild.has(buildId)
  }

  hasAttestation (att: SignedAttestation): boolean {
    return this.attsOf.get(att.claim.buildId)?.has(att.id) === true
  }

  getJob (jobId: string): SignedJob | undefined {
    return this.jobMap.get(jobId)
  }

  jobs (): SignedJob[] {
    return [...this.jobMap.values()]
  }

  attestations (buildId?: string): SignedAttestation[] {
    if (buildId != null) return [...(this.byBuild.get(buildId)?.values() ?? [])]
    return [...this.byBuild.values()].flatMap(m => [...m.values()])
  }

  usage (): StoreUsage {
    return {
      jobs: this.jobCount,
      jobBytes: this.jobBytes,
      attestations: this.attCount,
      untrustedAttestations: this.untrustedCount,
      untrustedAttestationBytes: this.untrustedBytes,
      equivocations: this.proofCount,
      untrustedEquivocations: this.untrustedProofCount,
      limits: { ...this.limits }
    }
  }

  async load (options?: AbortOptions & { now?: number }): Promise<{ jobs: number, attestations: number, skipped: number, dropped: number }> {
    const now = options?.now ?? this.now()
    let skipped = 0
    let dropped = 0
    const stale: Key[] = []
    for await (const { key, value } of this.datastore.query({ prefix: JOBS }, options)) {
      let job: SignedJob
      try {
        job = decodeJobAnnouncement(value, { now, allowExpired: true })
      } catch (err) {
        skipped++
        log.error('skipping stored job %s: %s', key.toString(), (err as Error).message)
        continue
      }
      // today's limits apply to what an earlier run kept (or a run with larger limits)
      const expired = !this.isOwn(job) && Date.parse(job.job.expiresAt) + this.limits.expiredGraceMs <= now
      const over = !this.isOwn(job) && (this.full(job.bytes.byteLength) || (this.jobsOf.get(job.job.requester)?.size ?? 0) >= this.limits.maxJobsPerRequester)
      if (expired || over || this.jobMap.has(job.jobId)) {
        dropped++
        stale.push(key)
        continue
      }
      this.account(job)
      this.jobMap.set(job.jobId, job)
    }
    let na = 0
    for await (const { key, value } of this.datastore.query({ prefix: ATTESTATIONS }, options)) {
      let att: SignedAttestation
      try {
        att = decodeAttestation(value, { now })
      } catch (err) {
        skipped++
        log.error('skipping stored attestation %s: %s', key.toString(), (err as Error).message)
        continue
      }
      const trusted = this.trusted(att)
      if (this.hasAttestation(att) || this.attRefusal(att, trusted) != null) {
        dropped++
        stale.push(key)
        continue
      }
      this.accountAtt(att, trusted)
      let m = this.byBuild.get(att.claim.buildId)
      if (m == null) { m = new Map(); this.byBuild.set(att.claim.buildId, m) }
      m.set(att.id, att)
      na++
    }
    // proofs last: they are kept only for builds of the jobs just loaded
    for await (const { key, value } of this.datastore.query({ prefix: EQUIVOCATIONS }, options)) {
      let proof: EquivocationProof
      try {
        proof = decodeEquivocationProof(value, { now })
      } catch (err) {
        skipped++
        log.error('skipping stored equivocation proof %s: %s', key.toString(), (err as Error).message)
        continue
      }
      const trusted = this.trusted(proof.attestations[0])
      if (this.hasEquivocation(proof.key) || this.proofRefusal(proof, trusted) != null) {
        dropped++
        stale.push(key)
        continue
      }
      this.accountProof({ proof, trusted, listed: true })
    }
    for (const k of stale) await this.datastore.delete(k, options)
    if (dropped > 0) log('dropped %d stored records over today\'s limits or expired', dropped)
    return { jobs: this.jobCount, attestations: na, skipped, dropped }
  }
}
