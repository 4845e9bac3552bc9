import { createHash } from 'node:crypto'
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { logger } from '@libp2p/logger'
import { createClaim, LEASE_MS, LEASE_RENEW_MS, CLAIM_JITTER_MAX_MS } from '../../protocol/index.ts'
import type { ClaimPurpose, SandboxTier, SignedAttestation, SignedJob, SigningKey } from '../../protocol/index.ts'
import type { ConcurGossip } from '../net/gossip.ts'
import type { RecordStore } from '../store/records.ts'
import type { ClaimBook } from '../store/claim-book.ts'
import { decideJob } from './volunteer-policy.ts'
import type { VolunteerPolicy } from './volunteer-policy.ts'
import { isWorkerError } from './errors.ts'
import { runBuild } from './run-build.ts'
import type { BuildComponents, BuildProgress } from './run-build.ts'

const log = logger('concur:worker')

/** the longest stop() waits for aborted builds to end */
const STOP_BOUND_MS = 10_000

const STARTED = '/concur/worker/started'
const FINISHED = '/concur/worker/finished'

export type WorkerEvent =
  | { type: 'job:declined', jobId: string, reason: string }
  | { type: 'job:claimed', jobId: string, buildId: string }
  | { type: 'job:spot-check', jobId: string, requester: string }
  | { type: 'build:progress', jobId: string, progress: BuildProgress }
  | { type: 'build:attested', jobId: string, buildId: string, result: SignedAttestation['claim']['result'] }
  | { type: 'build:abandoned', jobId: string, reason: string }
  | { type: 'build:error', jobId: string, message: string }

export interface WorkerComponents extends BuildComponents {
  gossip: Pick<ConcurGossip, 'publish'>
  /** jobs are considered when the store announces them ('job:stored'), and at each scan */
  records: Pick<RecordStore, 'jobs' | 'attestations' | 'getJob' | 'addEventListener' | 'removeEventListener'>
  datastore: Pick<Datastore, 'put' | 'has' | 'query'>
  /** the node's claim book; whoever owns it records every claim the node validates */
  claims: Pick<ClaimBook, 'record' | 'taken'>
}

export interface WorkerInit {
  key: SigningKey
  peerId: string
  policy: VolunteerPolicy
  tier: SandboxTier | null
  workDir: string
  fetchTimeoutMs?: number
  leaseMs?: number
  renewMs?: number
  /** how often open jobs are re-examined (lapsed leases, missed messages) */
  scanMs?: number
  now?: () => number
  onEvent?: (e: WorkerEvent) => void
  /** demos and adversary tests only: see BuildInit.tamperOutput */
  tamperOutput?: boolean
  /**
   * Rebuilder mode, the airport-style spot check: independently rebuild jobs of
   * these requesters, and a random `sample` fraction of all jobs, whatever the
   * replica count says (a rebuilder's attestation is extra evidence, not a
   * replica). With `only`, ordinary jobs are left to other workers.
   */
  rebuild?: { requesters: string[], sample: number, only: boolean }
}

/**
 * Whether a rebuilder spot-checks a job: a deterministic draw from the job id
 * and the rebuilder's key, so a restart does not change the sample and a
 * requester cannot predict which rebuilder will check which job.
 */
export function sampled (jobId: string, did: string, fraction: number): boolean {
  if (fraction <= 0) return false
  if (fraction >= 1) return true
  const h = createHash('sha256').update(`${did}\n${jobId}`).digest()
  return h.readUInt32BE(0) / 0x1_0000_0000 < fraction
}

export interface Worker {
  start (): Promise<void>
  stop (): Promise<void>
  running (): string[]
}

/**
 * The worker service: hears jobs, applies the volunteer's policy, takes a
 * replica slot with a signed, leased claim, builds, attests, and keeps the
 * artifact. Work coordination (protocol/PROTOCOL.md §7, counted by
 * protocol's takenSlots): a worker claims a job only while fewer than
 * `replicas` distinct workers hold a live lease or have attested after
 * claiming a replica slot; it renews its lease while building; a lease that
 * lapses without an attestation frees the slot for another worker.
 */
