/**
 * Commitments and first reveals, in the order this node received them
 * (PROTOCOL.md §8.3). The verdict reads both (commitmentEvidence); a worker
 * reads which builders of a job have committed before it reveals its own
 * attestation.
 *
 * The order is one counter of this node's, given to each record the moment
 * gossip hands it over (before anything is persisted), and persisted with it:
 * a restart keeps the order, so a requester that stops during a job still
 * counts what was committed in time. Times peers write are never used: the
 * rule is what this node saw first.
 *
 * Bounded whatever peers send: commitments only for jobs held here, one per
 * key per job (the first: a key that commits twice cannot choose later which
 * one it opens); always those of keys the node trusts, of builders its own
 * jobs name, and of workers holding a live replica lease on the job (the
 * builders a relay must pass on, or a flood of strangers' commitments would
 * stop the honest ones at the first hop; MAX_CLAIMANT_COMMITMENTS_PER_JOB
 * per job); of other keys at most
 * MAX_STRANGER_COMMITMENTS_PER_JOB per job and MAX_STRANGER_COMMITMENTS in
 * all. Reveals only of builds of held jobs, noted for every attestation
 * that verified (kept or not: `verified` in src/net/validate.ts), every
 * artifact a trusted key names and MAX_STRANGER_REVEALS_PER_BUILD others
 * (MAX_STRANGER_REVEALS in all). Past that cap the build is marked: every
 * artifact first seen later is placed where the cap was reached (strangers'
 * are not kept at all: with no place they count as revealed first), so a
 * copier who fills the cap to hide the reveal it copied from gains nothing
 * (the price: honest commitments after such a flood are late too, a stall
 * the flooder pays for with signatures).
 */
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { base64Decode, base64Encode, decodeCommitment, keyHex } from '../../protocol/index.ts'
import type { CommitmentEvidence, SignedAttestation, SignedCommitment, SignedJob } from '../../protocol/index.ts'
import type { Refusal, RecordStore } from './records.ts'
import { MAX_CLAIMANTS_PER_JOB } from './claim-book.ts'
import type { ConcurMessage } from '../net/validate.ts'

const log = logger('concur:commitments')

const COMMITMENTS = '/concur/commitments'
const REVEALS = '/concur/reveals'
const OVERFLOW = '/concur/reveal-overflow'
/** commitments kept per job from keys the node does not trust and that hold no lease on it */
export const MAX_STRANGER_COMMITMENTS_PER_JOB = 16
/** the same, over every job */
export const MAX_STRANGER_COMMITMENTS = 16_384
/** artifacts of one build whose first reveal is kept when only strangers name them */
export const MAX_STRANGER_REVEALS_PER_BUILD = 1024
/** the same, over every build (an entry is a CID and two numbers) */
export const MAX_STRANGER_REVEALS = 65_536
/**
 * commitments kept per job from workers holding a live lease on it (kept past
 * the stranger caps): as many as the claim book keeps claimants. Bounded per
 * job because a lapsed lease's slot goes to the next key that claims, so
 * throw-away keys taking turns would otherwise add commitments for as long
 * as the job is held
 */
export const MAX_CLAIMANT_COMMITMENTS_PER_JOB = MAX_CLAIMANTS_PER_JOB

export interface CommitmentBookEvents {
  /** a commitment kept (the first of its key for its job) */
  'commitment:stored': CustomEvent<SignedCommitment>
}

export interface CommitmentBookInit {
  /** whether this node counts a key (its policy, or its own key): asked when a record arrives */
  trusts?: (did: string) => boolean
  /** the node's own did:key: the builders its own jobs name are kept whatever the caps */
  own?: string
  /** whether `did` holds a live replica lease on `jobId` (the claim book): its commitment is kept and relayed whatever the caps */
  claimant?: (jobId: string, did: string) => boolean
  now?: () => number
}

export interface CommitmentBookComponents {
  datastore: Pick<Datastore, 'put' | 'query' | 'delete'>
  records: Pick<RecordStore, 'getJob' | 'hasJob' | 'hasBuild'> & Partial<Pick<RecordStore, 'jobs' | 'attestations' | 'equivocations'>>
}

/** why a commitment is kept: a key this node counts (or its own job's builder), a worker with a live lease, or neither (capped) */
type Standing = 'trusted' | 'claimant' | 'stranger'
interface Entry { commitment: SignedCommitment, order: number, at: number, standing: Standing }
interface Place { order: number, at: number }

const commitmentKey = (jobId: string, key: string): Key => new Key(`${COMMITMENTS}/${jobId}/${key}`)
const revealKey = (buildId: string, artifact: string): Key => new Key(`${REVEALS}/${buildId}/${artifact}`)
const overflowKey = (buildId: string): Key => new Key(`${OVERFLOW}/${buildId}`)

