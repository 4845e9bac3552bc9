/**
 * What a requester does when a verdict settles: keep the accepted artifact
 * and write its proof bundle, or diagnose a dispute. One operation each; the
 * requester calls them with the verdict, and the policy, of the evaluation
 * that settled, so a bundle always records the policy its verdict used.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import type { Pins } from '@helia/interface'
import type { Blockstore } from 'interface-blockstore'
import type { SignedJob, TrustPolicy, Verdict } from '../../protocol/index.ts'
import type { RecordStore } from '../store/records.ts'
import { pin } from '../store/pin.ts'
import type { DagTransfer } from '../net/dag-transfer/index.ts'
import { DEFAULT_FETCH_LIMITS } from '../content/limits.ts'
import { prefetchBounds } from '../content/prefetch.ts'
import { NoArtifactError, NoDisputeError } from './errors.ts'

export interface OutcomeComponents {
  blockstore: Blockstore
  pins: Pick<Pins, 'add' | 'isPinned'>
  records: Pick<RecordStore, 'attestations'>
  /** the DAG transfer: the artifact from the workers that hold it, before the pin's walk (bitswap) fetches what is left */
  dag?: Pick<DagTransfer, 'fetch'>
}

export interface OutcomeDirs {
  /** `<bundles>/<jobId>.car` */
  bundles: string
  /** `<disputes>/<jobId>/report.txt` */
  disputes: string
}

/**
 * Fetch (from the workers that built it) and pin the whole artifact DAG, then
 * write the bundle: the job, the counted attestations, every artifact block
 * and the policy that counted them.
 */
export async function writeAcceptedBundle (components: OutcomeComponents, dirs: OutcomeDirs, job: SignedJob, verdict: Verdict, policy: TrustPolicy, options: AbortOptions = {}): Promise<string> {
  if (verdict.artifact == null) throw new NoArtifactError(`job ${job.jobId} has no accepted artifact`)
  const artifact = CID.parse(verdict.artifact)
  // The DAG transfer first, as `concur get` and a worker's input fetch do. The
  // pin walks the DAG through the networked blockstore, which asks bitswap for
  // every block it lacks; over relayed connections (workers behind NAT) bitswap
  // stalled: seen in the namespace network, the job accepted 3 s after
  // submission and its bundle still unwritten 4 minutes later, 1 run of 6. What
  // the transfer leaves (or all of it, when it fails) the pin still fetches.
  if (components.dag != null) {
    try {
      await components.dag.fetch(artifact, { ...prefetchBounds(DEFAULT_FETCH_LIMITS), ...(options.signal != null ? { signal: options.signal } : {}) })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
    }
  }
  await pin(components.pins, artifact, options)
  await mkdir(dirs.bundles, { recursive: true })
  const counted = new Set(verdict.counted)
  const attestations = components.records.attestations(job.job.buildId)
    .filter(a => a.claim.result.status === 'success' && a.claim.result.artifact === verdict.artifact && counted.has(a.claim.worker))
  const out = join(dirs.bundles, `${job.jobId}.car`)
  // loaded on first use: an idle daemon does not carry the CAR code
  const { writeBundle } = await import('./bundle/index.ts')
  await writeBundle(components.blockstore, { job, attestations, artifact, policy: policy.input }, out, options)
  return out
}

/**
 * Diff every artifact CID of a dispute against the best-supported one, each
 * named with the workers that built it; report.txt and report.json go to
 * `<disputes>/<jobId>/`. The summary (shown by `concur status`) names the
 * CIDs, their workers and their first differences, one safe line each.
 */
export async function diagnoseDisputed (components: Pick<OutcomeComponents, 'blockstore'>, dirs: OutcomeDirs, job: SignedJob, verdict: Verdict, options: AbortOptions & { budgetMs?: number } = {}): Promise<{ report: string, summary: string }> {
  const [first, ...rest] = verdict.candidates
  if (first == null || rest.length === 0) throw new NoDisputeError(`job ${job.jobId}: a dispute needs two artifacts`)
  const dir = join(dirs.disputes, job.jobId)
  // loaded on first use: an idle daemon does not carry the diff code
  const { diagnoseDisputeSet, disputeSummary } = await import('./diff/index.ts')
  const report = await diagnoseDisputeSet(components.blockstore, [first, ...rest], dir, options)
  return { report: report.reportText, summary: disputeSummary(report) }
}

/**
 * The diff behind a non-reproducible record: the CIDs trusted keys built for
 * different jobs of this build (an honest rerun that differs), compared like
 * a dispute's, into `<disputes>/<jobId>/non-reproducible/`. Untrusted keys'
 * records are left out: keys are free, and each CID costs a fetch and a diff.
 */
export async function diagnoseNonReproducible (components: Pick<OutcomeComponents, 'blockstore'>, dirs: OutcomeDirs, job: SignedJob, verdict: Verdict, options: AbortOptions & { budgetMs?: number } = {}): Promise<{ report: string, summary: string }> {
  const byArtifact = new Map<string, { artifact: string, trusted: string[], untrusted: string[], belowTier: string[] }>()
  for (const n of verdict.nonReproducible) {
    if (!n.trusted) continue
    for (const { artifact } of n.artifacts) {
      const c = byArtifact.get(artifact) ?? { artifact, trusted: [], untrusted: [], belowTier: [] }
      c.trusted.push(n.worker)
      byArtifact.set(artifact, c)
    }
  }
  const [first, ...rest] = [...byArtifact.values()]
  if (first == null || rest.length === 0) throw new NoDisputeError(`job ${job.jobId}: no trusted key built two artifacts of this build`)
  const dir = join(dirs.disputes, job.jobId, 'non-reproducible')
  const { diagnoseDisputeSet, disputeSummary } = await import('./diff/index.ts')
  const report = await diagnoseDisputeSet(components.blockstore, [first, ...rest], dir, options)
  return { report: report.reportText, summary: disputeSummary(report) }
}