export function worker (init: WorkerInit) {
  return (components: WorkerComponents): Worker => {
    const now = init.now ?? Date.now
    const leaseMs = init.leaseMs ?? LEASE_MS
    const renewMs = init.renewMs ?? LEASE_RENEW_MS
    const scanMs = init.scanMs ?? 2000
    const book = components.claims
    const running = new Map<string, AbortController>()
    /** every build under way, so stop() waits for them to end, not for a timer */
    const builds = new Set<Promise<void>>()
    const declined = new Set<string>()
    const done = new Set<string>()
    const considering = new Set<string>()
    let scanTimer: ReturnType<typeof setInterval> | undefined
    let stopped = false
    let seq = now()

    const emit = (e: WorkerEvent): void => {
      try { init.onEvent?.(e) } catch { /* a listener must not break the worker */ }
    }

    const publishClaim = async (job: SignedJob, purpose: ClaimPurpose): Promise<void> => {
      const t = now()
      const signed = createClaim({
        jobId: job.jobId,
        buildId: job.job.buildId,
        worker: init.key.did,
        workerPeerId: init.peerId,
        issuedAt: new Date(t).toISOString(),
        leaseUntil: new Date(t + leaseMs).toISOString(),
        seq: ++seq,
        ...(purpose === 'spot-check' ? { purpose } : {})
      }, init.key)
      book.record(signed)
      await components.gossip.publish('claim', signed.bytes)
    }

    const attestedWorkers = (job: SignedJob): string[] =>
      components.records.attestations(job.job.buildId).filter(a => a.claim.jobId === job.jobId).map(a => a.claim.worker)

    const build = async (job: SignedJob, parallelism: number, purpose: ClaimPurpose): Promise<void> => {
      const ac = new AbortController()
      running.set(job.jobId, ac)
      const renew = setInterval(() => { void publishClaim(job, purpose).catch(() => {}) }, renewMs)
      try {
        await publishClaim(job, purpose)
        emit({ type: 'job:claimed', jobId: job.jobId, buildId: job.job.buildId })
        // recorded before the build starts: a worker killed mid-build finds this
        // on restart and never attests the interrupted build
        await components.datastore.put(new Key(`${STARTED}/${job.jobId}`), new TextEncoder().encode(new Date(now()).toISOString()))
        const att = await runBuild(components, {
          job,
          key: init.key,
          peerId: init.peerId,
          tier: init.tier as SandboxTier,
          parallelism,
          workDir: init.workDir,
          inputLimits: { maxBytes: init.policy.maxInputBytes, maxEntries: init.policy.maxInputEntries, maxDirectoryBytes: init.policy.maxInputDirectoryBytes },
          fetchTimeoutMs: init.fetchTimeoutMs ?? 120_000,
          now,
          tamperOutput: init.tamperOutput,
          onProgress: (progress) => { emit({ type: 'build:progress', jobId: job.jobId, progress }) }
        }, { signal: ac.signal })
        await components.gossip.publish('attestation', att.bytes)
        await components.datastore.put(new Key(`${FINISHED}/${job.jobId}`), att.bytes)
        emit({ type: 'build:attested', jobId: job.jobId, buildId: job.job.buildId, result: att.claim.result })
      } catch (err) {
        if (isWorkerError(err) && err.code === 'ERR_INPUT_FETCH') {
          emit({ type: 'build:abandoned', jobId: job.jobId, reason: err.message })
        } else if (!stopped) {
          log.error('build of %s failed: %e', job.jobId, err)
          emit({ type: 'build:error', jobId: job.jobId, message: (err as Error).message })
        }
      } finally {
        clearInterval(renew)
        running.delete(job.jobId)
        done.add(job.jobId)
      }
    }

    const consider = async (job: SignedJob): Promise<void> => {
      if (stopped || done.has(job.jobId) || running.has(job.jobId) || declined.has(job.jobId) || considering.has(job.jobId)) return
      if (Date.parse(job.job.expiresAt) <= now()) return
      const decision = decideJob(job, init.policy, init.tier)
      if (!decision.accept) {
        declined.add(job.jobId)
        log('declined job %s: %s', job.jobId, decision.reason)
        emit({ type: 'job:declined', jobId: job.jobId, reason: decision.reason })
        return
      }
      if (running.size >= init.policy.maxConcurrent) return
      const rb = init.rebuild
      const spotCheck = rb != null && (rb.requesters.includes(job.job.requester) || sampled(job.jobId, init.key.did, rb.sample))
      if (rb?.only === true && !spotCheck) return
      if (!spotCheck && book.taken(job.jobId, attestedWorkers(job), now(), init.key.did) >= job.job.replicas) return
      considering.add(job.jobId)
      try {
        // a random delay spreads workers that heard the job at the same moment,
        // so their claims are seen before others pile on; it grows with how
        // contested the job already is, so an untouched job starts at once
        // (measured: submit→accepted overhead p50 412 → 144 ms via the API;
        // README.md, "Benchmarks", the submit → accepted row)
        const taken = book.taken(job.jobId, attestedWorkers(job), now(), init.key.did)
        const spreadMs = Math.min(CLAIM_JITTER_MAX_MS, 50 + 150 * taken)
        await new Promise(resolve => setTimeout(resolve, Math.floor(Math.random() * spreadMs)))
        if (stopped || running.size >= init.policy.maxConcurrent) return
        if (!spotCheck && book.taken(job.jobId, attestedWorkers(job), now(), init.key.did) >= job.job.replicas) return
        if (spotCheck) emit({ type: 'job:spot-check', jobId: job.jobId, requester: job.job.requester })
        const b = build(job, decision.parallelism, spotCheck ? 'spot-check' : 'replica')
        builds.add(b)
        void b.finally(() => { builds.delete(b) })
      } finally {
        considering.delete(job.jobId)
      }
    }

    const onJob = (evt: CustomEvent<SignedJob>): void => { void consider(evt.detail) }

    const scan = (): void => {
      for (const job of components.records.jobs()) void consider(job)
    }

    return {
      async start () {
        // builds interrupted by a crash: never attested, never retried here
        for await (const { key } of components.datastore.query({ prefix: STARTED })) {
          const jobId = key.baseNamespace()
          done.add(jobId)
          if (!(await components.datastore.has(new Key(`${FINISHED}/${jobId}`)))) {
            emit({ type: 'build:abandoned', jobId, reason: 'interrupted by a restart of this worker' })
          }
        }
        components.records.addEventListener('job:stored', onJob)
        scanTimer = setInterval(scan, scanMs)
        scanTimer.unref?.()
        scan()
      },
      async stop () {
        stopped = true
        components.records.removeEventListener('job:stored', onJob)
        if (scanTimer != null) clearInterval(scanTimer)
        for (const ac of running.values()) ac.abort()
        // an aborted build ends once its sandbox is torn down; a bound, in
        // case one does not (the daemon must still stop)
        let bound: ReturnType<typeof setTimeout> | undefined
        await Promise.race([
          Promise.allSettled([...builds]),
          new Promise(resolve => { bound = setTimeout(resolve, STOP_BOUND_MS) })
        ])
        clearTimeout(bound)
      },
      running () {
        return [...running.keys()]
      }
    }
  }
}