export class CommitmentBook extends TypedEventEmitter<CommitmentBookEvents> implements Startable {
  private readonly init: CommitmentBookInit
  private readonly components: CommitmentBookComponents
  /** jobId → raw key (hex) → the first commitment, with its place */
  private readonly byJob = new Map<string, Map<string, Entry>>()
  /** buildId → the jobs with commitments here (evidence() reads one build's) */
  private readonly jobsOfBuild = new Map<string, Set<string>>()
  /** buildId → artifact → place of the first attestation naming it */
  private readonly reveals = new Map<string, Map<string, Place>>()
  /** buildId → how many of its reveal entries only strangers named */
  private readonly strangerReveals = new Map<string, number>()
  /** buildId → where its stranger cap was reached: every artifact first seen later is placed there */
  private readonly overflow = new Map<string, Place>()
  private strangerRevealCount = 0
  private strangerCommitmentCount = 0
  private next = 1
  private readonly now: () => number

  constructor (init: CommitmentBookInit, components: CommitmentBookComponents) {
    super()
    this.init = init
    this.components = components
    this.now = init.now ?? Date.now
  }

  start (): void {}
  stop (): void {}

  /** kept whatever the caps for strangers: keys this node trusts, and the builders its own jobs name */
  private trusted (did: string, job: SignedJob | undefined): boolean {
    if (this.init.trusts?.(did) === true) return true
    // only our own jobs' builders: anyone can announce a job naming 128 fresh keys
    return job != null && this.init.own != null && job.job.requester === this.init.own && job.job.builders?.includes(did) === true
  }

  private standing (did: string, job: SignedJob): Standing {
    if (this.trusted(did, job)) return 'trusted'
    return this.init.claimant?.(job.jobId, did) === true ? 'claimant' : 'stranger'
  }

  private place (): Place {
    return { order: this.next++, at: this.now() }
  }

  /** why a commitment is not kept (gossip IGNOREs it: a node relays only what it keeps); undefined: it is kept */
  refusal (c: SignedCommitment): Refusal | undefined {
    const r = this.admit(c)
    return 'refusal' in r ? r.refusal : undefined
  }

  /** the one decision behind refusal() and put(): refused, or kept with this standing */
  private admit (c: SignedCommitment): { refusal: Refusal } | { standing: Standing } {
    const { jobId, worker } = c.commitment
    const job = this.components.records.getJob(jobId)
    if (job == null) return { refusal: { code: 'ERR_UNKNOWN_JOB', charged: true, reason: `no job ${jobId} is held here` } }
    // a commitment names its job's build: one for another build is no honest worker's
    if (job.job.buildId !== c.commitment.buildId) return { refusal: { code: 'ERR_UNKNOWN_BUILD', charged: true, reason: `job ${jobId} is of build ${job.job.buildId}, not ${c.commitment.buildId}` } }
    const here = this.byJob.get(jobId)
    if (here?.has(keyHex(c.signer)) === true) return { refusal: { code: 'ERR_DUPLICATE', charged: false, reason: `${worker} already committed on job ${jobId}` } }
    const standing = this.standing(worker, job)
    if (standing === 'trusted') return { standing }
    let same = 0
    for (const e of here?.values() ?? []) if (e.standing === standing) same++
    if (standing === 'claimant') {
      if (same >= MAX_CLAIMANT_COMMITMENTS_PER_JOB) return { refusal: { code: 'ERR_COMMITMENTS_FULL', charged: false, reason: `job ${jobId} already has ${same} commitments from workers that held a lease on it` } }
      return { standing }
    }
    if (same >= MAX_STRANGER_COMMITMENTS_PER_JOB) return { refusal: { code: 'ERR_COMMITMENTS_FULL', charged: false, reason: `job ${jobId} already has ${same} commitments from keys this node does not count` } }
    if (this.strangerCommitmentCount >= MAX_STRANGER_COMMITMENTS) return { refusal: { code: 'ERR_COMMITMENTS_FULL', charged: false, reason: `${this.strangerCommitmentCount} commitments from keys this node does not count are held here` } }
    return { standing }
  }

  /** whether this key's commitment for this job is here already (gossip IGNOREs a second one) */
  has (c: SignedCommitment): boolean {
    return this.byJob.get(c.commitment.jobId)?.has(keyHex(c.signer)) === true
  }

