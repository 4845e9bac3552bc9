import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { logger } from '@libp2p/logger'
import { awaitedCommitments, claimOrder, claimOrderWaitMs, countsAsBuilder, createClaim, createCommitment, expectedBuildMs, leaseFor, LEASE_MS, REVEAL_MARGIN_MS, revealWaitMs, CLAIM_JITTER_MAX_MS, MAX_RELEASE_REASON } from '../../protocol/index.ts'
import type { LeaseTiming } from '../../protocol/index.ts'
import type { ClaimPurpose, ClaimRelease, HostToolchain, SandboxTier, SignedAttestation, SignedJob, SigningKey } from '../../protocol/index.ts'
import type { ConcurGossip } from '../net/gossip.ts'
import type { RecordStore } from '../store/records.ts'
import type { ClaimBook } from '../store/claim-book.ts'
import type { CommitmentBook } from '../store/commitment-book.ts'
import { decideJob, perRequesterLimits } from './volunteer-policy.ts'
import type { VolunteerPolicy } from './volunteer-policy.ts'
import { FairQueue } from './fair-queue.ts'
import { PeerBudget } from '../net/peer-budget.ts'
import { INPUT_PROBE_MS, INPUT_RETRY_MS, MAX_INPUT_PROBES, MAX_ROOT_BLOCK_BYTES, probeInputs } from './input-probe.ts'
import { isWorkerError } from './errors.ts'
import { runBuild } from './run-build.ts'
import type { BuildComponents, BuildProgress } from './run-build.ts'

const log = logger('concur:worker')

/**
 * Releases (PROTOCOL.md §7 rule 6) a worker publishes per minute at most, and
 * at once: a flood of jobs this worker declines, or whose inputs never come,
 * must not become a flood of its releases on the claims topic.
 */
export const RELEASES_PER_MINUTE = 30
/**
 * Of those, at most this many for one requester's jobs: a requester naming
 * this worker in many jobs it cannot take must not use up what the others'
 * releases need (a suppressed release is not sent later).
 */
export const RELEASES_PER_REQUESTER_PER_MINUTE = 10

/**
 * A reason as it may go on the network: whole characters (a cut through a
 * surrogate pair made the claim refuse it, and the release was lost), no
 * NUL, at most MAX_RELEASE_REASON characters, and none of this machine's
 * paths (the volunteer's work directory and home).
 */
export function releaseReason (text: string, paths: { workDir?: string, home?: string } = {}): string {
  let t = text.toWellFormed().replaceAll('\u0000', '')
  if (paths.workDir != null && paths.workDir !== '') t = t.replaceAll(paths.workDir, '<work>')
  if (paths.home != null && paths.home.length > 1) t = t.replaceAll(paths.home, '~')
  if (t.length > MAX_RELEASE_REASON) {
    // the limit counts UTF-16 units (as the claim's check does); the cut keeps whole characters
    let kept = ''
    for (const ch of t) {
      if (kept.length + ch.length > MAX_RELEASE_REASON - 1) break
      kept += ch
    }
    t = kept + '…'
  }
  return t === '' ? 'no reason given' : t
}

/**
 * How long a job's source or environment may take to arrive, by default
 * (`--fetch-timeout`). It was 120 s: a 555 MB build environment from one
 * provider did not make it, and every worker gave the job up at ~80 MB.
 */
export const DEFAULT_FETCH_TIMEOUT_MS = 600_000

/**
 * Environments whose last build duration a worker remembers (for the lease of
 * its next build on them, PROTOCOL.md §7 rule 1); the oldest is forgotten first.
 */
export const MAX_REMEMBERED_DURATIONS = 256

/** the longest stop() waits for aborted builds to end */
const STOP_BOUND_MS = 10_000

const STARTED = '/concur/worker/started'
const FINISHED = '/concur/worker/finished'

