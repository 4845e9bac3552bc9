import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, TypedEventTarget } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { decodeAttestation, decodeJobAnnouncement } from '../../protocol/index.ts'
import type { SignedAttestation, SignedJob } from '../../protocol/index.ts'

const log = logger('concur:records')

const JOBS = '/concur/jobs'
const ATTESTATIONS = '/concur/attestations'

/**
 * What the store announces, after the record is in memory and persisted: a
 * listener (the requester, the event feed) reads the store and finds it there.
 * This is the one ordering rule between the daemon's ingest and everyone who
 * reacts to a record; nobody waits on a timer hoping the store got there first.
 */
export interface RecordStoreEvents {
  'job:stored': CustomEvent<SignedJob>
  'attestation:stored': CustomEvent<SignedAttestation>
}

export interface RecordStore extends TypedEventTarget<RecordStoreEvents> {
  /** @returns false when the job was already held */
  putJob (job: SignedJob, options?: AbortOptions): Promise<boolean>
  /** @returns false when the attestation was already held */
  putAttestation (att: SignedAttestation, options?: AbortOptions): Promise<boolean>
  hasJob (jobId: string): boolean
  hasAttestation (att: SignedAttestation): boolean
  getJob (jobId: string): SignedJob | undefined
  jobs (): SignedJob[]
  attestations (buildId?: string): SignedAttestation[]
  /** load what an earlier run stored; entries that no longer decode are skipped and logged */
  load (options?: AbortOptions & { now?: number }): Promise<{ jobs: number, attestations: number, skipped: number }>
}

export interface RecordStoreComponents {
  datastore: Pick<Datastore, 'put' | 'query'>
}

/**
 * Received jobs and attestations, kept in the node's datastore so they survive
 * a restart. Stored as the exact envelope bytes that were verified, and decoded
 * (so verified) again when loaded: a tampered datastore cannot inject records.
 * Attestations are keyed by buildId: the same build asked for by anyone has the
 * same buildId, so they are reusable across jobs.
 */
export function recordStore () {
  return (components: RecordStoreComponents): RecordStore => new Records(components)
}

class Records extends TypedEventEmitter<RecordStoreEvents> implements RecordStore {
  private readonly datastore: RecordStoreComponents['datastore']
  private readonly jobMap = new Map<string, SignedJob>()
  private readonly byBuild = new Map<string, Map<string, SignedAttestation>>()

  constructor (components: RecordStoreComponents) {
    super()
    this.datastore = components.datastore
  }

  /** ids being persisted: held (a second copy is a duplicate) but not yet listed */
  private readonly persisting = new Set<string>()

  private addAtt (att: SignedAttestation): boolean {
    let m = this.byBuild.get(att.claim.buildId)
    if (m == null) {
      m = new Map()
      this.byBuild.set(att.claim.buildId, m)
    }
    if (m.has(att.id)) return false
    m.set(att.id, att)
    return true
  }

  // A record is listed only once it is persisted and announced: whoever sees
  // it in the store (an API call, a verdict) knows its 'stored' event has run,
  // so the evaluation it triggered is already scheduled.
  async putJob (job: SignedJob, options?: AbortOptions): Promise<boolean> {
    if (this.jobMap.has(job.jobId) || this.persisting.has(job.jobId)) return false
    this.persisting.add(job.jobId)
    try {
      await this.datastore.put(new Key(`${JOBS}/${job.jobId}`), job.bytes, options)
    } finally {
      this.persisting.delete(job.jobId)
    }
    this.jobMap.set(job.jobId, job)
    this.safeDispatchEvent('job:stored', { detail: job })
    return true
  }

  async putAttestation (att: SignedAttestation, options?: AbortOptions): Promise<boolean> {
    if (this.hasAttestation(att)) return false
    this.persisting.add(att.id)
    try {
      await this.datastore.put(new Key(`${ATTESTATIONS}/${att.claim.buildId}/${att.id}`), att.bytes, options)
    } finally {
      this.persisting.delete(att.id)
    }
    this.addAtt(att)
    this.safeDispatchEvent('attestation:stored', { detail: att })
    return true
  }

  hasJob (jobId: string): boolean {
    return this.jobMap.has(jobId) || this.persisting.has(jobId)
  }

  hasAttestation (att: SignedAttestation): boolean {
    return this.byBuild.get(att.claim.buildId)?.has(att.id) === true || this.persisting.has(att.id)
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

  async load (options?: AbortOptions & { now?: number }): Promise<{ jobs: number, attestations: number, skipped: number }> {
    const now = options?.now ?? Date.now()
    let skipped = 0
    let nj = 0
    let na = 0
    for await (const { key, value } of this.datastore.query({ prefix: JOBS }, options)) {
      try {
        const job = decodeJobAnnouncement(value, { now, allowExpired: true })
        this.jobMap.set(job.jobId, job)
        nj++
      } catch (err) {
        skipped++
        log.error('skipping stored job %s: %s', key.toString(), (err as Error).message)
      }
    }
    for await (const { key, value } of this.datastore.query({ prefix: ATTESTATIONS }, options)) {
      try {
        if (this.addAtt(decodeAttestation(value, { now }))) na++
      } catch (err) {
        skipped++
        log.error('skipping stored attestation %s: %s', key.toString(), (err as Error).message)
      }
    }
    return { jobs: nj, attestations: na, skipped }
  }
}
