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
 * one it opens), every key the node trusts or the job names, and at most
 * MAX_STRANGER_COMMITMENTS_PER_JOB others; reveals only of builds of held
 * jobs, every artifact a trusted key names and MAX_STRANGER_REVEALS_PER_BUILD
 * others. A stranger's artifact past that cap is not on record, so a
 * commitment to it never counts, which costs nothing: strangers are not
 * counted anyway. What the cap can hide is a stranger's early reveal, the
 * way a copier might have learned a CID; a stranger that floods the cap to
 * hide one is colluding, which §8.3 says no ordering catches.
 */
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { base64Decode, base64Encode, decodeCommitment, keyHex } from '../../protocol/index.ts'
import type { CommitmentEvidence, SignedAttestation, SignedCommitment, SignedJob } from '../../protocol/index.ts'
import type { Refusal, RecordStore } from './records.ts'

const log = logger('concur:commitments')

const COMMITMENTS = '/concur/commitments'
const REVEALS = '/concur/reveals'
/** commitments kept per job from keys the node neither trusts nor the job names */
export const MAX_STRANGER_COMMITMENTS_PER_JOB = 16
/** artifacts of one build whose first reveal is kept when only strangers name them */
export const MAX_STRANGER_REVEALS_PER_BUILD = 64

export interface CommitmentBookEvents {
  /** a commitment kept (the first of its key for its job) */
  'commitment:stored': CustomEvent<SignedCommitment>
}

export interface CommitmentBookInit {
  /** whether this node counts a key (its policy, or its own key): asked when a record arrives */
  trusts?: (did: string) => boolean
}

export interface CommitmentBookComponents {
  datastore: Pick<Datastore, 'put' | 'query' | 'delete'>
  records: Pick<RecordStore, 'getJob' | 'hasJob' | 'hasBuild'>
}

interface Entry { commitment: SignedCommitment, order: number }

const commitmentKey = (jobId: string, key: string): Key => new Key(`${COMMITMENTS}/${jobId}/${key}`)
const revealKey = (buildId: string, artifact: string): Key => new Key(`${REVEALS}/${buildId}/${artifact}`)

export class CommitmentBook extends TypedEventEmitter<CommitmentBookEvents> implements Startable {
  private readonly init: CommitmentBookInit
  private readonly components: CommitmentBookComponents
  /** jobId → raw key (hex) → the first commitment, with its place */
  private readonly byJob = new Map<string, Map<string, Entry>>()
  /** buildId → artifact → place of the first attestation naming it */
  private readonly reveals = new Map<string, Map<string, number>>()
  /** buildId → how many of its reveal entries only strangers named */
  private readonly strangerReveals = new Map<string, number>()
  private next = 1

  constructor (init: CommitmentBookInit, components: CommitmentBookComponents) {
    super()
    this.init = init
    this.components = components
  }

  start (): void {}
  stop (): void {}

  private trusted (did: string, job: SignedJob | undefined): boolean {
    return this.init.trusts?.(did) === true || job?.job.builders?.includes(did) === true
  }

  /** why a commitment is not kept (gossip IGNOREs it: a node relays only what it keeps); undefined: it is kept */
  refusal (c: SignedCommitment): Refusal | undefined {
    const { jobId, worker } = c.commitment
    const job = this.components.records.getJob(jobId)
    if (job == null) return { code: 'ERR_UNKNOWN_JOB', charged: false, reason: `no job ${jobId} is held here` }
    // a commitment names its job's build: one for another build is no honest worker's
    if (job.job.buildId !== c.commitment.buildId) return { code: 'ERR_UNKNOWN_BUILD', charged: true, reason: `job ${jobId} is of build ${job.job.buildId}, not ${c.commitment.buildId}` }
    const here = this.byJob.get(jobId)
    if (here?.has(keyHex(c.signer)) === true) return { code: 'ERR_DUPLICATE', charged: false, reason: `${worker} already committed on job ${jobId}` }
    if (!this.trusted(worker, job)) {
      const strangers = [...(here?.values() ?? [])].filter(e => !this.trusted(e.commitment.commitment.worker, job)).length
      if (strangers >= MAX_STRANGER_COMMITMENTS_PER_JOB) return { code: 'ERR_COMMITMENTS_FULL', charged: false, reason: `job ${jobId} already has ${strangers} commitments from keys this node does not count` }
    }
    return undefined
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
    if (this.refusal(c) != null) return false
    const order = this.next++
    let here = this.byJob.get(c.commitment.jobId)
    if (here == null) { here = new Map(); this.byJob.set(c.commitment.jobId, here) }
    here.set(keyHex(c.signer), { commitment: c, order })
    this.persist(commitmentKey(c.commitment.jobId, keyHex(c.signer)), { order, bytes: base64Encode(c.bytes) }, options)
    this.safeDispatchEvent('commitment:stored', { detail: c })
    return true
  }

