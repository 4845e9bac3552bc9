/**
 * The local API's request and response bodies: one definition, read by the
 * routes that serve them, the CLI that renders them and the tests that check
 * them. The requester's views are src/requester's own types.
 */
import type { BuildResult, ClaimRelease, JobVariation, ReleaseKind, ResourceAsk } from '../../protocol/index.ts'
import type { DagTransferStats } from '../../src/net/dag-transfer/index.ts'
import type { FetchProgress } from '../../src/content/fetch-progress.ts'
import type { GossipStats } from '../../src/net/gossip.ts'
import type { StoreUsage } from '../../src/store/records.ts'
import type { WorkerEvent } from '../../src/worker/worker.ts'
import type { RequestRecord } from '../../src/requester/types.ts'
import type { PolicyFile } from '../policy-store.ts'

export type { AttestationView, LogView, LogsView, RequestRecord, RequestStatus, RequestView, VerdictView } from '../../src/requester/types.ts'
export type { PolicyFile } from '../policy-store.ts'

/** POST /v1/jobs */
export interface SubmitBody {
  /** absolute path of the source directory */
  source: string
  command: string[]
  output: string
  env?: Record<string, string>
  /** 'host' or a root filesystem's CID */
  environment?: string
  platform?: string
  replicas?: number
  resources?: Partial<ResourceAsk>
  ttlSeconds?: number
  reuse?: boolean
  /** keep version control directories (.git, .hg, …) in the source (default false) */
  includeVcs?: boolean
  /** what the replicas vary (PROTOCOL.md §5.1): ['clock'] asks each worker to build with its own clock offset */
  vary?: JobVariation[]
  /** announce a sharded job (PROTOCOL.md §6.1): only v1.1 workers serving its shard see it */
  sharded?: boolean
}

/** POST /v1/content/add */
export interface AddResponse {
  cid: string
  bytes: number
  files: number
  /** devices, sockets and FIFOs left out (`skipSpecial`): how many, and the first few paths */
  skippedSpecial: { count: number, paths: string[] }
}

export interface SubmitResponse {
  /** what the requester could tell before announcing (e.g. no trusted worker's advert would take the job): advice, the job was announced */
  warnings: string[]
  jobId: string
  buildId: string
  source: string
  record: RequestRecord
  threshold: number
  /** the event feed's position before the job was announced: wait from here and miss nothing */
  eventSeq: number
  /** entries of the directory left out of the source (VCS directories, `.concurignore`) */
  excluded: number
  /** rules read from the source's `.concurignore` */
  ignoreRules: number
  /** whether VCS directories were left out */
  vcsExcluded: boolean
}

/** GET /v1/requests */
export interface RequestsResponse { requests: RequestRecord[] }

/** GET /v1/requests/:id/report[?kind=non-reproducible] */
export interface ReportView {
  jobId: string
  kind: 'dispute' | 'non-reproducible'
  /** report.txt on the requester's disk */
  path: string
  size: number
  /** the text is the first MAX_REPORT_BYTES of the file */
  truncated: boolean
  text: string
  summary?: string
  /** the paths that differ from the reference, each with the CID it differs in (from report.json; at most 500) */
  differences: Array<{ artifact: string, change: string, path: string }>
}

/** GET and POST /v1/policy */
export interface PolicyResponse {
  policy: PolicyFile
  /** why the saved policy is not usable yet (no keys, no threshold); absent when it is */
  problem?: string
}

/** what a connected peer serves, from its identify protocols (GET /v1/peers) */
export type PeerRole = 'relay' | 'gossip' | 'dag' | 'concur'

/** GET /v1/id */
export interface IdResponse { did: string, peerId: string, multiaddrs: string[] }

/** GET /v1/stats */
export interface StatsResponse { gossip: GossipStats, memory: NodeJS.MemoryUsage, store?: StoreUsage, dag: DagTransferStats }

/**
 * One entry of the daemon's event feed (GET /v1/events). Records and claims
 * as this node stored them, the requester's verdicts, and a worker's builds.
 */
export type FeedEvent =
  | { type: 'job', jobId: string, buildId: string, requester: string }
  | { type: 'attestation', id: string, jobId: string, buildId: string, worker: string, workerPeerId: string, result: BuildResult }
  | { type: 'claim', jobId: string, worker: string, leaseUntil: string, seq: number, release?: ClaimRelease }
  /** an equivocation proof kept here (PROTOCOL.md §8.2); `detected`: made from this node's own records, and published */
  | { type: 'equivocation', buildId: string, jobId: string, worker: string, detected: boolean }
  | { type: 'request:release', jobId: string, worker: string, kind: ReleaseKind, reason: string, at: string, trusted: boolean }
  | { type: 'request:verdict', jobId: string, status: string, previous: string | null, artifact?: string, counted: string[], threshold: number }
  | { type: 'request:bundle', jobId: string, path: string }
  | { type: 'request:bundle-failed', jobId: string, error: string }
  | { type: 'request:dispute', jobId: string, report?: string, error?: string }
  | { type: 'request:non-reproducible', jobId: string, report?: string, error?: string }
  | { type: 'policy:changed', threshold: number | null, trusted: number }
  | { type: 'content:add', cid: string, bytes: number }
  /** a `concur get` in progress: `id` is the one its caller chose (POST /v1/content/get "progressId") */
  | ({ type: 'content:progress', id: string, cid: string } & FetchProgress)
  | (WorkerEvent & { worker: string })

export interface SequencedEvent { seq: number, at: string, event: FeedEvent }

/** GET /v1/events?after=N&wait=MS[&jobId=ID][&progress=ID] */
export interface EventsResponse {
  /** the newest seq: lower than a reader's `after` means the daemon restarted (seqs start again) */
  last: number
  /** the oldest seq the feed still holds: higher than `after + 1` means the reader missed some */
  first: number
  events: SequencedEvent[]
}
