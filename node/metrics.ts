/**
 * The daemon's metrics, in Prometheus' text format at GET
 * /debug/metrics/prometheus (kubo's path), behind the API token like every
 * other route. libp2p's and gossipsub's own metrics are in the same registry
 * (src/net/peer.ts); these are concur's: what gossip brought and what became
 * of it, jobs, builds, verdicts, bytes moved and the store.
 *
 * Label values are this code's own words (topics, outcome names, error codes
 * of a fixed set, event types, sandbox tiers), never a peer's text; the
 * registry caps the label sets of every metric anyway.
 */
import type { Libp2p } from '@libp2p/interface'
import { Registry } from '../src/metrics/registry.ts'
import type { GossipOutcome } from '../src/net/gossip.ts'
import type { DagTransferStats } from '../src/net/dag-transfer/index.ts'
import type { GossipStats } from '../src/net/gossip.ts'
import type { RequestRecord } from '../src/requester/types.ts'
import type { SandboxTier } from '../protocol/index.ts'
import type { FeedEvent } from './api/types.ts'

/** builds take seconds to an hour */
const BUILD_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]
/** a signature check and a decode: tens of microseconds to a few milliseconds */
const VERIFY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05]
/** submit to verdict: a few seconds to the job's lifetime */
const VERDICT_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 900, 3600]

/** what the collected gauges read at each scrape; every part is optional (a bootstrap node has few) */
export interface MetricSources {
  libp2p: Pick<Libp2p, 'getConnections'>
  /** mesh sizes are gossipsub's own (gossipsub_mesh_peer_count) */
  pubsub: { getSubscribers: (topic: string) => unknown[] }
  topics: readonly string[]
  gossip: { stats: () => GossipStats }
  dag: { stats: () => DagTransferStats }
  jobsHeld?: () => number
  requests?: () => RequestRecord[]
  /** one of this node's requests by job id (the verdict latency's start) */
  request?: (jobId: string) => RequestRecord | undefined
  store?: () => { blocks: number, liveBytes: number, diskBytes: number }
  quotaBytes?: number
  worker?: () => { tier: SandboxTier, running: string[] } | null
}

export class DaemonMetrics {
  readonly registry: Registry
  private readonly gossipMessages
  private readonly verifySeconds
  private readonly events
  private readonly builds
  private readonly buildSeconds
  private readonly verdictSeconds
  /** jobs whose first final verdict was timed (a later change, e.g. a recheck's dispute, is not a new latency) */
  private readonly timed = new Set<string>()
  private request: ((jobId: string) => RequestRecord | undefined) | undefined

  constructor (registry = new Registry()) {
    this.registry = registry
    this.gossipMessages = registry.counter({ name: 'concur_gossip_messages_total', help: 'Gossip messages validated, by topic, outcome (accept, ignore, reject) and code (OK, or the error code)', labelNames: ['topic', 'action', 'code'] as const })
    this.verifySeconds = registry.histogram({ name: 'concur_gossip_verification_seconds', help: 'Time to decode and verify one gossip message', labelNames: ['topic'] as const, buckets: VERIFY_BUCKETS })
    this.events = registry.counter({ name: 'concur_events_total', help: 'Events of the daemon\'s feed, by type', labelNames: ['type'] as const })
    this.builds = registry.counter({ name: 'concur_builds_total', help: 'Builds this worker finished, by outcome (success, failure, error, abandoned) and declined jobs', labelNames: ['outcome'] as const })
    this.buildSeconds = registry.histogram({ name: 'concur_build_duration_seconds', help: 'Build time of attested builds (the attestation\'s startedAt to finishedAt), by result', labelNames: ['result'] as const, buckets: BUILD_BUCKETS })
    this.verdictSeconds = registry.histogram({ name: 'concur_verdict_latency_seconds', help: 'Submit to the first final verdict of this node\'s requests, by verdict', labelNames: ['status'] as const, buckets: VERDICT_BUCKETS })
  }

  /** gossip's validator tells each outcome here (ConcurGossipInit.observe) */
  readonly gossipOutcome = (o: GossipOutcome): void => {
    this.gossipMessages.inc(1, { topic: o.topic, action: o.action, code: o.code })
    if (o.seconds != null) this.verifySeconds.observe(o.seconds, { topic: o.topic })
  }

