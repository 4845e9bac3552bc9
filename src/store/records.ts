import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import type { AbortOptions } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { decodeAttestation, decodeJobAnnouncement } from '../../protocol/index.ts'
import type { SignedAttestation, SignedJob } from '../../protocol/index.ts'

const log = logger('concur:records')

const JOBS = '/concur/jobs'
const ATTESTATIONS = '/concur/attestations'

export interface RecordStore {
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
  return (components: RecordStoreComponents): RecordStore => {
    const { datastore } = components
    const jobs = new Map<string, SignedJob>()
    const byBuild = new Map<string, Map<string, SignedAttestation>>()

    const addAtt = (att: SignedAttestation): boolean => {
      let m = byBuild.get(att.claim.buildId)
      if (m == null) {
        m = new Map()
        byBuild.set(att.claim.buildId, m)
      }
      if (m.has(att.id)) return false
      m.set(att.id, att)
      return true
    }

    return {
      async putJob (job, options) {
        if (jobs.has(job.jobId)) return false
        jobs.set(job.jobId, job)
        await datastore.put(new Key(`${JOBS}/${job.jobId}`), job.bytes, options)
        return true
      },
      async putAttestation (att, options) {
        if (!addAtt(att)) return false
        await datastore.put(new Key(`${ATTESTATIONS}/${att.claim.buildId}/${att.id}`), att.bytes, options)
        return true
      },
      hasJob (jobId) {
        return jobs.has(jobId)
      },
      hasAttestation (att) {
        return byBuild.get(att.claim.buildId)?.has(att.id) === true
      },
      getJob (jobId) {
        return jobs.get(jobId)
      },
      jobs () {
        return [...jobs.values()]
      },
      attestations (buildId) {
        if (buildId != null) return [...(byBuild.get(buildId)?.values() ?? [])]
        return [...byBuild.values()].flatMap(m => [...m.values()])
      },
      async load (options) {
        const now = options?.now ?? Date.now()
        let skipped = 0
        let nj = 0
        let na = 0
        for await (const { key, value } of datastore.query({ prefix: JOBS }, options)) {
          try {
            const job = decodeJobAnnouncement(value, { now, allowExpired: true })
            jobs.set(job.jobId, job)
            nj++
          } catch (err) {
            skipped++
            log.error('skipping stored job %s: %s', key.toString(), (err as Error).message)
          }
        }
        for await (const { key, value } of datastore.query({ prefix: ATTESTATIONS }, options)) {
          try {
            if (addAtt(decodeAttestation(value, { now }))) na++
          } catch (err) {
            skipped++
            log.error('skipping stored attestation %s: %s', key.toString(), (err as Error).message)
          }
        }
        return { jobs: nj, attestations: na, skipped }
      }
    }
  }
}
