/**
 * The requester, end to end: it assembles and announces jobs
 * (submitDirectory), turns the attestations the record store holds into a
 * verdict under its trust policy, over time, and on a settled verdict writes
 * the proof bundle or diagnoses the dispute (outcomes.ts).
 *
 * Ordering is by events, not timers: it re-evaluates a job when the record
 * store says an attestation of its build is stored ('attestation:stored'),
 * when the policy changes ('policy:changed'), and when the job's own expiry
 * comes. Each evaluation reads the policy once; the record, the verdict served
 * and the bundle of that evaluation all name that policy.
 *
 * `accepted` is not the end: a later trusted dissent turns it into
 * `disputed`, and attestations that arrive after acceptance are still
 * recorded. `expired` is decided here (not in the pure verdict) because it
 * depends on the clock.
 */
import { rename, stat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, Startable, TypedEventTarget } from '@libp2p/interface'
import type { Pins } from '@helia/interface'
import type { Blockstore } from 'interface-blockstore'
import { logger } from '@libp2p/logger'
import { MAX_BUILDERS, SHARD_COUNT, advertsFor, createJobAnnouncement, evaluateVerdict, isTrustedSigner, namedByTrustedKey, publicKeyFromDid, shardOf, validateBuildDefinition } from '../../protocol/index.ts'
import type { EquivocationProof, JobVariation, ResourceAsk, SignedAttestation, SignedClaim, SignedJob, SigningKey, TrustPolicy, Verdict } from '../../protocol/index.ts'
import type { ConcurGossip } from '../net/gossip.ts'
import type { AdvertBook } from '../store/advert-book.ts'
import type { AttestationSync } from '../net/sync.ts'
import type { RecordStore } from '../store/records.ts'
import { pin } from '../store/pin.ts'
import { DEFAULT_RESOURCES, DEFAULT_SOURCE_DATE_EPOCH, DEFAULT_TTL_SECONDS, DEFAULT_REPLICAS, hostPlatform } from './defaults.ts'
import { BadSourceError, JobTooLongError, NoPolicyError, UnknownJobError } from './errors.ts'
import { DEFAULT_STORE_LIMITS } from '../store/limits.ts'
import { diagnoseDisputed, diagnoseNonReproducible, verdictInput, writeAcceptedBundle } from './outcomes.ts'
import type { OutcomeComponents, OutcomeDirs } from './outcomes.ts'
import { readLogs } from './read-logs.ts'
import { sourceFilter } from './source-filter.ts'
import type { ReadLogsOptions } from './read-logs.ts'
import { verdictView } from './types.ts'
import type { CommitmentBook } from '../store/commitment-book.ts'
import type { LogsView, PolicySource, ReleaseNote, RequestRecord, RequestStatus, RequestView, RequesterEvents } from './types.ts'

const log = logger('concur:requester')

/** the trusted workers' reasons an advert warning names, at most (the rest are counted) */
const MAX_ADVERT_REASONS = 3

const REQUESTS = '/concur/requests'

export interface RequesterComponents {
  records: Pick<RecordStore, 'attestations' | 'equivocations' | 'putJob' | 'getJob' | 'addEventListener' | 'removeEventListener'>
  /** joinShards: to hear a sharded job's claims and attestations (none: this node serves every shard it could submit to) */
  gossip: Pick<ConcurGossip, 'publish'> & Partial<Pick<ConcurGossip, 'joinShards'>>
  datastore: Pick<Datastore, 'put' | 'query'>
  policy: PolicySource
  blockstore: Blockstore
  pins: Pick<Pins, 'add' | 'isPinned'>
  identity: { signing: SigningKey, peerId: string }
  /** attestation catch-up from peers; none: only what gossip delivers */
  sync?: Pick<AttestationSync, 'pull'>
  /** 'peer:identify' starts a catch-up with the peer that just joined */
  connections?: TypedEventTarget<{ 'peer:identify': CustomEvent<unknown> }>
  /** the claims this node validated and recorded (src/store/ingest.ts): releases of our jobs are kept */
  claims?: TypedEventTarget<{ 'claim:recorded': CustomEvent<SignedClaim> }>
  /** the latest advert of each worker (PROTOCOL.md §5.4); none: no warnings from them */
  adverts?: Pick<AdvertBook, 'live'>
  /** the DAG transfer that fetches an accepted artifact before it is pinned (see OutcomeComponents) */
  transfer?: OutcomeComponents['transfer']
  /**
   * What this node saw of commitments (PROTOCOL.md §8.3); none: no evidence,
   * so under a policy that requires commitments nothing is counted
   */
  commitments?: Pick<CommitmentBook, 'evidence' | 'commitments'>
}

