/** The signed records this node holds (jobs, attestations), and publishing one. */
import type { ConcurGossip } from '../../../src/net/gossip.ts'
import type { RecordStore } from '../../../src/store/records.ts'
import type { AdvertBook } from '../../../src/store/advert-book.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import { str } from './body.ts'

export interface RecordRouteDeps {
  gossip: Pick<ConcurGossip, 'publish'>
  records: Pick<RecordStore, 'jobs' | 'getJob' | 'attestations'>
  /** workers' capability adverts (PROTOCOL.md §5.4) */
  adverts?: Pick<AdvertBook, 'live'>
}

const KINDS = ['job', 'attestation', 'claim'] as const

export function recordRoutes (router: Router, deps: RecordRouteDeps): void {
  const { gossip, records } = deps

  // the live adverts this node holds: what each worker says it would take (PROTOCOL.md §5.4)
  router.on('GET', '/v1/adverts', async () => ({
    adverts: (deps.adverts?.live(Date.now()) ?? []).map(a => a.advert)
  }))

  router.on('POST', '/v1/gossip/publish', async (req) => {
    const kind = str(req.body, 'kind') as typeof KINDS[number]
    if (!KINDS.includes(kind)) throw new HttpError(400, 'ERR_BAD_REQUEST', '"kind" must be job, attestation or claim')
    const envelope = (req.body as { envelope?: unknown }).envelope
    if (typeof envelope !== 'object' || envelope == null) throw new HttpError(400, 'ERR_BAD_REQUEST', '"envelope" must be a DSSE envelope object')
    // an invalid envelope is refused by the same validator as gossip's (ERR_INVALID_MESSAGE)
    return await gossip.publish(kind, new TextEncoder().encode(JSON.stringify(envelope)))
  })

  router.on('GET', '/v1/jobs', async () => ({
    jobs: records.jobs().map(j => ({ jobId: j.jobId, buildId: j.job.buildId, requester: j.job.requester, createdAt: j.job.createdAt, expiresAt: j.job.expiresAt, replicas: j.job.replicas }))
  }))

  router.on('GET', '/v1/jobs/:id', async (req) => {
    const job = records.getJob(req.params.id ?? '')
    if (job == null) throw new HttpError(404, 'ERR_UNKNOWN_JOB', `no job ${req.params.id ?? ''} is known to this node`)
    return { jobId: job.jobId, job: job.job, envelope: job.envelope, attestations: records.attestations(job.job.buildId).map(a => ({ id: a.id, claim: a.claim })) }
  })

  router.on('GET', '/v1/attestations', async (req) => {
    const buildId = req.query.get('buildId') ?? undefined
    return { attestations: records.attestations(buildId).map(a => ({ id: a.id, claim: a.claim, envelope: a.envelope })) }
  })
}
