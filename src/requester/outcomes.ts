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
import { keyHex, revealedDigest } from '../../protocol/index.ts'
import type { SignedAttestation, SignedCommitment, SignedJob, TrustPolicy, Verdict } from '../../protocol/index.ts'
import type { RecordStore } from '../store/records.ts'
import type { CommitmentBook } from '../store/commitment-book.ts'
import { pin } from '../store/pin.ts'
import { DEFAULT_FETCH_LIMITS } from '../content/limits.ts'
import { prefetchBounds } from '../content/prefetch.ts'
import type { ExportOptions } from '../content/export-directory.ts'
import { NoArtifactError, NoDisputeError } from './errors.ts'

export interface OutcomeComponents {
  blockstore: Blockstore
  pins: Pick<Pins, 'add' | 'isPinned'>
  records: Pick<RecordStore, 'attestations' | 'equivocations'>
  /**
   * The node's DAG transfer (one stream per providing peer): the artifact is
   * fetched by it before the pin walks the DAG. Over a relayed connection (a
   * worker behind NAT) bitswap's want-lists were seen to stall for minutes
   * (issue 17: 1 run in 9 took 245 s) where the transfer's streams delivered
   * at once. None: the pin fetches every block through bitswap.
   */
  transfer?: NonNullable<ExportOptions['transfer']>
  /** the commitments held (PROTOCOL.md §8.3): a bundle under a policy that requires them carries the counted keys' */
  commitments?: Pick<CommitmentBook, 'commitments'>
}

/**
 * What a verdict on a build is computed from: the attestations held here,
 * and both envelopes of every equivocation proof held (PROTOCOL.md §8.2). A
 * key a peer proved to equivocate is so judged exactly as if both its
 * statements had reached this node, though one of them may never have (or
 * did not fit under the store's per-key caps). Each attestation once.
 */
export function verdictInput (records: Pick<RecordStore, 'attestations' | 'equivocations'>, buildId: string): SignedAttestation[] {
  const out = new Map<string, SignedAttestation>()
  for (const a of records.attestations(buildId)) out.set(a.id, a)
  for (const p of records.equivocations(buildId)) for (const a of p.attestations) if (!out.has(a.id)) out.set(a.id, a)
  return [...out.values()]
}

export interface OutcomeDirs {
  /** `<bundles>/<jobId>.car` */
  bundles: string
  /** `<disputes>/<jobId>/report.txt` */
  disputes: string
}

/** the part of a bundle's time (the requester gives it 10 minutes) its DAG transfer may take */
export const BUNDLE_TRANSFER_MS = 5 * 60_000

/**
 * Fetch (from the workers that built it) and pin the whole artifact DAG, then
 * write the bundle: the job, the counted attestations, every artifact block
 * and the policy that counted them.
 */
export async function writeAcceptedBundle (components: OutcomeComponents, dirs: OutcomeDirs, job: SignedJob, verdict: Verdict, policy: TrustPolicy, options: AbortOptions & { transferMs?: number } = {}): Promise<string> {
  if (verdict.artifact == null) throw new NoArtifactError(`job ${job.jobId} has no accepted artifact`)
  const artifact = CID.parse(verdict.artifact)
  if (components.transfer != null) {
    // a share of the bundle's time, not all of it: a provider that sends just
    // fast enough not to be dropped (256 KiB per 15 s) could otherwise spend
    // the whole budget, and the pin, which fetches the rest, would never run
    const share = AbortSignal.timeout(options.transferMs ?? BUNDLE_TRANSFER_MS)
    const signal = options.signal != null ? AbortSignal.any([options.signal, share]) : share
    try {
      // bounded like any fetch from the network (a `concur get`): an artifact
      // past the bounds is partly here, and the pin's walk fetches the rest
      await components.transfer(artifact, prefetchBounds(DEFAULT_FETCH_LIMITS), { signal, onBlock: () => {} })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      // what it did not bring, the pin fetches through bitswap
    }
  }
  await pin(components.pins, artifact, options)
  await mkdir(dirs.bundles, { recursive: true })
  const counted = new Set(verdict.counted)
  const attestations = components.records.attestations(job.job.buildId)
    .filter(a => a.claim.result.status === 'success' && a.claim.result.artifact === verdict.artifact && counted.has(a.claim.worker))
  // and every equivocation proof about the build (both envelopes): a
  // verifier whose policy trusts that key must not count it either, and
  // `concur verify` recomputes the verdict from what the bundle carries
  // the counted keys' commitments to this artifact: the verdict counted
  // them only because they came in time, and a verifier whose policy
  // requires commitments counts nothing without them
  const commitments: SignedCommitment[] = []
  if (policy.requireCommitment && components.commitments != null) {
    for (const a of attestations) {
      const digest = revealedDigest(a)
      const c = components.commitments.commitments(a.claim.jobId).find(c => c.commitment.digest === digest && keyHex(c.signer) === keyHex(a.signer))
      if (c != null && !commitments.includes(c)) commitments.push(c)
    }
  }
  const ids = new Set(attestations.map(a => a.id))
  for (const p of components.records.equivocations(job.job.buildId)) {
    for (const a of p.attestations) if (!ids.has(a.id)) { ids.add(a.id); attestations.push(a) }
  }
  const out = join(dirs.bundles, `${job.jobId}.car`)
  // loaded on first use: an idle daemon does not carry the CAR code
  const { writeBundle } = await import('./bundle/index.ts')
  await writeBundle(components.blockstore, { job, attestations, artifact, policy: policy.input, ...(commitments.length > 0 ? { commitments } : {}) }, out, options)
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