export interface RequesterInit {
  /** where bundles and dispute reports are written; none: not written */
  dirs?: OutcomeDirs
  now?: () => number
  /** how often open jobs' attestations are pulled from peers (lost gossip); 0: never */
  catchUpMs?: number
  /** the longest a bundle or a diagnosis may take */
  outcomeTimeoutMs?: number
}

/** What `submitDirectory` builds: the BuildDefinition's free fields, with defaults. */
export interface DefinitionInput {
  command: string[]
  /** the build's output directory, relative to the build dir */
  output: string
  env?: Record<string, string>
  /** 'host' (default) or the CID of a root filesystem */
  environment?: string
  platform?: string
}

export interface SubmitOptions extends AbortOptions {
  replicas?: number
  resources?: Partial<ResourceAsk>
  ttlSeconds?: number
  /** accept at once from earlier attestations of the same buildId (default true) */
  reuse?: boolean
  /** keep version control directories (.git, .hg, …) in the source (default: left out) */
  includeVcs?: boolean
  /** what the replicas vary (PROTOCOL.md §5.1), e.g. ['clock'] */
  vary?: JobVariation[]
  /**
   * Announce a sharded job (PROTOCOL.md §6.1, protocol v1.1): it, its claims
   * and its attestations travel on its shard's topics only, so only v1.1
   * workers serving that shard see it. Default false: a v1 job, on the
   * unsharded topics every node reads.
   */
  sharded?: boolean
}

export interface Submitted {
  job: SignedJob
  record: RequestRecord
  source: string
  threshold: number
  /** entries of the directory left out of the source (VCS directories, `.concurignore`) */
  excluded: number
  /** rules read from the source's `.concurignore` */
  ignoreRules: number
  /** whether VCS directories were left out */
  vcsExcluded: boolean
  /**
   * What the requester could tell before announcing (PROTOCOL.md §5.4): e.g.
   * that every trusted worker that advertised would decline the job. Advice:
   * the job is announced anyway (a worker may have changed, or not advertise).
   */
  warnings: string[]
}

export interface Requester extends Startable, TypedEventTarget<RequesterEvents> {
  /** add the directory, sign the job and announce it (or accept it from existing attestations) */
  submitDirectory (dir: string, definition: DefinitionInput, options?: SubmitOptions): Promise<Submitted>
  /** announce a signed job and follow it */
  submit (job: SignedJob, options?: { reuse?: boolean }): Promise<RequestRecord>
  get (jobId: string): RequestRecord | undefined
  list (): RequestRecord[]
  /** the record, the last verdict and the attestations, once every evaluation already due has run */
  view (jobId: string): Promise<RequestView>
  logs (jobId: string, options?: Omit<ReadLogsOptions, 'policy'>): Promise<LogsView>
}

/**
 * The keys a job names as its builders (PROTOCOL.md §5.1, §7 rule 3): the
 * policy's trusted keys, the only ones whose builds this requester can ever
 * count, so that a claim by any other key (a throw-away key squatting the
 * replica slots) takes no slot. More than MAX_BUILDERS trusted keys: none,
 * an open job, as before builders existed.
 */
function buildersOf (policy: TrustPolicy): { builders?: string[] } {
  // the policy's dids are canonical (one text per key), one per distinct key
  const dids = [...policy.trusted.values()]
  return dids.length > 0 && dids.length <= MAX_BUILDERS ? { builders: dids.sort() } : {}
}

function reuseNote (n: number, buildId: string): string {
  return `accepted from ${n} existing trusted attestation(s) of build ${buildId}: not rebuilt`
}

const FINAL: ReadonlySet<RequestStatus> = new Set(['failed', 'expired'])

/** the CIDs trusted keys named (counted or below the tier), sorted: what a dispute report must cover */
function trustedCids (v: Verdict): string[] {
  return v.candidates.filter(namedByTrustedKey).map(c => c.artifact).sort()
}

/** the CIDs of trusted keys' non-reproducible records, sorted: what that diff must cover */
function nonReproducibleCids (v: Verdict): string[] {
  return [...new Set(v.nonReproducible.filter(n => n.trusted).flatMap(n => n.artifacts.map(a => a.artifact)))].sort()
}

