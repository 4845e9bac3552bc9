/**
 * The requester's data: what it keeps per job, and the views it serves. The
 * API (node/api/types.ts) re-exports these, so the daemon, the CLI and the
 * tests read one definition.
 */
import type { TypedEventTarget } from '@libp2p/interface'
import type { BuildResult, BuildVariation, HostToolchain, ReleaseKind, SandboxTier, TrustPolicy, TrustPolicyInput, Verdict, VerdictStatus } from '../../protocol/index.ts'

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
  /** `submit --no-reuse`: judged on this job's own attestations only (absent: false) */
  onlyThisJob?: boolean
  published: boolean
  counted: string[]
  dissent: Array<{ worker: string, artifact: string }>
  reasons: string[]
  history: Array<{ at: string, status: RequestStatus, artifact?: string }>
  /** the policy the current status was decided under (also the one in the bundle) */
  policy?: TrustPolicyInput
  bundle?: string
  bundleError?: string
  /** the bundle written when the job was accepted, set aside once it no longer was (it would still verify offline) */
  revokedBundle?: string
  /** the dispute report; `cids`: the CIDs trusted keys had named when it was made (a new one makes it again) */
  dispute?: { report?: string, summary?: string, error?: string, cids?: string[] }
  /** the diff of a non-reproducible build (trusted keys' different CIDs on different jobs); `cids`: what it covers */
  nonReproducible?: { report?: string, summary?: string, error?: string, cids: string[] }
  /**
   * Workers that said they are not building this job, and why (signed
   * releases, PROTOCOL.md §7 rule 6): each worker's latest, trusted keys'
   * kept first (MAX_RELEASES_KEPT in requester.ts).
   */
  releases?: ReleaseNote[]
}

/** One worker's signed release of a job, as kept: who, what kind, why, when (its claim's issuedAt) */
export interface ReleaseNote {
  worker: string
  kind: ReleaseKind
  reason: string
  at: string
  /** whether its key was trusted when it came (the view says so again under the current policy) */
  trusted: boolean
}

/** A verdict as served: the equivocators' proof envelopes stay in the records. */
export type VerdictView = Omit<Verdict, 'equivocators'> & { equivocators: Array<{ worker: string }> }

export function verdictView (v: Verdict): VerdictView {
  return { ...v, equivocators: v.equivocators.map(e => ({ worker: e.worker })) }
}

export interface AttestationView {
  worker: string
  trusted: boolean
  jobId: string
  /** it answers this job (false: another job of the same build, read as reuse or evidence) */
  thisJob: boolean
  /** what the worker varied for this build (PROTOCOL.md §5.2), when the job asked */
  variation?: BuildVariation
  /** the toolchain of the host it built on (a host-environment build, buildType v2) */
  host?: HostToolchain
  result: BuildResult
  log: string | null
  sandboxTier: SandboxTier
  finishedAt: string
}

/** GET /v1/requests/:id */
export interface RequestView {
  record: RequestRecord
  /** the last evaluation (null before the first) */
  verdict: VerdictView | null
  attestations: AttestationView[]
  threshold: number | null
}

/** One log of GET /v1/requests/:id/logs */
export interface LogView {
  worker: string
  trusted: boolean
  log?: string
  status: string
  /** absent when not loaded: see `skipped` */
  text?: string
  skipped?: string
  size?: number
  shown?: number
  truncated?: boolean
}

export interface LogsView { jobId: string, logs: LogView[] }

/** A request reached a state from which `submit --wait` can stop, or changed after it. */
export interface VerdictChange { jobId: string, status: RequestStatus, previous: RequestStatus | null, artifact?: string, counted: string[], threshold: number }

export interface RequesterEvents {
  'verdict:changed': CustomEvent<VerdictChange>
  'bundle:written': CustomEvent<{ jobId: string, path: string }>
  'bundle:failed': CustomEvent<{ jobId: string, error: string }>
  'dispute:diagnosed': CustomEvent<{ jobId: string, report?: string, error?: string }>
  'non-reproducible:diagnosed': CustomEvent<{ jobId: string, report?: string, error?: string }>
  /** a worker released one of our jobs (its note is in the record) */
  'release:recorded': CustomEvent<{ jobId: string } & ReleaseNote>
}

/**
 * Where the requester's trust policy comes from. `current()` is read once per
 * evaluation: the verdict, the record and the bundle of that evaluation all
 * name the same policy. 'policy:changed' makes every open request re-evaluated.
 */
export interface PolicySource extends TypedEventTarget<{ 'policy:changed': CustomEvent<TrustPolicy | null> }> {
  /** the usable policy, or throws NoPolicyError saying what to run */
  current (): TrustPolicy
}

/** Whether `submit --wait` has all it waits for: a final state and its bundle or diagnosis. */
export function isSettled (r: RequestRecord): boolean {
  switch (r.status) {
    case 'accepted': return r.bundle != null || r.bundleError != null
    case 'disputed': return r.dispute != null
    case 'failed':
    case 'expired': return true
    default: return false
  }
}