  /** every event of the feed (EventHub.listen) */
  readonly event = (e: FeedEvent): void => {
    this.events.inc(1, { type: e.type })
    switch (e.type) {
      case 'build:attested': {
        this.builds.inc(1, { outcome: e.result.status })
        const s = (Date.parse(e.finishedAt) - Date.parse(e.startedAt)) / 1000
        if (Number.isFinite(s) && s >= 0) this.buildSeconds.observe(s, { result: e.result.status })
        break
      }
      case 'build:error': this.builds.inc(1, { outcome: 'error' }); break
      case 'build:abandoned': this.builds.inc(1, { outcome: 'abandoned' }); break
      case 'job:declined': this.builds.inc(1, { outcome: 'declined' }); break
      case 'request:verdict': {
        if (!['accepted', 'disputed', 'failed'].includes(e.status) || this.timed.has(e.jobId)) break
        const record = this.request?.(e.jobId)
        if (record == null) break
        this.timed.add(e.jobId)
        const s = (Date.now() - Date.parse(record.submittedAt)) / 1000
        if (Number.isFinite(s) && s >= 0) this.verdictSeconds.observe(s, { status: e.status })
        break
      }
      default: break
    }
  }

  /** the gauges read at scrape time from the running parts */
  attach (src: MetricSources): void {
    const r = this.registry
    this.request = src.request
    r.gauge({ name: 'concur_peers_connected', help: 'Open libp2p connections', collect: g => { g.set(src.libp2p.getConnections().length) } })
    r.gauge({
      name: 'concur_gossip_topic_peers',
      help: 'Peers subscribed to each concur topic',
      labelNames: ['topic'] as const,
      collect: g => { for (const t of src.topics) g.set(src.pubsub.getSubscribers(t).length, { topic: t }) }
    })
    r.gauge({
      name: 'concur_gossip_unread_total',
      help: 'Gossip messages dropped unread: their sender was graylisted or over its budget of useless messages',
      labelNames: ['why'] as const,
      collect: g => { const s = src.gossip.stats(); g.set(s.graylisted, { why: 'graylisted' }); g.set(s.rateLimited, { why: 'rate-limited' }) }
    })
    r.gauge({
      name: 'concur_dag_bytes_total',
      help: 'Bytes of blocks moved by the DAG transfer, fetched and served',
      labelNames: ['direction'] as const,
      collect: g => { const s = src.dag.stats(); g.set(s.fetched.bytes, { direction: 'fetched' }); g.set(s.served.bytes, { direction: 'served' }) }
    })
    r.gauge({
      name: 'concur_dag_blocks_total',
      help: 'Blocks moved by the DAG transfer, fetched and served',
      labelNames: ['direction'] as const,
      collect: g => { const s = src.dag.stats(); g.set(s.fetched.blocks, { direction: 'fetched' }); g.set(s.served.blocks, { direction: 'served' }) }
    })
    r.gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory of the daemon process', collect: g => { g.set(process.memoryUsage().rss) } })
    r.gauge({ name: 'nodejs_heap_used_bytes', help: 'V8 heap in use', collect: g => { g.set(process.memoryUsage().heapUsed) } })
    if (src.jobsHeld != null) {
      const held = src.jobsHeld
      r.gauge({ name: 'concur_jobs_held', help: 'Jobs held in the record store (any requester\'s)', collect: g => { g.set(held()) } })
    }
    if (src.requests != null) {
      const list = src.requests
      r.gauge({
        name: 'concur_requests',
        help: 'This node\'s own requests, by status',
        labelNames: ['status'] as const,
        collect: g => {
          const counts = new Map<string, number>(['pending', 'provisional', 'accepted', 'disputed', 'failed', 'expired'].map(s => [s, 0]))
          for (const rec of list()) counts.set(rec.status, (counts.get(rec.status) ?? 0) + 1)
          for (const [status, n] of counts) g.set(n, { status })
        }
      })
    }
    if (src.store != null) {
      const store = src.store
      r.gauge({
        name: 'concur_store_bytes',
        help: 'Block store size: live (blocks held) and disk (pack files, deleted blocks included until compaction)',
        labelNames: ['kind'] as const,
        collect: g => { const s = store(); g.set(s.liveBytes, { kind: 'live' }); g.set(s.diskBytes, { kind: 'disk' }) }
      })
      r.gauge({ name: 'concur_store_blocks', help: 'Blocks held', collect: g => { g.set(store().blocks) } })
    }
    if (src.quotaBytes != null) {
      const q = src.quotaBytes
      r.gauge({ name: 'concur_store_quota_bytes', help: 'The block store\'s quota (--store-max)', collect: g => { g.set(q) } })
    }
    if (src.worker != null) {
      const worker = src.worker
      r.gauge({ name: 'concur_builds_running', help: 'Builds running now', collect: g => { g.set(worker()?.running.length ?? 0) } })
      r.gauge({
        name: 'concur_sandbox_tier',
        help: 'The sandbox tier this worker builds in (1 for its tier)',
        labelNames: ['tier'] as const,
        collect: g => { const w = worker(); if (w != null) g.set(1, { tier: w.tier }) }
      })
    }
  }
}