/**
 * The report a job owes, if any: a dispute report once disputed, a diff
 * once trusted keys built different CIDs for different jobs of its build,
 * each made again when trusted keys name a CID it does not cover (a dispute
 * can be decided before the last trusted key answers). Untrusted keys' CIDs
 * never count here: keys are free, and each new CID would cost another
 * round of fetching and diffing; trusted keys are few, so this is bounded.
 */
function owedReport (r: RequestRecord, v: Verdict): { kind: 'dispute' | 'non-reproducible', cids: string[] } | undefined {
  const uncovered = (cids: string[], made: { cids?: string[] } | undefined): boolean => made == null || cids.some(c => !(made.cids ?? []).includes(c))
  if (r.status === 'disputed') {
    const cids = trustedCids(v)
    if (uncovered(cids, r.dispute)) return { kind: 'dispute', cids }
  }
  const cids = nonReproducibleCids(v)
  if (cids.length > 0 && uncovered(cids, r.nonReproducible)) return { kind: 'non-reproducible', cids }
  return undefined
}

/**
 * Release notes kept per job: trusted keys' (as many as the policy names,
 * within this) before untrusted ones, of which at most MAX_UNTRUSTED_RELEASES.
 * Releases cost a throw-away key nothing to sign: they must not grow a
 * record, nor push a trusted worker's reason out of it.
 */
export const MAX_RELEASES_KEPT = 64
export const MAX_UNTRUSTED_RELEASES = 8

/**
 * `notes` with `note` in place of its worker's earlier one, bounded as
 * MAX_RELEASES_KEPT and MAX_UNTRUSTED_RELEASES say (the oldest untrusted
 * note goes first; a note that does not fit is not kept).
 */
export function keepRelease (notes: readonly ReleaseNote[], note: ReleaseNote): ReleaseNote[] {
  const out = notes.filter(n => n.worker !== note.worker)
  out.push(note)
  const untrusted = out.filter(n => !n.trusted)
  while (untrusted.length > MAX_UNTRUSTED_RELEASES || (out.length > MAX_RELEASES_KEPT && untrusted.length > 0)) {
    const drop = untrusted.shift() as ReleaseNote
    out.splice(out.indexOf(drop), 1)
  }
  // all trusted and still over: the newest does not fit
  return out.length > MAX_RELEASES_KEPT ? out.filter(n => n !== note) : out
}

function trustsDid (policy: TrustPolicy, did: string): boolean {
  try {
    return isTrustedSigner(policy, publicKeyFromDid(did))
  } catch {
    return false
  }
}

/** setTimeout's longest delay; a later expiry re-arms */
const MAX_TIMER_MS = 2 ** 31 - 1

export function requester (init: RequesterInit = {}) {
  return (components: RequesterComponents): Requester => new RequesterService(init, components)
}

class RequesterService extends TypedEventEmitter<RequesterEvents> implements Requester {
  private readonly init: RequesterInit
  private readonly components: RequesterComponents
  private readonly now: () => number
  private readonly requests = new Map<string, RequestRecord>()
  private readonly byBuild = new Map<string, Set<string>>()
  /** the last evaluation of each job: its verdict and the policy it was made under */
  private readonly evaluations = new Map<string, { verdict: Verdict, policy: TrustPolicy }>()
  /** bundles and diagnoses being made, one per job at a time, outside the evaluation queue */
  private readonly settling = new Map<string, Promise<void>>()
  private readonly stopping = new AbortController()
  private readonly busy = new Map<string, Promise<void>>()
  private readonly waiting = new Set<string>()
  private readonly expiries = new Map<string, ReturnType<typeof setTimeout>>()
  private catchUpTimer: ReturnType<typeof setInterval> | undefined
  private started = false

  constructor (init: RequesterInit, components: RequesterComponents) {
    super()
    this.init = init
    this.components = components
    this.now = init.now ?? Date.now
  }

  // ---- lifecycle ----------------------------------------------------------

