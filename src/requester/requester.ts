import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { evaluateVerdict } from '../../protocol/index.ts'
import type { SignedJob, TrustPolicy, Verdict, VerdictStatus } from '../../protocol/index.ts'
import type { ConcurGossip } from '../net/gossip.ts'
import type { RecordStore } from '../store/records.ts'

const log = logger('concur:requester')

const REQUESTS = '/concur/requests'

export type RequestStatus = VerdictStatus | 'expired'

/** What a requester keeps per job it submitted; persisted, so a restart loses nothing. */
export interface RequestRecord {
  jobId: string
  buildId: string
  submittedAt: string
  expiresAt: string
  status: RequestStatus
  artifact?: string
  /** accepted from attestations that existed before this job: nothing was rebuilt */
  reused: boolean
  published: boolean
  counted: string[]
  dissent: Array<{ worker: string, artifact: string }>
  reasons: string[]
  history: Array<{ at: string, status: RequestStatus, artifact?: string }>
  bundle?: string
  bundleError?: string
  dispute?: { report?: string, summary?: string, error?: string }
}

export type RequesterEvent =
  | { type: 'verdict', jobId: string, status: RequestStatus, previous: RequestStatus | null, artifact?: string, counted: string[], threshold: number }
  | { type: 'bundle', jobId: string, path: string }
  | { type: 'dispute', jobId: string, report: string }

export interface RequesterComponents {
  gossip: Pick<ConcurGossip, 'publish' | 'onMessage'>
  records: Pick<RecordStore, 'attestations' | 'putJob' | 'getJob'>
  datastore: Pick<Datastore, 'put' | 'query'>
}

export interface RequesterInit {
  /** read on every evaluation: `concur policy set` takes effect without a restart */
  policy: () => TrustPolicy
  now?: () => number
  /** called once when a job is first accepted: fetch the artifact, write the bundle */
  onAccepted?: (job: SignedJob, record: RequestRecord, verdict: Verdict) => Promise<{ bundle: string }>
  /** called once when a job is first disputed */
  onDisputed?: (job: SignedJob, record: RequestRecord, verdict: Verdict) => Promise<{ report: string, summary: string }>
  onEvent?: (e: RequesterEvent) => void
  /** how often expiry is checked */
  tickMs?: number
}

export interface Requester {
  start (): Promise<void>
  stop (): Promise<void>
  submit (job: SignedJob, options?: { reuse?: boolean }): Promise<RequestRecord>
  get (jobId: string): RequestRecord | undefined
  list (): RequestRecord[]
  verdict (jobId: string): Verdict | undefined
}

function reuseNote (n: number, buildId: string): string {
  return `accepted from ${n} existing trusted attestation(s) of build ${buildId}: not rebuilt`
}

const FINAL: ReadonlySet<RequestStatus> = new Set(['failed', 'expired'])

/**
 * The requester: announces jobs, then turns the attestations that arrive into
 * a verdict under its trust policy, over time. `accepted` is not the end: a
 * later trusted dissent turns it into `disputed`, and attestations that arrive
 * after acceptance are still recorded. `expired` is decided here (not in the
 * pure verdict) because it depends on the clock.
 */