  /**
   * Keep a commitment (verified by gossip's validator) and give it its place
   * now, synchronously: the place is when it arrived, not when it was written.
   */
  put (c: SignedCommitment, options?: AbortOptions): boolean {
    const r = this.admit(c)
    if ('refusal' in r) return false
    const { order, at } = this.place()
    this.add({ commitment: c, order, at, standing: r.standing })
    this.persist(commitmentKey(c.commitment.jobId, keyHex(c.signer)), { order, at, bytes: base64Encode(c.bytes) }, options)
    this.safeDispatchEvent('commitment:stored', { detail: c })
    return true
  }

  private add (e: Entry): void {
    const { jobId, buildId } = e.commitment.commitment
    let here = this.byJob.get(jobId)
    if (here == null) { here = new Map(); this.byJob.set(jobId, here) }
    here.set(keyHex(e.commitment.signer), e)
    let jobs = this.jobsOfBuild.get(buildId)
    if (jobs == null) { jobs = new Set(); this.jobsOfBuild.set(buildId, jobs) }
    jobs.add(jobId)
    if (e.standing === 'stranger') this.strangerCommitmentCount++
  }

  /**
   * An attestation verified (gossip or catch-up; kept or not, before it is
   * stored): the first one naming its artifact for its build fixes that
   * artifact's reveal place. Later ones change nothing.
   */
  noteReveal (a: SignedAttestation, options?: AbortOptions): void {
    if (a.claim.result.status !== 'success') return
    const { buildId } = a.claim
    if (!this.components.records.hasBuild(buildId)) return
    const artifact = a.claim.result.artifact
    let m = this.reveals.get(buildId)
    if (m?.has(artifact) === true) return
    let place = this.overflow.get(buildId)
    const stranger = !this.trusted(a.claim.worker, this.components.records.getJob(a.claim.jobId))
    // past the mark a stranger's artifact is not kept: an artifact with no
    // place counts as revealed before everything, and one a trusted key names
    // later gets the mark's place, no later than this reveal
    if (place != null && stranger) return
    if (place == null && stranger) {
      const n = this.strangerReveals.get(buildId) ?? 0
      if (n >= MAX_STRANGER_REVEALS_PER_BUILD || this.strangerRevealCount >= MAX_STRANGER_REVEALS) {
        // no room for this one: the build is marked here, and every artifact
        // first seen from now on is placed here, as if revealed now
        place = this.place()
        this.overflow.set(buildId, place)
        this.persist(overflowKey(buildId), place, options)
        return
      }
      this.strangerReveals.set(buildId, n + 1)
      this.strangerRevealCount++
    }
    place ??= this.place()
    if (m == null) { m = new Map(); this.reveals.set(buildId, m) }
    m.set(artifact, place)
    // whose it was is kept too: a restart counts strangers' places against the caps again
    this.persist(revealKey(buildId, artifact), { ...place, stranger }, options)
  }

  /**
   * A message verified at gossip (src/net/validate.ts `verified`), whether or
   * not the node keeps it: an attestation's CID, and both CIDs of an
   * equivocation proof, are public from now on.
   */
  verified (m: ConcurMessage): void {
    if (m.kind === 'attestation') this.noteReveal(m.value)
    else if (m.kind === 'equivocation') for (const a of m.value.attestations) this.noteReveal(a)
  }

  /** the verdict's input for one build (PROTOCOL.md §8.3) */
  evidence (buildId: string): CommitmentEvidence {
    const commitments: Array<CommitmentEvidence['commitments'][number]> = []
    for (const jobId of this.jobsOfBuild.get(buildId) ?? []) {
      for (const e of this.byJob.get(jobId)?.values() ?? []) commitments.push({ commitment: e.commitment.commitment, signer: e.commitment.signer, order: e.order, at: e.at })
    }
    return { commitments, revealed: new Map(this.reveals.get(buildId) ?? []) }
  }

  /** the commitments held for one job (a worker waits on its builders' before it reveals; bundles carry them) */
  commitments (jobId: string): SignedCommitment[] {
    return [...(this.byJob.get(jobId)?.values() ?? [])].sort((a, b) => a.order - b.order).map(e => e.commitment)
  }

  /** forget a job's commitments, and its build's reveals when no held job names the build (after the record store pruned it) */
  async forget (jobId: string, buildId: string, options?: AbortOptions): Promise<void> {
    const here = this.byJob.get(jobId)
    this.byJob.delete(jobId)
    this.jobsOfBuild.get(buildId)?.delete(jobId)
    if (this.jobsOfBuild.get(buildId)?.size === 0) this.jobsOfBuild.delete(buildId)
    for (const [key, e] of here ?? []) {
      if (e.standing === 'stranger') this.strangerCommitmentCount--
      await this.components.datastore.delete(commitmentKey(jobId, key), options)
    }
    if (this.components.records.hasBuild(buildId)) return
    const m = this.reveals.get(buildId)
    this.reveals.delete(buildId)
    this.strangerRevealCount -= this.strangerReveals.get(buildId) ?? 0
    this.strangerReveals.delete(buildId)
    if (this.overflow.delete(buildId)) await this.components.datastore.delete(overflowKey(buildId), options)
    for (const artifact of m?.keys() ?? []) await this.components.datastore.delete(revealKey(buildId, artifact), options)
  }