  async start (): Promise<void> {
    for await (const { value } of this.components.datastore.query({ prefix: REQUESTS })) {
      try {
        this.index(JSON.parse(new TextDecoder().decode(value)) as RequestRecord)
      } catch (err) {
        log.error('skipping a corrupt request record: %e', err)
      }
    }
    // the shards of this node's sharded jobs still open: their attestations come there
    const shards = this.list().filter(r => r.status !== 'accepted' && r.status !== 'expired').map(r => this.components.records.getJob(r.jobId)).filter(j => j?.job.shards !== undefined).map(j => shardOf((j as SignedJob).job.buildId))
    if (shards.length > 0) this.components.gossip.joinShards?.(shards)
    this.components.records.addEventListener('attestation:stored', this.onAttestation)
    this.components.records.addEventListener('equivocation:stored', this.onEquivocation)
    this.components.policy.addEventListener('policy:changed', this.onPolicy)
    this.components.connections?.addEventListener('peer:identify', this.onPeer)
    this.components.claims?.addEventListener('claim:recorded', this.onClaim)
    const every = this.init.catchUpMs ?? 5000
    if (every > 0 && this.components.sync != null) {
      // gossip is best-effort: while a job is open, ask peers now and then for
      // attestations we may have missed (the answers go through the store)
      this.catchUpTimer = setInterval(this.catchUp, every)
      this.catchUpTimer.unref?.()
    }
    this.started = true
    // catch up on whatever arrived, or expired, while we were down; and make
    // the bundles and diagnoses a stop interrupted
    for (const r of this.requests.values()) this.schedule(r.jobId)
    // (settle looks at each record's last evaluation and returns at once when nothing is owed)
    for (const r of this.requests.values()) {
      void this.busy.get(r.jobId)?.then(() => { this.settle(r.jobId) })
    }
    this.catchUp()
  }

  async stop (): Promise<void> {
    this.started = false
    this.components.records.removeEventListener('attestation:stored', this.onAttestation)
    this.components.records.removeEventListener('equivocation:stored', this.onEquivocation)
    this.components.policy.removeEventListener('policy:changed', this.onPolicy)
    this.components.connections?.removeEventListener('peer:identify', this.onPeer)
    this.components.claims?.removeEventListener('claim:recorded', this.onClaim)
    if (this.catchUpTimer != null) clearInterval(this.catchUpTimer)
    for (const t of this.expiries.values()) clearTimeout(t)
    this.expiries.clear()
    this.stopping.abort()
    await Promise.allSettled([...this.busy.values(), ...this.settling.values()])
  }

  private readonly onAttestation = (evt: CustomEvent<SignedAttestation>): void => {
    for (const jobId of this.byBuild.get(evt.detail.claim.buildId) ?? []) this.schedule(jobId)
  }

  /** a proof that a key equivocated on a build (PROTOCOL.md §8.2): every job of it is judged again */
  private readonly onEquivocation = (evt: CustomEvent<{ proof: EquivocationProof }>): void => {
    for (const jobId of this.byBuild.get(evt.detail.proof.buildId) ?? []) this.schedule(jobId)
  }

  private readonly onPolicy = (): void => {
    for (const r of this.requests.values()) this.schedule(r.jobId)
  }

  private readonly onPeer = (): void => { this.catchUp() }

  /**
   * A worker's release of one of our open jobs (PROTOCOL.md §7 rule 6): kept
   * in the record with its reason, so `status` shows at once why a job is
   * not being built (a decline, inputs that did not come), not only when it
   * expires. Queued with the job's evaluations, so a record is never written
   * by two at once.
   */
  private readonly onClaim = (evt: CustomEvent<SignedClaim>): void => {
    const { claim, signer } = evt.detail
    const release = claim.release
    const r = this.requests.get(claim.jobId)
    if (r == null || FINAL.has(r.status)) return
    let trusted = false
    try { trusted = isTrustedSigner(this.components.policy.current(), signer) } catch { /* no usable policy: untrusted */ }
    if (release == null) {
      // a newer claim of a slot: that worker is building after all, its note no longer says what it does
      const stale = r.releases?.find(n => n.worker === claim.worker && n.at < claim.issuedAt)
      if (stale == null) return
      this.enqueue(claim.jobId, async () => {
        r.releases = (r.releases ?? []).filter(n => n !== stale)
        if (stale.trusted) await this.save(r)
      })
      return
    }
    const note: ReleaseNote = { worker: claim.worker, kind: release.kind, reason: release.reason, at: claim.issuedAt, trusted }
    this.enqueue(claim.jobId, async () => {
      const before = r.releases?.find(n => n.worker === note.worker)
      // the same words again (a worker's next try says the same): nothing to write
      if (before != null && before.kind === note.kind && before.reason === note.reason) return
      const kept = keepRelease(r.releases ?? [], note)
      if (!kept.includes(note)) return
      r.releases = kept
      // written at once only for a trusted key: a throw-away key raising its
      // seq must not cost a record write per message; its note is kept in
      // memory and goes to disk with the record's next write
      if (trusted) await this.save(r)
      this.safeDispatchEvent('release:recorded', { detail: { jobId: r.jobId, ...note } })
    })
  }