export type WorkerEvent =
  | { type: 'job:declined', jobId: string, reason: string }
  | { type: 'job:claimed', jobId: string, buildId: string, requester: string }
  /** the job's inputs did not come within the probe's bound: not claimed, offered again in `retryInMs` */
  | { type: 'job:inputs-unavailable', jobId: string, attempt: number, retryInMs: number, reason: string }
  | { type: 'job:spot-check', jobId: string, requester: string }
  | { type: 'build:progress', jobId: string, progress: BuildProgress }
  /** what was built for whom, when and with what (the attestation's own fields): the dashboard's worker page */
  | { type: 'build:attested', jobId: string, buildId: string, requester: string, result: SignedAttestation['claim']['result'], startedAt: string, finishedAt: string, sandboxTier: SandboxTier, parallelism: number }
  /** a success committed to (PROTOCOL.md §8.3): its attestation waits for the job's other builders' commitments, `waitMs` at most */
  | { type: 'build:committed', jobId: string, buildId: string, artifact: string, waitMs: number }
  | { type: 'build:abandoned', jobId: string, reason: string }
  | { type: 'build:error', jobId: string, message: string }
  /** a signed release told the network (and the requester) why this worker is not building the job */
  | { type: 'job:released', jobId: string, release: ClaimRelease }
  /** a release that was due but not published: over RELEASES_PER_MINUTE */
  | { type: 'job:release-suppressed', jobId: string, release: ClaimRelease }

export interface WorkerComponents extends BuildComponents {
  gossip: Pick<ConcurGossip, 'publish'>
  /** jobs are considered when the store announces them ('job:stored'), and at each scan */
  records: Pick<RecordStore, 'jobs' | 'attestations' | 'getJob' | 'addEventListener' | 'removeEventListener'>
  datastore: Pick<Datastore, 'put' | 'has' | 'query'>
  /** the node's claim book; whoever owns it records every claim the node validates */
  claims: Pick<ClaimBook, 'record' | 'taken' | 'claimsOf'>
  /**
   * Commitments held (PROTOCOL.md §8.3): a success is committed to first and
   * revealed once the job's other builders have committed too. None: this
   * worker reveals at once, as a v1 worker does.
   */
  commitments?: Pick<CommitmentBook, 'commitments' | 'addEventListener' | 'removeEventListener'>
}

export interface WorkerInit {
  key: SigningKey
  peerId: string
  policy: VolunteerPolicy
  tier: SandboxTier | null
  workDir: string
  fetchTimeoutMs?: number
  /** this host's toolchain, recorded in host-environment attestations (host-toolchain.ts); none: not recorded */
  hostToolchain?: HostToolchain
  /**
   * A fixed lease and renewal interval, for every build. Absent (the
   * default), both scale with the build's expected duration (leaseFor,
   * PROTOCOL.md §7 rule 1).
   */
  leaseMs?: number
  renewMs?: number
  /** how often open jobs are re-examined (lapsed leases, missed messages) */
  scanMs?: number
  /** the bound on fetching a job's input root blocks before claiming it (default INPUT_PROBE_MS) */
  inputProbeMs?: number
  /** the wait before a job whose inputs did not come is tried again, doubling (default INPUT_RETRY_MS) */
  inputRetryMs?: number
  /** probes of one job before it is given up (default MAX_INPUT_PROBES) */
  maxInputProbes?: number
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
  rebuild?: RebuildInit
}

export interface RebuildInit {
  requesters: string[]
  sample: number
  only: boolean
  /**
   * Spot-check a job no earlier than this long after it was announced
   * (createdAt). Replicas start within milliseconds of one another, so a
   * build that embeds the time agrees with itself; a check minutes later
   * does not, and its dissent disputes the job (PROTOCOL.md §8). Jobs that
   * have expired but are still held (the store's grace) are checked too.
   */
  recheckAfterMs?: number
  /** spot-check only jobs announced within this long (default: whatever the store holds) */
  recheckWindowMs?: number
}

/** A job as a rebuilder sees it: not one of its checks, one not due yet, or one to check now. */
export type SpotCheck = 'no' | 'later' | 'now'

/**
 * Whether, and when, a rebuilder spot-checks a job (pure; `now` passed in):
 * its requester is followed or the job is in the sample; a job announced
 * outside the window is not checked; one announced less than `recheckAfterMs`
 * ago is checked later.
 */