  /**
   * Read back what was kept before a restart, verifying each commitment
   * again (a tampered datastore cannot inject one), and continue the counter
   * after the highest place seen. Records of jobs no longer held are dropped.
   * Run after the record store loaded: an artifact of a stored attestation
   * (or proof) with no reveal place on record (the place's write was lost
   * in a crash) is placed before everything, so no commitment counts for it.
   */
  async load (options?: AbortOptions & { now?: number }): Promise<{ commitments: number, reveals: number }> {
    const now = options?.now ?? Date.now()
    let commitments = 0
    let reveals = 0
    const stale: Key[] = []
    const placeOf = (x: unknown): Place | undefined => {
      const p = x as Partial<Place> | null
      return p != null && Number.isSafeInteger(p.order) && (p.order as number) >= 0 && Number.isFinite(p.at) ? { order: p.order as number, at: p.at as number } : undefined
    }
    for await (const { key, value } of this.components.datastore.query({ prefix: COMMITMENTS }, options)) {
      try {
        const stored = JSON.parse(new TextDecoder().decode(value)) as { bytes: string }
        const place = placeOf(stored)
        const c = decodeCommitment(base64Decode(stored.bytes), { now, maxFutureSkewMs: Number.MAX_SAFE_INTEGER })
        const job = this.components.records.getJob(c.commitment.jobId)
        if (place == null || place.order < 1 || job == null) { stale.push(key); continue }
        this.add({ commitment: c, ...place, standing: this.standing(c.commitment.worker, job) })
        this.next = Math.max(this.next, place.order + 1)
        commitments++
      } catch (err) {
        log.error('skipping stored commitment %s: %s', key.toString(), (err as Error).message)
        stale.push(key)
      }
    }
    for (const prefix of [REVEALS, OVERFLOW]) {
      for await (const { key, value } of this.components.datastore.query({ prefix }, options)) {
        const [buildId, artifact] = key.toString().slice(prefix.length + 1).split('/')
        let place: Place | undefined
        let stranger = false
        try {
          const stored = JSON.parse(new TextDecoder().decode(value)) as unknown
          place = placeOf(stored)
          stranger = (stored as { stranger?: unknown } | null)?.stranger === true
        } catch { place = undefined }
        if (buildId == null || place == null || !this.components.records.hasBuild(buildId) || (prefix === REVEALS && artifact == null)) { stale.push(key); continue }
        if (prefix === OVERFLOW) this.overflow.set(buildId, place)
        else {
          let m = this.reveals.get(buildId)
          if (m == null) { m = new Map(); this.reveals.set(buildId, m) }
          m.set(artifact!, place)
          if (stranger) {
            this.strangerReveals.set(buildId, (this.strangerReveals.get(buildId) ?? 0) + 1)
            this.strangerRevealCount++
          }
          reveals++
        }
        this.next = Math.max(this.next, place.order + 1)
      }
    }
    for (const key of stale) await this.components.datastore.delete(key, options)
    // stored attestations whose reveal place was lost: before everything
    const records = this.components.records
    if (records.jobs != null && records.attestations != null) {
      for (const buildId of new Set(records.jobs().map(j => j.job.buildId))) {
        const held = [...records.attestations(buildId), ...(records.equivocations?.(buildId) ?? []).flatMap(p => p.attestations)]
        for (const a of held) {
          if (a.claim.result.status !== 'success') continue
          let m = this.reveals.get(buildId)
          if (m == null) { m = new Map(); this.reveals.set(buildId, m) }
          if (!m.has(a.claim.result.artifact)) m.set(a.claim.result.artifact, { order: 0, at: 0 })
        }
      }
    }
    return { commitments, reveals }
  }

  private persist (key: Key, value: unknown, options?: AbortOptions): void {
    Promise.resolve(this.components.datastore.put(key, new TextEncoder().encode(JSON.stringify(value)), options))
      .catch((err: Error) => { log.error('persisting %s failed: %e', key.toString(), err) })
  }
}

export function commitmentBook (init: CommitmentBookInit = {}) {
  return (components: CommitmentBookComponents): CommitmentBook => new CommitmentBook(init, components)
}