  private readonly catchUp = (): void => {
    const sync = this.components.sync
    if (sync == null || !this.started) return
    const now = this.now()
    const open = [...new Set([...this.requests.values()]
      .filter(r => (r.status === 'pending' || r.status === 'provisional' || r.status === 'accepted') && Date.parse(r.expiresAt) > now - 60_000)
      .map(r => r.buildId))]
    if (open.length > 0) void sync.pull(open).catch((err: Error) => { log('catch-up failed: %s', err.message) })
  }

  // ---- state --------------------------------------------------------------

  private async save (r: RequestRecord): Promise<void> {
    await this.components.datastore.put(new Key(`${REQUESTS}/${r.jobId}`), new TextEncoder().encode(JSON.stringify(r)))
  }

  private index (r: RequestRecord): void {
    this.requests.set(r.jobId, r)
    let s = this.byBuild.get(r.buildId)
    if (s == null) { s = new Set(); this.byBuild.set(r.buildId, s) }
    s.add(r.jobId)
    this.armExpiry(r)
  }

  /** re-evaluate when the job expires: the one thing that changes a verdict without a new record */
  private armExpiry (r: RequestRecord): void {
    if (FINAL.has(r.status)) return
    clearTimeout(this.expiries.get(r.jobId))
    const delay = Date.parse(r.expiresAt) - this.now() + 1
    if (delay <= 0) return
    const t = setTimeout(() => {
      this.expiries.delete(r.jobId)
      if (delay > MAX_TIMER_MS) this.armExpiry(r)
      else this.schedule(r.jobId)
    }, Math.min(delay, MAX_TIMER_MS))
    t.unref?.()
    this.expiries.set(r.jobId, t)
  }

  /** one evaluation: the policy read once, the verdict under it */
  private evaluate (r: RequestRecord): { verdict: Verdict, policy: TrustPolicy } {
    const policy = this.components.policy.current()
    // judged as this job (attempt): a worker's answer to it counts for it;
    // its answers to other jobs of the build count only when this job reuses
    // them, and are otherwise evidence (PROTOCOL.md §8)
    const vary = this.components.records.getJob(r.jobId)?.job.vary
    const options = {
      jobId: r.jobId,
      onlyJob: r.onlyThisJob === true,
      ...(vary != null ? { vary } : {}),
      ...(policy.requireCommitment && this.components.commitments != null ? { commitments: this.components.commitments.evidence(r.buildId) } : {})
    }
    return { verdict: evaluateVerdict(policy, r.buildId, verdictInput(this.components.records, r.buildId), options), policy }
  }