export function spotCheckOf (rb: RebuildInit | undefined, job: Pick<SignedJob, 'jobId'> & { job: Pick<SignedJob['job'], 'requester' | 'createdAt'> }, did: string, now: number): SpotCheck {
  if (rb == null || !(rb.requesters.includes(job.job.requester) || sampled(job.jobId, did, rb.sample))) return 'no'
  const created = Date.parse(job.job.createdAt)
  if (rb.recheckWindowMs != null && created < now - rb.recheckWindowMs) return 'no'
  if (rb.recheckAfterMs != null && created + rb.recheckAfterMs > now) return 'later'
  return 'now'
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
 *
 * Which job, of all it could build (issue 13): jobs that pass the cheap
 * checks wait in a FairQueue (src/worker/fair-queue.ts), and each free build
 * slot takes the next one round-robin over requesters, within the
 * volunteer's per-requester limits; not in store order, which a flood
 * decides. A job's inputs are probed (src/worker/input-probe.ts) before it
 * is claimed, so a job nobody can feed never holds a replica slot.
 */
export function worker (init: WorkerInit) {
  return (components: WorkerComponents): Worker => {
    const now = init.now ?? Date.now
    const fixedLease = init.leaseMs != null || init.renewMs != null
      ? { leaseMs: init.leaseMs ?? LEASE_MS, renewMs: init.renewMs ?? Math.floor((init.leaseMs ?? LEASE_MS) / 3) }
      : undefined
    /** how long this worker's last build of each environment took, by environment (oldest first) */
    const durations = new Map<string, number>()
    const environmentOf = (job: SignedJob): string => JSON.stringify(job.job.definition.environment)
    const remember = (job: SignedJob, ms: number): void => {
      const env = environmentOf(job)
      durations.delete(env)
      durations.set(env, ms)
      if (durations.size > MAX_REMEMBERED_DURATIONS) durations.delete(durations.keys().next().value as string)
    }
    /** the lease for a build of `job` that has run `elapsedMs` so far */
    const leaseOf = (job: SignedJob, elapsedMs: number): LeaseTiming =>
      fixedLease ?? leaseFor(expectedBuildMs(job.job.resources.wallSeconds, elapsedMs, durations.get(environmentOf(job))))
    const scanMs = init.scanMs ?? 2000
    const book = components.claims
    const running = new Map<string, AbortController>()
    /** every build under way, so stop() waits for them to end, not for a timer */
    const builds = new Set<Promise<void>>()
    const declined = new Set<string>()
    const done = new Set<string>()
    const considering = new Set<string>()
    const queue = new FairQueue(perRequesterLimits(init.policy))
    /** jobs taken from the queue and being considered: each holds a build slot until it starts or is let go */
    let picking = 0
    /** jobs whose inputs did not come: how often, and not to be offered again before `notBefore` */
    const inputRetry = new Map<string, { failures: number, notBefore: number }>()
    const probeMs = init.inputProbeMs ?? INPUT_PROBE_MS
    const retryMs = init.inputRetryMs ?? INPUT_RETRY_MS
    const maxProbes = init.maxInputProbes ?? MAX_INPUT_PROBES
    /** aborts input probes at stop() */
    const halt = new AbortController()
    let scanTimer: ReturnType<typeof setInterval> | undefined
    let stopped = false
    let seq = now()

    const emit = (e: WorkerEvent): void => {
      try { init.onEvent?.(e) } catch { /* a listener must not break the worker */ }
    }

    /**
     * Sign, record and gossip this worker's next claim on `job` (a lease, or a
     * release with `release`): its seq is above every claim it made before, so
     * it replaces them (PROTOCOL.md §7 rule 2).
     */
    const sendClaim = async (job: SignedJob, extra: { purpose?: ClaimPurpose, release?: ClaimRelease, leaseMs?: number }): Promise<void> => {
      const t = now()
      const signed = createClaim({
        jobId: job.jobId,
        buildId: job.job.buildId,
        worker: init.key.did,
        workerPeerId: init.peerId,
        issuedAt: new Date(t).toISOString(),
        // a release keeps the usual lease too: it must still be live when it arrives (it takes no slot anyway)
        leaseUntil: new Date(t + (extra.leaseMs ?? LEASE_MS)).toISOString(),
        seq: ++seq,
        ...(extra.purpose === 'spot-check' ? { purpose: extra.purpose } : {}),
        ...(extra.release != null ? { release: extra.release } : {})
      }, init.key)
      book.record(signed)
      // on the job's own topic: its shard's, for a sharded job (PROTOCOL.md §6.1)
      await components.gossip.publish('claim', signed.bytes, job.job)
    }
    const publishClaim = async (job: SignedJob, purpose: ClaimPurpose, leaseMs: number): Promise<void> => { await sendClaim(job, { purpose, leaseMs }) }

    /**
     * The release budgets (token buckets, as for peers' useless messages):
     * RELEASES_PER_MINUTE in all, RELEASES_PER_REQUESTER_PER_MINUTE per requester
     */
    const allReleases = new PeerBudget({ burst: RELEASES_PER_MINUTE, perSecond: RELEASES_PER_MINUTE / 60, maxPeers: 1, now })
    const requesterReleases = new PeerBudget({ burst: RELEASES_PER_REQUESTER_PER_MINUTE, perSecond: RELEASES_PER_REQUESTER_PER_MINUTE / 60, maxPeers: 1024, now })
    const home = homedir()
    /**
     * Tell the network, with a signed release, why this worker is not building
     * the job (PROTOCOL.md §5.3, §7 rule 6); it frees its slot at once.
     */
    const publishRelease = async (job: SignedJob, release: ClaimRelease): Promise<void> => {
      const r: ClaimRelease = { kind: release.kind, reason: releaseReason(release.reason, { workDir: init.workDir, home }) }
      if (!allReleases.allows('') || !requesterReleases.allows(job.job.requester)) {
        emit({ type: 'job:release-suppressed', jobId: job.jobId, release: r })
        return
      }
      allReleases.charge('')
      requesterReleases.charge(job.job.requester)
      emit({ type: 'job:released', jobId: job.jobId, release: r })
      await sendClaim(job, { release: r })
    }
    const release = (job: SignedJob, r: ClaimRelease): void => {
      void publishRelease(job, r).catch((err: Error) => { log('could not publish the release of %s: %s', job.jobId, err.message) })
    }

    const attestedWorkers = (job: SignedJob): string[] =>
      components.records.attestations(job.job.buildId).filter(a => a.claim.jobId === job.jobId).map(a => a.claim.worker)

    /**
     * Commit, then hold the attestation back (PROTOCOL.md §8.3 rule 2): until
     * every other builder holding a live lease on the job has committed or
     * attested, then REVEAL_MARGIN_MS more so the last commitments reach the
     * requesters first; or until revealWaitMs(build time) after committing,
     * whichever is first. The lease is renewed meanwhile (the build's timer
     * runs until the attestation is out). A worker that stops reveals at once:
     * its build is done, and a v1 requester still counts it.
     */
    const commitThenWait = async (job: SignedJob, artifact: string, buildMs: number, signal: AbortSignal): Promise<void> => {
      const book = components.commitments!
      const t = now()
      const signed = createCommitment({ buildId: job.job.buildId, jobId: job.jobId, workerPeerId: init.peerId, issuedAt: new Date(t).toISOString(), artifact }, init.key)
      // on the job's shard, like its claims and attestations (PROTOCOL.md §6.1)
      await components.gossip.publish('commitment', signed.bytes, job.job)
      const waitMs = revealWaitMs(buildMs)
      emit({ type: 'build:committed', jobId: job.jobId, buildId: job.job.buildId, artifact, waitMs })
      const deadline = t + waitMs
      const awaited = (): string[] => awaitedCommitments(
        components.claims.claimsOf(job.jobId),
        init.key.did,
        new Set(book.commitments(job.jobId).map(c => c.commitment.worker)),
        new Set(attestedWorkers(job)),
        now(),
        job.job.builders)
      await new Promise<void>((resolve) => {
        let margin: ReturnType<typeof setTimeout> | undefined
        const check = (): void => {
          if (signal.aborted || now() >= deadline) { finish(); return }
          if (margin == null && awaited().length === 0) margin = setTimeout(finish, REVEAL_MARGIN_MS)
        }
        // lapsed leases free no event: looked at again now and then, and at the deadline
        const poll = setInterval(check, 250)
        const cap = setTimeout(finish, Math.max(0, deadline - now()))
        function finish (): void {
          clearInterval(poll)
          clearTimeout(cap)
          clearTimeout(margin)
          book.removeEventListener('commitment:stored', check)
          signal.removeEventListener('abort', finish)
          resolve()
        }
        book.addEventListener('commitment:stored', check)
        signal.addEventListener('abort', finish)
        check()
      })
    }

    const build = async (job: SignedJob, parallelism: number, purpose: ClaimPurpose): Promise<void> => {
      const ac = new AbortController()
      running.set(job.jobId, ac)
      queue.started(job.jobId, now())
      const startedAt = now()
      /**
       * Renewals scale with the build (PROTOCOL.md §7 rule 1): each claim's
       * lease, and the wait before the next, come from how long this build
       * is expected to take, as known at that claim.
       */
      let renew: ReturnType<typeof setTimeout> | undefined
      let renewing = true
      const claimAndSchedule = async (): Promise<void> => {
        if (!renewing) return
        const lease = leaseOf(job, now() - startedAt)
        renew = setTimeout(() => { void claimAndSchedule().catch(() => {}) }, lease.renewMs)
        await publishClaim(job, purpose, lease.leaseMs)
      }
      const stopRenewing = (): void => { renewing = false; clearTimeout(renew) }
      /** from the moment its attestation exists, the build is answered: no release after it */
      let attested = false
      try {
        await claimAndSchedule()
        emit({ type: 'job:claimed', jobId: job.jobId, buildId: job.job.buildId, requester: job.job.requester })
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
          fetchTimeoutMs: init.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
          ...(init.hostToolchain != null ? { host: init.hostToolchain } : {}),
          now,
          tamperOutput: init.tamperOutput,
          onProgress: (progress) => { emit({ type: 'build:progress', jobId: job.jobId, progress }) }
        }, { signal: ac.signal })
        attested = true
        remember(job, now() - startedAt)
        if (att.claim.result.status === 'success' && components.commitments != null) {
          await commitThenWait(job, att.claim.result.artifact, Date.parse(att.claim.finishedAt) - Date.parse(att.claim.startedAt), ac.signal)
        }
        await components.gossip.publish('attestation', att.bytes, job.job)
        await components.datastore.put(new Key(`${FINISHED}/${job.jobId}`), att.bytes)
        const c = att.claim
        emit({ type: 'build:attested', jobId: job.jobId, buildId: job.job.buildId, requester: job.job.requester, result: c.result, startedAt: c.startedAt, finishedAt: c.finishedAt, sandboxTier: c.sandboxTier, parallelism: c.parallelism })
      } catch (err) {
        // no renewal after the release: it must be this worker's last claim on the job
        stopRenewing()
        // (a worker stopping, or a build already attested, owes no release)
        if (isWorkerError(err) && err.code === 'ERR_INPUT_FETCH') {
          emit({ type: 'build:abandoned', jobId: job.jobId, reason: err.message })
          if (!stopped && !attested) release(job, { kind: 'inputs-unavailable', reason: err.message })
        } else if (!stopped) {
          log.error('build of %s failed: %e', job.jobId, err)
          emit({ type: 'build:error', jobId: job.jobId, message: (err as Error).message })
          if (!attested) release(job, { kind: 'gave-up', reason: (err as Error).message })
        }
      } finally {
        stopRenewing()
        running.delete(job.jobId)
        done.add(job.jobId)
        queue.finished(job.jobId)
        pump()
      }
    }

    /**
     * Decline a job, once. Said aloud (a signed release) only to a requester
     * waiting for this key, whose job names it in `builders`: a job naming no
     * builders would otherwise be answered by every volunteer with other
     * limits (PROTOCOL.md §7 rule 6).
     */
    const decline = (job: SignedJob, reason: string, said: ClaimRelease = { kind: 'declined', reason }): void => {
      declined.add(job.jobId)
      log('declined job %s: %s', job.jobId, reason)
      emit({ type: 'job:declined', jobId: job.jobId, reason })
      tell(job, said)
    }

    /**
     * A release before claiming (a decline, inputs that did not come) is said
     * only to a requester waiting for this key, whose job names it: on a job
     * naming no builders every worker would say it, each try, and one job
     * whose source nobody holds would cost the network a release per worker
     * per try.
     */
    const tell = (job: SignedJob, said: ClaimRelease): void => {
      if (job.job.builders?.includes(init.key.did) === true) release(job, said)
    }

    /** the volunteer's policy on this job: how to run it, or undefined (declined, once) */
    const admit = (job: SignedJob): { accept: true, parallelism: number } | undefined => {
      const decision = decideJob(job, init.policy, init.tier)
      if (decision.accept) return decision
      decline(job, decision.reason)
      return undefined
    }

    /**
     * Whether the job's inputs can be had now (src/worker/input-probe.ts).
     * If not, it is left unclaimed and offered again later, at most
     * `maxProbes` times in all, then declined.
     */
    const inputsReady = async (job: SignedJob): Promise<boolean> => {
      const transfer = components.transfer
      const r = await probeInputs(components.blockstore, job.job.definition, probeMs, {
        signal: halt.signal,
        // the root alone: one block, at most a block's size (the whole DAG comes once the job is claimed)
        ...(transfer != null ? { fetchRoot: async (cid, o) => { await transfer(cid, { maxBlocks: 1, maxBytes: MAX_ROOT_BLOCK_BYTES }, { ...o, onBlock: () => {} }) } } : {})
      })
      if (stopped) return false
      if (r.ok) {
        inputRetry.delete(job.jobId)
        return true
      }
      const attempt = (inputRetry.get(job.jobId)?.failures ?? 0) + 1
      if (attempt >= maxProbes) {
        inputRetry.delete(job.jobId)
        decline(job, `its inputs could not be fetched in ${attempt} tries: ${r.reason}`, { kind: 'inputs-unavailable', reason: `${r.reason} (tried ${attempt} times; not trying again)` })
        return false
      }
      // doubling, up to 16 times the first wait
      const retryInMs = retryMs * 2 ** Math.min(attempt - 1, 4)
      inputRetry.set(job.jobId, { failures: attempt, notBefore: now() + retryInMs })
      log('job %s not claimed: %s (try %d of %d, again in %d ms)', job.jobId, r.reason, attempt, maxProbes, retryInMs)
      emit({ type: 'job:inputs-unavailable', jobId: job.jobId, attempt, retryInMs, reason: r.reason })
      tell(job, { kind: 'inputs-unavailable', reason: `${r.reason} (try ${attempt} of ${maxProbes}; trying again in ${Math.round(retryInMs / 1000)} s)` })
      return false
    }

    /** a rebuilder that rechecks later also checks jobs that expired while it waited (still held by the store) */
    const rechecking = init.rebuild?.recheckAfterMs != null || init.rebuild?.recheckWindowMs != null

    /** whether the job is for building now: 'no' (not at all), 'later', or how ('replica' / 'spot-check') */
    const buildAs = (job: SignedJob): 'no' | 'later' | 'replica' | 'spot-check' => {
      const spot = spotCheckOf(init.rebuild, job, init.key.did, now())
      // a job chosen for a later check is not built as a replica meanwhile:
      // the check is worth something only if it comes at another time
      if (spot === 'later') return 'later'
      const expired = Date.parse(job.job.expiresAt) <= now()
      if (spot === 'now') return expired && !rechecking ? 'no' : 'spot-check'
      if (expired || init.rebuild?.only === true) return 'no'
      return 'replica'
    }

    const consider = async (job: SignedJob): Promise<void> => {
      if (stopped || done.has(job.jobId) || running.has(job.jobId) || declined.has(job.jobId) || considering.has(job.jobId)) return
      const as = buildAs(job)
      if (as === 'no' || as === 'later') return
      const decision = admit(job)
      if (decision == null) return
      if (running.size >= init.policy.maxConcurrent) return
      const spotCheck = as === 'spot-check'
      // a job naming its builders: only they take replica slots (PROTOCOL.md §7 rule 3); a spot check is not a replica
      if (!spotCheck && (!countsAsBuilder(job.job.builders, init.key.did) || book.taken(job.jobId, attestedWorkers(job), now(), init.key.did, job.job.builders) >= job.job.replicas)) return
      considering.add(job.jobId)
      try {
        // claim only once able to start: inputs that do not come leave the
        // job unclaimed (no replica slot held), to be tried again later
        if (!(await inputsReady(job))) return
        if (stopped || running.size >= init.policy.maxConcurrent) return
        // a random delay spreads workers that heard the job at the same moment,
        // so their claims are seen before others pile on; it grows with how
        // contested the job already is, so an untouched job starts at once
        // (measured: submit→accepted overhead p50 412 → 144 ms via the API;
        // README.md, "Benchmarks", the submit → accepted row)
        const taken = book.taken(job.jobId, attestedWorkers(job), now(), init.key.did, job.job.builders)
        const spreadMs = Math.min(CLAIM_JITTER_MAX_MS, 50 + 150 * taken)
        // and, on a job naming its builders, this builder's place in the
        // job's claim order (PROTOCOL.md §7 rule 4): the first `replicas`
        // go at once, the others give their claims time to arrive
        const orderMs = spotCheck ? 0 : claimOrderWaitMs(claimOrder({ jobId: job.jobId, builders: job.job.builders }, init.key.did), job.job.replicas)
        await new Promise(resolve => setTimeout(resolve, orderMs + Math.floor(Math.random() * spreadMs)))
        if (stopped || running.size >= init.policy.maxConcurrent) return
        if (!spotCheck && book.taken(job.jobId, attestedWorkers(job), now(), init.key.did, job.job.builders) >= job.job.replicas) return
        if (spotCheck) emit({ type: 'job:spot-check', jobId: job.jobId, requester: job.job.requester })
        const b = build(job, decision.parallelism, spotCheck ? 'spot-check' : 'replica')
        builds.add(b)
        void b.finally(() => { builds.delete(b) })
      } finally {
        considering.delete(job.jobId)
      }
    }

    /**
     * Fill the free build slots from the fair queue, one job per slot at a
     * time: round-robin over requesters (FairQueue.take), so a flood from one
     * requester costs the others a turn each round, not its length. Called
     * when a job arrives, at each scan, and whenever a build or an attempt
     * ends.
     */
    const pump = (): void => {
      while (!stopped && running.size + picking < init.policy.maxConcurrent) {
        const next = queue.take(now())
        if (next == null) return
        picking++
        const job = components.records.getJob(next.jobId)
        void (job == null ? Promise.resolve() : consider(job))
          .catch((err: Error) => { log.error('considering job %s failed: %e', next.jobId, err) })
          .finally(() => {
            picking--
            // not started (declined, fully claimed, inputs missing): its place goes back
            queue.release(next.jobId)
            pump()
          })
      }
    }

    /**
     * The cheap checks only, so a flood of jobs costs this much per job and
     * scan and no more: what passes waits in the fair queue; the replica
     * count, the input probe and the claim come when its turn does (consider).
     */
    const offer = (job: SignedJob): void => {
      if (stopped || done.has(job.jobId) || running.has(job.jobId) || declined.has(job.jobId) || considering.has(job.jobId)) return
      // not due yet ('later'): offered again at a later scan
      const as = buildAs(job)
      if (as === 'no' || as === 'later') return
      if ((inputRetry.get(job.jobId)?.notBefore ?? 0) > now()) return
      if (admit(job) == null) return
      queue.offer(job.job.requester, job.jobId)
    }

    const onJob = (evt: CustomEvent<SignedJob>): void => {
      offer(evt.detail)
      pump()
    }

    const scan = (): void => {
      for (const job of components.records.jobs()) offer(job)
      // retry records of jobs the store no longer holds
      for (const jobId of inputRetry.keys()) if (components.records.getJob(jobId) == null) inputRetry.delete(jobId)
      pump()
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
        halt.abort()
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