  /**
   * An attestation arrived (gossip or catch-up, before it is stored): the
   * first one naming its artifact for its build fixes that artifact's reveal
   * place. Later ones change nothing.
   */
  noteReveal (a: SignedAttestation, options?: AbortOptions): void {
    if (a.claim.result.status !== 'success') return
    const { buildId } = a.claim
    if (!this.components.records.hasBuild(buildId)) return
    const artifact = a.claim.result.artifact
    let m = this.reveals.get(buildId)
    if (m?.has(artifact) === true) return
    const stranger = !this.trusted(a.claim.worker, this.components.records.getJob(a.claim.jobId))
    if (stranger) {
      const n = this.strangerReveals.get(buildId) ?? 0
      if (n >= MAX_STRANGER_REVEALS_PER_BUILD) return
      this.strangerReveals.set(buildId, n + 1)
    }
    if (m == null) { m = new Map(); this.reveals.set(buildId, m) }
    const order = this.next++
    m.set(artifact, order)
    this.persist(revealKey(buildId, artifact), { order }, options)
  }

  /** the verdict's input for one build (PROTOCOL.md §8.3) */
  evidence (buildId: string): CommitmentEvidence {
    const commitments: Array<CommitmentEvidence['commitments'][number]> = []
    for (const here of this.byJob.values()) {
      for (const e of here.values()) {
        if (e.commitment.commitment.buildId === buildId) commitments.push({ commitment: e.commitment.commitment, signer: e.commitment.signer, order: e.order })
      }
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
    for (const key of here?.keys() ?? []) await this.components.datastore.delete(commitmentKey(jobId, key), options)
    if (this.components.records.hasBuild(buildId)) return
    const m = this.reveals.get(buildId)
    this.reveals.delete(buildId)
    this.strangerReveals.delete(buildId)
    for (const artifact of m?.keys() ?? []) await this.components.datastore.delete(revealKey(buildId, artifact), options)
  }

  /**
   * Read back what was kept before a restart, verifying each commitment
   * again (a tampered datastore cannot inject one), and continue the counter
   * after the highest place seen. Records of jobs no longer held are dropped.
   */
  async load (options?: AbortOptions & { now?: number }): Promise<{ commitments: number, reveals: number }> {
    const now = options?.now ?? Date.now()
    let commitments = 0
    let reveals = 0
    const stale: Key[] = []
    for await (const { key, value } of this.components.datastore.query({ prefix: COMMITMENTS }, options)) {
      try {
        const { order, bytes } = JSON.parse(new TextDecoder().decode(value)) as { order: number, bytes: string }
        const c = decodeCommitment(base64Decode(bytes), { now, maxFutureSkewMs: Number.MAX_SAFE_INTEGER })
        if (!Number.isSafeInteger(order) || order < 1 || !this.components.records.hasJob(c.commitment.jobId)) { stale.push(key); continue }
        let here = this.byJob.get(c.commitment.jobId)
        if (here == null) { here = new Map(); this.byJob.set(c.commitment.jobId, here) }
        here.set(keyHex(c.signer), { commitment: c, order })
        this.next = Math.max(this.next, order + 1)
        commitments++
      } catch (err) {
        log.error('skipping stored commitment %s: %s', key.toString(), (err as Error).message)
        stale.push(key)
      }
    }
    for await (const { key, value } of this.components.datastore.query({ prefix: REVEALS }, options)) {
      const [buildId, artifact] = key.toString().slice(REVEALS.length + 1).split('/')
      try {
        const { order } = JSON.parse(new TextDecoder().decode(value)) as { order: number }
        if (buildId == null || artifact == null || !Number.isSafeInteger(order) || order < 1 || !this.components.records.hasBuild(buildId)) { stale.push(key); continue }
        let m = this.reveals.get(buildId)
        if (m == null) { m = new Map(); this.reveals.set(buildId, m) }
        m.set(artifact, order)
        this.next = Math.max(this.next, order + 1)
        reveals++
      } catch {
        stale.push(key)
      }
    }
    for (const key of stale) await this.components.datastore.delete(key, options)
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