  private async update (jobId: string): Promise<void> {
    const r = this.requests.get(jobId)
    if (r == null) return
    let evaluation
    try {
      evaluation = this.evaluate(r)
    } catch (err) {
      // no usable policy: nothing is decided; 'policy:changed' brings us back
      if (err instanceof NoPolicyError) return
      throw err
    }
    const { verdict: v } = evaluation
    this.evaluations.set(jobId, evaluation)
    let status: RequestStatus = v.status
    // a job past its expiry that never got a final verdict is expired; an
    // accepted/disputed/failed verdict stands (and can still change to disputed)
    if ((status === 'pending' || status === 'provisional') && Date.parse(r.expiresAt) <= this.now()) status = 'expired'
    if (r.status === 'expired' && (status === 'pending' || status === 'provisional')) status = 'expired'
    if (FINAL.has(r.status) && status !== 'disputed' && status !== 'accepted') status = r.status
    if (status === 'pending' || status === 'provisional') this.armExpiry(r)
    const previous = r.status
    const reasons = r.reused ? [reuseNote(v.counted.length, r.buildId), ...v.reasons] : v.reasons
    // the status (and artifact) is the history; who agrees, why and under
    // which policy is kept current with it, so the record always describes
    // its last evaluation
    // an artifact is named only while one is usable: a disputed, failed or
    // expired job has none, whatever an earlier evaluation named (history keeps it)
    const artifact = status === 'accepted' || status === 'provisional' ? v.artifact : undefined
    const moved = status !== r.status || artifact !== r.artifact
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b)
    if (!moved && same(r.counted, v.counted) && same(r.dissent, v.dissent) && same(r.reasons, reasons) && same(r.policy, evaluation.policy.input)) return
    r.counted = v.counted
    r.dissent = v.dissent
    r.reasons = reasons
    if (artifact != null) r.artifact = artifact
    else delete r.artifact
    r.policy = evaluation.policy.input
    r.status = status
    if (moved) r.history.push({ at: new Date(this.now()).toISOString(), status, ...(artifact != null ? { artifact } : {}) })
    if (status !== 'accepted') await this.revokeBundle(r)
    await this.save(r)
    this.safeDispatchEvent('verdict:changed', { detail: { jobId, status, previous, artifact: r.artifact, counted: r.counted, threshold: v.threshold } })
    this.settle(jobId)
  }

  /**
   * A job that is no longer accepted (a later dissent, an equivocating
   * counted key) has no valid proof: its bundle would still verify offline,
   * since it holds only the statements known at acceptance. It is renamed
   * `<jobId>.revoked.car` and no longer named as the job's bundle; a later
   * acceptance writes a new one.
   */
  private async revokeBundle (r: RequestRecord): Promise<void> {
    if (r.bundle == null) return
    const revoked = r.bundle.replace(/\.car$/, '') + '.revoked.car'
    try {
      await rename(r.bundle, revoked)
      r.revokedBundle = revoked
    } catch (err) {
      log.error('could not set aside the bundle of %s: %e', r.jobId, err)
      r.revokedBundle = r.bundle
    }
    delete r.bundle
    delete r.bundleError
  }

  /**
   * The bundle of an accepted job, the diagnosis of a disputed one: once each,
   * from the latest evaluation, outside the evaluation queue (fetching an
   * artifact can take minutes; a verdict and the API must not wait for it).
   */
  private settle (jobId: string): void {
    const dirs = this.init.dirs
    const job = this.components.records.getJob(jobId)
    if (dirs == null || job == null || this.settling.has(jobId) || this.stopping.signal.aborted) return
    const run = async (): Promise<void> => {
      const tried = new Set<string>()
      while (true) {
        const r = this.requests.get(jobId)
        const e = this.evaluations.get(jobId)
        if (r == null || e == null) return
        const budgetMs = this.init.outcomeTimeoutMs ?? 10 * 60_000
        const timeout = AbortSignal.timeout(budgetMs)
        const signal = AbortSignal.any([timeout, this.stopping.signal])
        if (r.status === 'accepted' && r.bundle == null && !tried.has('bundle')) {
          tried.add('bundle')
          try {
            r.bundle = await writeAcceptedBundle(this.components, dirs, job, e.verdict, e.policy, { signal })
            delete r.bundleError
            // disputed (a late dissent) while the bundle was being written
            if (r.status !== 'accepted') await this.revokeBundle(r)
            await this.save(r)
            this.safeDispatchEvent('bundle:written', { detail: { jobId, path: r.bundle } })
          } catch (err) {
            // stopped mid-fetch: not a failure of the bundle; the next start makes it
            if (this.stopping.signal.aborted) return
            r.bundleError = (err as Error).message
            log.error('bundle for %s failed: %e', jobId, err)
            await this.save(r)
            this.safeDispatchEvent('bundle:failed', { detail: { jobId, error: r.bundleError } })
          }
        } else {
          const owed = owedReport(r, e.verdict)
          if (owed == null || tried.has(`${owed.kind}:${owed.cids.join(',')}`)) return
          tried.add(`${owed.kind}:${owed.cids.join(',')}`)
          let made: { report?: string, summary?: string, error?: string, cids: string[] }
          try {
            // its own time budget, shared among the comparisons, so a CID
            // whose blocks never come leaves a partial report, not an error
            const diagnose = owed.kind === 'dispute' ? diagnoseDisputed : diagnoseNonReproducible
            made = { ...(await diagnose(this.components, dirs, job, e.verdict, { signal: this.stopping.signal, budgetMs })), cids: owed.cids }
          } catch (err) {
            if (this.stopping.signal.aborted) return
            made = { error: (err as Error).message, cids: owed.cids }
          }
          if (owed.kind === 'dispute') r.dispute = made
          else r.nonReproducible = made
          await this.save(r)
          this.safeDispatchEvent(owed.kind === 'dispute' ? 'dispute:diagnosed' : 'non-reproducible:diagnosed', { detail: { jobId, ...made } })
        }
      }
    }
    const p = run().catch((err: Error) => { log.error('settling %s: %e', jobId, err) }).finally(() => { this.settling.delete(jobId) })
    this.settling.set(jobId, p)
  }

  /**
   * One evaluation at a time per job, and at most one more waiting: a waiting
   * evaluation reads the store when it runs, so it covers every event that
   * came while it waited (a flood of attestations costs two evaluations, not
   * one per attestation).
   */
  private schedule (jobId: string): void {
    if (this.waiting.has(jobId)) return
    this.waiting.add(jobId)
    this.enqueue(jobId, async () => {
      this.waiting.delete(jobId)
      await this.update(jobId)
    })
  }

  /** run `fn` after everything already queued for the job: one change to its record at a time */
  private enqueue (jobId: string, fn: () => Promise<void>): void {
    const prev = this.busy.get(jobId) ?? Promise.resolve()
    const next = prev.then(fn).catch((err: Error) => { log.error('updating %s: %e', jobId, err) })
    this.busy.set(jobId, next)
    void next.finally(() => { if (this.busy.get(jobId) === next) this.busy.delete(jobId) })
  }

  // ---- operations ---------------------------------------------------------

  async submitDirectory (dir: string, definition: DefinitionInput, options: SubmitOptions = {}): Promise<Submitted> {
    // refused before any work: a job nobody could ever accept is not announced
    const policy = this.components.policy.current()
    if (!isAbsolute(dir)) throw new BadSourceError(`the source must be an absolute path (got ${dir})`)
    if ((await stat(dir).catch(() => null))?.isDirectory() !== true) throw new BadSourceError(`not a directory: ${dir}`)
    // loaded on first use: a requester that only follows jobs does not carry the importer
    const { addDirectory } = await import('../content/add-directory.ts')
    const filter = await sourceFilter(dir, { includeVcs: options.includeVcs === true })
    const added = await addDirectory(this.components.blockstore, dir, { signal: options.signal ?? AbortSignal.timeout(30 * 60_000), exclude: filter.exclude })
    await pin(this.components.pins, added.cid, options)
    const environment = definition.environment ?? 'host'
    const platform = definition.platform ?? hostPlatform()
    const def = validateBuildDefinition({
      version: 1,
      source: added.cid.toString(),
      environment: environment === 'host' ? { kind: 'host', platform } : { kind: 'rootfs', rootfs: environment, platform },
      command: definition.command,
      // a fixed default, so that the same sources and command give the same buildId
      env: { SOURCE_DATE_EPOCH: DEFAULT_SOURCE_DATE_EPOCH, ...(definition.env ?? {}) },
      output: definition.output
    })
    const now = this.now()
    const ttlMs = (options.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000
    if (ttlMs > DEFAULT_STORE_LIMITS.maxJobLifetimeMs) {
      throw new JobTooLongError(`a job may stay open at most ${DEFAULT_STORE_LIMITS.maxJobLifetimeMs / 1000} s (${DEFAULT_STORE_LIMITS.maxJobLifetimeMs / 86_400_000} days): peers do not keep a job that asks for longer; submit again later instead`)
    }
    const { signing, peerId } = this.components.identity
    const job = createJobAnnouncement({
      definition: def,
      requester: signing.did,
      requesterPeerId: peerId,
      replicas: options.replicas ?? DEFAULT_REPLICAS,
      ...buildersOf(policy),
      ...(options.vary != null && options.vary.length > 0 ? { vary: options.vary } : {}),
      ...(options.sharded === true ? { shards: SHARD_COUNT } : {}),
      resources: { ...DEFAULT_RESOURCES, ...(options.resources ?? {}) },
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlMs).toISOString()
    }, signing)
    const warnings = this.advertWarnings(job, policy)
    const record = await this.submit(job, { reuse: options.reuse })
    return { job, record, source: added.cid.toString(), threshold: policy.threshold, excluded: added.excluded, ignoreRules: filter.rules.length, vcsExcluded: filter.vcs, warnings }
  }

  /**
   * A warning when every trusted worker that advertised says it would not
   * take `job`, with each one's reason (at most MAX_ADVERT_REASONS); none
   * when one would, or none advertised (nothing is known then).
   */
  private advertWarnings (job: SignedJob, policy: TrustPolicy): string[] {
    const live = this.components.adverts?.live(this.now()) ?? []
    const trusted = (did: string): boolean => {
      try { return isTrustedSigner(policy, publicKeyFromDid(did)) } catch { return false }
    }
    const r = advertsFor(job.job, live.map(a => a.advert), trusted, policy.minTier)
    if (r.able.length > 0 || r.refusing.length === 0) return []
    const why = r.refusing.slice(0, MAX_ADVERT_REASONS).map(x => `${x.worker}: ${x.reason}`).join('; ')
    return [`no trusted worker's advert says it would take this job (${r.refusing.length} advertised): ${why}`]
  }

  async submit (job: SignedJob, options: { reuse?: boolean } = {}): Promise<RequestRecord> {
    await this.components.records.putJob(job)
    // a job that asks for a variation is judged on its own answers: earlier
    // attestations of the build were made without it, and would accept it
    // without the check it asks for
    if ((job.job.vary?.length ?? 0) > 0) options = { ...options, reuse: false }
    const at = new Date(this.now()).toISOString()
    const r: RequestRecord = {
      jobId: job.jobId,
      buildId: job.job.buildId,
      submittedAt: at,
      expiresAt: job.job.expiresAt,
      status: 'pending',
      reused: false,
      published: false,
      counted: [],
      dissent: [],
      reasons: [],
      history: [{ at, status: 'pending' }],
      // --no-reuse: judged on this job's own attestations only
      ...(options.reuse === false ? { onlyThisJob: true } : {})
    }
    this.index(r)
    // reuse by buildId: the same definition already has enough trusted
    // attestations (from any earlier job), so there is nothing to rebuild
    const existing = options.reuse === false ? undefined : this.evaluate(r).verdict
    if (existing?.status === 'accepted') {
      r.reused = true
      r.reasons = [reuseNote(existing.counted.length, r.buildId)]
      await this.save(r)
    } else {
      // a sharded job is answered on its shard: this node must be subscribed there before anyone answers
      if (job.job.shards !== undefined) this.components.gossip.joinShards?.([shardOf(job.job.buildId)])
      await this.components.gossip.publish('job', job.bytes)
      r.published = true
      await this.save(r)
    }
    this.schedule(r.jobId)
    await this.busy.get(r.jobId)
    return r
  }

  get (jobId: string): RequestRecord | undefined {
    return this.requests.get(jobId)
  }

  list (): RequestRecord[] {
    return [...this.requests.values()]
  }

  async view (jobId: string): Promise<RequestView> {
    if (!this.requests.has(jobId)) throw new UnknownJobError(`this node submitted no job ${jobId}`)
    // every attestation listed below has had its 'stored' event, so its
    // evaluation is queued: wait for the queue, and the verdict covers them.
    // A few rounds at most: attestations that never stop arriving (a flood)
    // must not keep the answer from coming
    for (let round = 0; round < 3 && this.busy.has(jobId); round++) await this.busy.get(jobId)
    const record = this.requests.get(jobId) as RequestRecord
    let policy: TrustPolicy | null = null
    try { policy = this.components.policy.current() } catch { policy = null }
    const v = this.evaluations.get(jobId)?.verdict
    // a job judged on its own attestations lists only those: what other
    // jobs of the build got is in the verdict's nonReproducible evidence
    const listed = this.components.records.attestations(record.buildId).filter(a => record.onlyThisJob !== true || a.claim.jobId === jobId)
    const attestations = listed.map(a => ({
      worker: a.claim.worker,
      trusted: policy != null && isTrustedSigner(policy, a.signer),
      jobId: a.claim.jobId,
      thisJob: a.claim.jobId === jobId,
      ...(a.claim.variation != null ? { variation: a.claim.variation } : {}),
      ...(a.claim.host != null ? { host: a.claim.host } : {}),
      result: a.claim.result,
      log: a.claim.log,
      sandboxTier: a.claim.sandboxTier,
      finishedAt: a.claim.finishedAt
    }))
    // whether a releasing key is trusted is said under the policy of now, as
    // for attestations; a worker that has since attested this job is not "not building" it
    const answered = new Set(listed.filter(a => a.claim.jobId === jobId).map(a => a.claim.worker))
    const releases = record.releases?.filter(n => !answered.has(n.worker)).map(n => ({ ...n, trusted: policy != null && trustsDid(policy, n.worker) }))
    return { record: releases != null ? { ...record, releases } : record, verdict: v == null ? null : verdictView(v), attestations, threshold: policy?.threshold ?? null }
  }

  async logs (jobId: string, options: Omit<ReadLogsOptions, 'policy'> = {}): Promise<LogsView> {
    let policy: TrustPolicy | null = null
    try { policy = this.components.policy.current() } catch { policy = null }
    return await readLogs(this.components, jobId, { ...options, policy })
  }
}