export function requester (init: RequesterInit) {
  return (components: RequesterComponents): Requester => {
    const now = init.now ?? Date.now
    const requests = new Map<string, RequestRecord>()
    const byBuild = new Map<string, Set<string>>()
    const busy = new Map<string, Promise<void>>()
    let unsubscribe: (() => void) | undefined
    let timer: ReturnType<typeof setInterval> | undefined

    const save = async (r: RequestRecord): Promise<void> => {
      await components.datastore.put(new Key(`${REQUESTS}/${r.jobId}`), new TextEncoder().encode(JSON.stringify(r)))
    }

    const index = (r: RequestRecord): void => {
      requests.set(r.jobId, r)
      let s = byBuild.get(r.buildId)
      if (s == null) { s = new Set(); byBuild.set(r.buildId, s) }
      s.add(r.jobId)
    }

    const evaluate = (r: RequestRecord): Verdict =>
      evaluateVerdict(init.policy(), r.buildId, components.records.attestations(r.buildId))

    const update = async (jobId: string): Promise<void> => {
      const r = requests.get(jobId)
      if (r == null) return
      const v = evaluate(r)
      let status: RequestStatus = v.status
      // a job past its expiry that never got a final verdict is expired; an
      // accepted/disputed/failed verdict stands (and can still change to disputed)
      if ((status === 'pending' || status === 'provisional') && Date.parse(r.expiresAt) <= now()) status = 'expired'
      if (r.status === 'expired' && (status === 'pending' || status === 'provisional')) status = 'expired'
      if (FINAL.has(r.status) && status !== 'disputed' && status !== 'accepted') status = r.status
      const previous = r.status
      const changed = status !== r.status || v.artifact !== r.artifact || v.counted.length !== r.counted.length || v.dissent.length !== r.dissent.length
      r.counted = v.counted
      r.dissent = v.dissent
      r.reasons = r.reused ? [reuseNote(v.counted.length, r.buildId), ...v.reasons] : v.reasons
      if (v.artifact != null) r.artifact = v.artifact
      if (!changed) return
      r.status = status
      r.history.push({ at: new Date(now()).toISOString(), status, ...(v.artifact != null ? { artifact: v.artifact } : {}) })
      await save(r)
      init.onEvent?.({ type: 'verdict', jobId, status, previous, artifact: r.artifact, counted: r.counted, threshold: v.threshold })
      const job = components.records.getJob(jobId)
      if (job == null) return
      if (status === 'accepted' && r.bundle == null && init.onAccepted != null) {
        try {
          const { bundle } = await init.onAccepted(job, r, v)
          r.bundle = bundle
          delete r.bundleError
          init.onEvent?.({ type: 'bundle', jobId, path: bundle })
        } catch (err) {
          r.bundleError = (err as Error).message
          log.error('bundle for %s failed: %e', jobId, err)
        }
        await save(r)
      }
      if (status === 'disputed' && r.dispute == null && init.onDisputed != null) {
        try {
          const d = await init.onDisputed(job, r, v)
          r.dispute = d
          init.onEvent?.({ type: 'dispute', jobId, report: d.report })
        } catch (err) {
          r.dispute = { error: (err as Error).message }
        }
        await save(r)
      }
    }

    // one evaluation at a time per job, and one more queued at most
    const schedule = (jobId: string): void => {
      const prev = busy.get(jobId) ?? Promise.resolve()
      const next = prev.then(async () => { await update(jobId) }).catch((err: Error) => { log.error('evaluating %s: %e', jobId, err) })
      busy.set(jobId, next)
      void next.finally(() => { if (busy.get(jobId) === next) busy.delete(jobId) })
    }

    return {
      async start () {
        for await (const { value } of components.datastore.query({ prefix: REQUESTS })) {
          try {
            index(JSON.parse(new TextDecoder().decode(value)) as RequestRecord)
          } catch (err) {
            log.error('skipping a corrupt request record: %e', err)
          }
        }
        unsubscribe = components.gossip.onMessage((m) => {
          if (m.kind !== 'attestation') return
          // the record store hears the same message; evaluate after it stored it
          setTimeout(() => {
            for (const jobId of byBuild.get(m.value.claim.buildId) ?? []) schedule(jobId)
          }, 20)
        })
        timer = setInterval(() => {
          for (const r of requests.values()) {
            if (r.status === 'pending' || r.status === 'provisional') schedule(r.jobId)
          }
        }, init.tickMs ?? 1000)
        timer.unref?.()
        // catch up on whatever arrived while we were down
        for (const r of requests.values()) schedule(r.jobId)
      },
      async stop () {
        unsubscribe?.()
        if (timer != null) clearInterval(timer)
        await Promise.allSettled([...busy.values()])
      },
      async submit (job, options = {}) {
        await components.records.putJob(job)
        const r: RequestRecord = {
          jobId: job.jobId,
          buildId: job.job.buildId,
          submittedAt: new Date(now()).toISOString(),
          expiresAt: job.job.expiresAt,
          status: 'pending',
          reused: false,
          published: false,
          counted: [],
          dissent: [],
          reasons: [],
          history: [{ at: new Date(now()).toISOString(), status: 'pending' }]
        }
        index(r)
        // reuse by buildId: the same definition already has enough trusted
        // attestations (from any earlier job), so there is nothing to rebuild
        const existing = options.reuse === false ? undefined : evaluate(r)
        if (existing?.status === 'accepted') {
          r.reused = true
          r.reasons = [reuseNote(existing.counted.length, r.buildId)]
          await save(r)
        } else {
          await components.gossip.publish('job', job.bytes)
          r.published = true
          await save(r)
        }
        schedule(r.jobId)
        await busy.get(r.jobId)
        return r
      },
      get (jobId) {
        return requests.get(jobId)
      },
      list () {
        return [...requests.values()]
      },
      verdict (jobId) {
        const r = requests.get(jobId)
        return r == null ? undefined : evaluate(r)
      }
    }
  }
}

export function cidOf (text: string): CID {
  return CID.parse(text)
}
