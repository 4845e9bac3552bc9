/**
 * Verdict: what a requester may conclude from the attestations it has seen
 * for one buildId under its trust policy. Pure and order-independent: the
 * same set of attestations always gives the same verdict.
 *
 * Never a majority vote: only distinct trusted raw keys on the *same* artifact
 * CID count, a key that signed two CIDs for one job counts for nothing, and
 * disagreement among trusted keys on one job is `disputed`.
 *
 * Attempts (PROTOCOL.md §8): every attestation names the job it answers. Two
 * different CIDs from one key for one job are equivocation (an attack); two
 * different CIDs from one key for two jobs of the same build are a finding:
 * the build is not reproducible (an honest rerun of a build that embeds the
 * time does exactly that). Either way a key is never counted for two CIDs in
 * one verdict.
 */
import type { Envelope } from './dsse.ts'
import type { SignedAttestation } from './attestation.ts'
import { tierAtLeast } from './build.ts'
import { didFromPublicKey, keyHex, publicKeyFromDid } from './keys.ts'
import { isTrustedSigner, operatorOfKey } from './policy.ts'
import { owedVariation } from './job.ts'
import type { BuildVariation, JobVariation } from './job.ts'
import type { TrustPolicy } from './policy.ts'
import { committedInTime } from './commitment.ts'
import type { CommitmentEvidence } from './commitment.ts'

export type VerdictStatus = 'pending' | 'provisional' | 'accepted' | 'disputed' | 'failed'

export interface VerdictCandidate {
  artifact: string
  trusted: string[]
  untrusted: string[]
  belowTier: string[]
  /**
   * Only under a policy that requires commitments (§8.3): trusted keys that
   * named this artifact without a commitment seen before it was first
   * revealed. Not counted (a copier looks exactly like this), but still a
   * trusted key's word: its dissent disputes, as a key below the tier does.
   */
  uncommitted?: string[]
}

/** One key that signed different artifacts for different jobs of one build: the build is not reproducible. */
export interface NonReproducible { worker: string; trusted: boolean; artifacts: Array<{ artifact: string; jobs: string[] }> }

export interface Verdict {
  status: VerdictStatus
  buildId: string
  /** the job judged (VerdictOptions.jobId), when one was named */
  jobId?: string
  artifact?: string
  threshold: number
  counted: string[]
  candidates: VerdictCandidate[]
  failures: Array<{ worker: string; trusted: boolean; reason: string; exitCode: number | null }>
  equivocators: Array<{ worker: string; envelopes: [Envelope, Envelope] }>
  dissent: Array<{ worker: string; artifact: string }>
  /** keys whose answers to different jobs of this build differ: evidence, never an accusation */
  nonReproducible: NonReproducible[]
  /**
   * Only when the policy groups keys by operator or sets `minOperators`
   * (PROTOCOL.md §8.1): the distinct operators `counted` spans (an unnamed
   * key is its own, named by its did:key), sorted, and how many must be.
   */
  operators?: { spanned: string[]; min: number }
  reasons: string[]
}

export interface VerdictOptions {
  /**
   * The job (attempt) being judged. A key that attested this job is counted
   * for what it said here; what it said for other jobs of the same build is
   * evidence (nonReproducible), so an earlier acceptance stands when a rerun
   * differs. A trusted key's dissent on this job disputes it.
   */
  jobId?: string
  /** count only attestations of `jobId` (`submit --no-reuse`); other jobs' are read only as evidence */
  onlyJob?: boolean
  /**
   * What the judged job asked its replicas to vary (its `vary`). An answer
   * to it whose `variation` is not exactly what its worker owed
   * (`owedVariation(vary, worker, jobId, parallelism)`: every asked key with
   * the derived value, no other key) is not counted: agreement is to mean
   * "reproducible under variation", and a worker that built with the real
   * clock or hostname, or says it varied something else, did not check that.
   */
  vary?: readonly JobVariation[]
  /**
   * What this node saw of commitments (§8.3): read only when the policy
   * requires them. Absent under such a policy: no attestation is committed
   * in time, so none counts (a node that kept no order cannot show one).
   */
  commitments?: CommitmentEvidence
}

interface JobAnswers {
  /** artifact CID → this key's attestations of it for this job */
  successes: Map<string, SignedAttestation[]>
  failures: SignedAttestation[]
}

interface Signer {
  key: string
  did: string
  trusted: boolean
  /** jobId → what this key said for that job */
  jobs: Map<string, JobAnswers>
}

/** What one key contributes to this verdict (VerdictOptions decide which of its jobs). */
interface Answer {
  signer: Signer
  /** its one artifact here, when it names exactly one */
  artifact?: string
  successes: SignedAttestation[]
  failures: SignedAttestation[]
  /** it answered the judged job itself (or no job was named): its answer is final */
  final: boolean
}

const byString = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/**
 * Whether a trusted key (counted, or below the policy's tier) named this
 * artifact. Only such CIDs may be chosen as provisional, make a dispute, or
 * be fetched and diffed for a report: untrusted keys are free to make, so
 * what they alone name is shown, never acted on.
 */
export function namedByTrustedKey (c: Pick<VerdictCandidate, 'trusted' | 'belowTier' | 'uncommitted'>): boolean {
  return c.trusted.length + c.belowTier.length + (c.uncommitted?.length ?? 0) > 0
}

/** how a reason names what a job asked to vary */
const VARIATION_NAMES: Record<JobVariation, string> = { clock: 'clock offset', cpus: 'CPU count', hostname: 'hostname', timezone: 'timezone' }

/** the same keys with the same values (a variation record holds only numbers and strings) */
function sameVariation (said: BuildVariation | undefined, owed: BuildVariation | undefined): boolean {
  if (said === undefined || owed === undefined) return said === owed
  const keys = (v: BuildVariation): string[] => Object.keys(v).filter(k => v[k as keyof BuildVariation] !== undefined).sort(byString)
  const a = keys(said)
  return a.join('\n') === keys(owed).join('\n') && a.every(k => said[k as keyof BuildVariation] === owed[k as keyof BuildVariation])
}

/** whether the policy says anything about operators: without, a verdict is exactly what it was before §8.1 */
function groupsOperators (policy: TrustPolicy): boolean {
  return policy.input.operators !== undefined || policy.input.minOperators !== undefined
}

/** the distinct operators of these trusted did:keys (a key no operator names is its own, by its did), sorted */
function operatorsOf (policy: TrustPolicy, dids: readonly string[]): string[] {
  return [...new Set(dids.map(did => operatorOfKey(policy, keyHex(publicKeyFromDid(did)))))].sort(byString)
}

export function evaluateVerdict (policy: TrustPolicy, buildId: string, attestations: SignedAttestation[], options: VerdictOptions = {}): Verdict {
  const v = decide(policy, buildId, attestations, options)
  if (groupsOperators(policy)) v.operators = { spanned: operatorsOf(policy, v.counted), min: policy.minOperators }
  return v
}

function decide (policy: TrustPolicy, buildId: string, attestations: SignedAttestation[], options: VerdictOptions): Verdict {
  const k = policy.threshold
  const reasons: string[] = []
  const judged = options.jobId
  // a job that asks for a variation is judged on its own answers: answers
  // to other jobs of the build were not made under it, so reusing them would
  // accept the build without the check the job asks for
  const onlyJob = (options.onlyJob === true || (options.vary?.length ?? 0) > 0) && judged !== undefined

  const varied = judged !== undefined && (options.vary?.length ?? 0) > 0

  // 1. Only this build. Attestations are reusable across jobs, never across buildIds.
  let otherBuilds = 0
  let unvaried = 0
  const signers = new Map<string, Signer>()
  const seen = new Set<string>()
  for (const a of attestations) {
    if (a.claim.buildId !== buildId) { otherBuilds++; continue }
    if (varied && a.claim.jobId === judged && !sameVariation(a.claim.variation, owedVariation(options.vary, a.claim.worker, judged, a.claim.parallelism))) { unvaried++; continue }
    const key = keyHex(a.signer)
    // 2. The same signed statement seen twice (re-gossiped, re-wrapped) is one statement.
    const dedupe = `${key}:${a.id}`
    if (seen.has(dedupe)) continue
    seen.add(dedupe)
    let s = signers.get(key)
    if (s === undefined) {
      s = { key, did: didFromPublicKey(a.signer), trusted: isTrustedSigner(policy, a.signer), jobs: new Map() }
      signers.set(key, s)
    }
    let j = s.jobs.get(a.claim.jobId)
    if (j === undefined) { j = { successes: new Map(), failures: [] }; s.jobs.set(a.claim.jobId, j) }
    if (a.claim.result.status === 'success') {
      const list = j.successes.get(a.claim.result.artifact) ?? []
      list.push(a)
      j.successes.set(a.claim.result.artifact, list)
    } else {
      j.failures.push(a)
    }
  }
  if (otherBuilds > 0) reasons.push(`ignored ${otherBuilds} attestation(s) for other buildIds`)
  if (unvaried > 0) reasons.push(`ignored ${unvaried} attestation(s) of this job without the ${options.vary!.map(v => VARIATION_NAMES[v]).join(', ')} it asked its workers for`)

  // 3. Equivocation: one key, two different artifacts for one job. Both
  // envelopes are the proof. A key proven to lie about one job of this build
  // is not believed about any other job of it.
  const equivocators: Verdict['equivocators'] = []
  const honest: Signer[] = []
  const sorted = [...signers.values()].sort((a, b) => byString(a.key, b.key))
  for (const s of sorted) {
    const jobId = [...s.jobs.keys()].sort(byString).find(id => s.jobs.get(id)!.successes.size >= 2)
    if (jobId !== undefined) {
      const successes = s.jobs.get(jobId)!.successes
      const [c1, c2] = [...successes.keys()].sort(byString) as [string, string]
      // The proof is picked independently of arrival order: the lowest attestation id per artifact.
      const pick = (cid: string): Envelope => [...successes.get(cid)!].sort((a, b) => byString(a.id, b.id))[0]!.envelope
      equivocators.push({ worker: s.did, envelopes: [pick(c1), pick(c2)] })
      reasons.push(`${s.did} equivocated (signed ${successes.size} different artifacts for job ${jobId}): it counts for nothing`)
    } else {
      honest.push(s)
    }
  }

  // 4. Not reproducible: one honest key, different artifacts for different
  // jobs. Read over every job (even with onlyJob): it is what a rerun found.
  const nonReproducible: NonReproducible[] = []
  for (const s of honest) {
    const jobsOf = new Map<string, string[]>()
    for (const [jobId, j] of s.jobs) for (const artifact of j.successes.keys()) jobsOf.set(artifact, [...(jobsOf.get(artifact) ?? []), jobId])
    if (jobsOf.size < 2) continue
    const artifacts = [...jobsOf].map(([artifact, jobs]) => ({ artifact, jobs: jobs.sort(byString) })).sort((a, b) => byString(a.artifact, b.artifact))
    nonReproducible.push({ worker: s.did, trusted: s.trusted, artifacts })
    reasons.push(`not reproducible: ${s.did} built ${artifacts.map(a => `${a.artifact} (job ${a.jobs.join(', ')})`).join(' and ')}`)
  }

  // 5. Each honest key's answer here: its answer to the judged job if it gave
  // one, else (unless onlyJob) its answers to other jobs of this build, as
  // long as they name one artifact.
  const answers: Answer[] = []
  for (const s of honest) {
    const own = judged === undefined ? undefined : s.jobs.get(judged)
    const from = own !== undefined ? [own] : onlyJob ? [] : [...s.jobs.values()]
    if (from.length === 0) continue
    const successes = from.flatMap(j => [...j.successes.values()].flat())
    const failures = from.flatMap(j => j.failures)
    const artifacts = new Set(successes.map(a => (a.claim.result as { artifact: string }).artifact))
    answers.push({
      signer: s,
      ...(artifacts.size === 1 ? { artifact: [...artifacts][0]! } : {}),
      successes,
      failures,
      // two artifacts over different jobs and none for the judged job: no
      // artifact, so counted for neither
      final: judged === undefined || own !== undefined
    })
  }

  const tierOk = (list: SignedAttestation[]): boolean =>
    policy.minTier === undefined || list.some(a => tierAtLeast(a.claim.sandboxTier, policy.minTier!))
  // §8.3: under a policy that requires commitments, a key counts for an
  // artifact only through an attestation it committed to before that
  // artifact was first revealed here (any attestation of it, by any key)
  const evidence: CommitmentEvidence = options.commitments ?? { commitments: [], revealed: new Map() }
  const committed = (list: SignedAttestation[]): boolean => !policy.requireCommitment || list.some(a => committedInTime(a, evidence))

  // 6. Candidates: per artifact, distinct keys split by trust and sandbox tier.
  const byArtifact = new Map<string, VerdictCandidate>()
  for (const a of answers) {
    if (a.artifact === undefined) continue
    let c = byArtifact.get(a.artifact)
    if (c === undefined) {
      c = { artifact: a.artifact, trusted: [], untrusted: [], belowTier: [], ...(policy.requireCommitment ? { uncommitted: [] } : {}) }
      byArtifact.set(a.artifact, c)
    }
    if (!a.signer.trusted) c.untrusted.push(a.signer.did)
    else if (!tierOk(a.successes)) c.belowTier.push(a.signer.did)
    else if (!committed(a.successes)) c.uncommitted!.push(a.signer.did)
    else c.trusted.push(a.signer.did)
  }
  const candidates = [...byArtifact.values()]
  for (const c of candidates) { c.trusted.sort(byString); c.untrusted.sort(byString); c.belowTier.sort(byString); c.uncommitted?.sort(byString) }
  const late = candidates.flatMap(c => (c.uncommitted ?? []).map(did => `${did} (${c.artifact})`))
  if (late.length > 0) reasons.push(`not counted: trusted key(s) ${late.join(', ')} without a commitment seen before that artifact was first revealed (PROTOCOL.md §8.3)`)
  candidates.sort((a, b) => (b.trusted.length - a.trusted.length) || (b.untrusted.length - a.untrusted.length) || byString(a.artifact, b.artifact))

  const failures: Verdict['failures'] = []
  for (const a of answers) {
    for (const f of a.failures) {
      if (f.claim.result.status !== 'failure') continue
      failures.push({ worker: a.signer.did, trusted: a.signer.trusted, reason: f.claim.result.reason, exitCode: f.claim.result.exitCode })
    }
  }
  failures.sort((a, b) => byString(a.worker, b.worker) || byString(a.reason, b.reason))

  const base = { buildId, ...(judged !== undefined ? { jobId: judged } : {}), threshold: k, candidates, failures, equivocators, nonReproducible }
  const trustedAnswers = answers.filter(a => a.signer.trusted)
  const dissentFrom = (artifact: string): Verdict['dissent'] => trustedAnswers
    .filter(a => a.artifact !== undefined && a.artifact !== artifact)
    .map(a => ({ worker: a.signer.did, artifact: a.artifact! }))
    .sort((a, b) => byString(a.worker, b.worker))

  // 7. Decide.
  const reaching = candidates.filter(c => c.trusted.length >= k)
  if (reaching.length >= 2) {
    reasons.push(`disputed: ${reaching.length} different artifacts each have >= ${k} trusted keys (${reaching.map(c => c.artifact).join(', ')})`)
    return { status: 'disputed', ...base, counted: [], dissent: dissentFrom(reaching[0]!.artifact), reasons }
  }
  if (reaching.length === 1) {
    const c = reaching[0]!
    const dissent = dissentFrom(c.artifact)
    // A trusted key, at the policy's tier, that built this very job and got
    // another artifact: the build is not reproducible or a builder is broken.
    // k agreeing keys do not outvote it (this is not a majority vote), and it
    // may come after acceptance: a rebuilder's later spot check of the job.
    // Dissent drawn from other jobs is evidence only (nonReproducible).
    const onThisJob = trustedAnswers.filter(a => a.final && a.artifact !== undefined && a.artifact !== c.artifact && tierOk(a.successes))
    if (onThisJob.length > 0) {
      reasons.push(`disputed: ${c.artifact} has ${c.trusted.length} trusted keys but trusted key(s) ${onThisJob.map(a => a.signer.did).sort(byString).join(', ')} built ${judged !== undefined ? 'this job' : 'it'} and got a different artifact`)
      return { status: 'disputed', ...base, counted: [], dissent, reasons }
    }
    // what the artifact still waits for: it stays provisional, the reason says which
    const waiting: string[] = []
    if (policy.required.size > 0) {
      const keyByDid = new Map([...signers.values()].map(s => [s.did, s.key]))
      const isRequired = (did: string): boolean => policy.required.has(keyByDid.get(did) ?? '')
      const requiredDissent = dissent.filter(d => isRequired(d.worker))
      if (requiredDissent.length > 0) {
        reasons.push(`disputed: ${c.artifact} has ${c.trusted.length} trusted keys but required key(s) ${requiredDissent.map(d => d.worker).join(', ')} attested a different artifact`)
        return { status: 'disputed', ...base, counted: [], dissent, reasons }
      }
      if (!c.trusted.some(isRequired)) waiting.push('none of the required keys yet')
    }
    // Diversity (§8.1): keys one operator runs share its machines, its
    // people and its mistakes, so k of them agreeing is one operator's word,
    // however many keys it holds. Acceptance waits for keys of m operators.
    const spanned = operatorsOf(policy, c.trusted)
    if (spanned.length < policy.minOperators) {
      waiting.push(`they span ${spanned.length} operator(s) (${spanned.join(', ')}) and the policy requires ${policy.minOperators} distinct operators`)
    }
    if (waiting.length > 0) {
      reasons.push(`provisional: ${c.artifact} has ${c.trusted.length} >= ${k} trusted keys but ${waiting.join(', and ')}`)
      return { status: 'provisional', ...base, artifact: c.artifact, counted: c.trusted, dissent, reasons }
    }
    reasons.push(`accepted: ${c.artifact} signed by ${c.trusted.length} distinct trusted keys (threshold ${k})${groupsOperators(policy) ? ` of ${spanned.length} distinct operators (at least ${policy.minOperators}: ${spanned.join(', ')})` : ''}`)
    if (dissent.length > 0) reasons.push(`note: ${dissent.length} trusted key(s), on other jobs of this build or below the policy's tier, name a different artifact (listed in dissent)`)
    return { status: 'accepted', ...base, artifact: c.artifact, counted: c.trusted, dissent, reasons }
  }

  // Two trusted keys (at the policy's tier) that built this very job got
  // different artifacts: whichever CID later reaches k, the other key's
  // dissent disputes it (above), so the outcome is already fixed. Said now,
  // not at expiry: this is also "every replica answered and they differ".
  const finalCids = [...new Set(trustedAnswers.filter(a => a.final && a.artifact !== undefined && tierOk(a.successes)).map(a => a.artifact!))].sort(byString)
  if (finalCids.length >= 2) {
    const lead = candidates.find(c => finalCids.includes(c.artifact))!
    reasons.push(`disputed: trusted keys that built ${judged !== undefined ? 'this job' : 'it'} got ${finalCids.length} different artifacts (${candidates.filter(c => finalCids.includes(c.artifact)).map(c => `${c.artifact}: ${c.trusted.join(', ')}`).join('; ')})`)
    return { status: 'disputed', ...base, counted: [], dissent: dissentFrom(lead.artifact), reasons }
  }

  // Nothing reached k. "failed" needs k trusted keys saying so, and no trusted key saying otherwise.
  const anyTrustedSuccess = trustedAnswers.some(a => a.successes.length > 0)
  const failing = trustedAnswers.filter(a => a.failures.length > 0 && tierOk(a.failures))
  if (!anyTrustedSuccess && failing.length >= k) {
    reasons.push(`failed: ${failing.length} distinct trusted keys report a failed build and none a success (threshold ${k})`)
    return { status: 'failed', ...base, counted: failing.map(a => a.signer.did).sort(byString), dissent: [], reasons }
  }
  // Agreement impossible: even if every trusted key not heard from yet named
  // the leading CID (or a new one together), none could reach k. Waiting for
  // the job to expire would only hide a disagreement that is already final (a
  // build that is not reproducible, or a bad builder): it is disputed now.
  // Only final answers count as heard: a key that answered the judged job
  // (equivocators included: they have spoken and count for nothing). A key
  // heard only on other jobs may still build this one, so it is outstanding.
  const trustedCids = candidates.filter(namedByTrustedKey)
  const finalDids = new Set(trustedAnswers.filter(a => a.final).map(a => a.signer.did))
  const equivocating = [...signers.values()].filter(s => s.trusted && !honest.includes(s) && (judged === undefined || s.jobs.has(judged))).length
  const outstanding = policy.trusted.size - finalDids.size - equivocating
  const best = Math.max(0, ...candidates.map(c => c.trusted.filter(d => finalDids.has(d)).length))
  if (trustedCids.length >= 2 && best + outstanding < k) {
    const lead = trustedCids[0]!
    reasons.push(`disputed: agreement is impossible: ${trustedCids.length} different artifacts from trusted keys (${trustedCids.map(c => `${c.artifact}: ${c.trusted.length + c.belowTier.length + (c.uncommitted?.length ?? 0)}`).join(', ')}), at most ${best} + ${outstanding} key(s) not heard from < ${k}`)
    return { status: 'disputed', ...base, counted: [], dissent: dissentFrom(lead.artifact), reasons }
  }
  // Provisional names an artifact only a trusted key attested (counted, or
  // below minTier): untrusted keys are free to make, so letting them choose
  // would hand anyone who consumes provisional results the attacker's bytes
  // until the first trusted attestation arrives. They are shown, never chosen.
  if (trustedCids.length > 0) {
    const lead = [...trustedCids].sort((a, b) => (b.trusted.length - a.trusted.length) || (b.belowTier.length + (b.uncommitted?.length ?? 0) - a.belowTier.length - (a.uncommitted?.length ?? 0)) || byString(a.artifact, b.artifact))[0]!
    reasons.push(`provisional: ${lead.artifact} has ${lead.trusted.length} of ${k} trusted keys (${lead.untrusted.length} untrusted)`)
    return { status: 'provisional', ...base, artifact: lead.artifact, counted: lead.trusted, dissent: dissentFrom(lead.artifact), reasons }
  }
  const untrustedOnly = candidates.reduce((n, c) => n + c.untrusted.length, 0)
  reasons.push(answers.length === 0 && equivocators.length === 0
    ? `pending: no attestation for this ${onlyJob ? 'job' : 'build'} yet`
    : untrustedOnly > 0
      ? `pending: no trusted key has attested an artifact (${untrustedOnly} untrusted attestation(s) shown, never chosen)`
      : 'pending: no usable success attestation and fewer than k trusted failure reports')
  return { status: 'pending', ...base, counted: [], dissent: [], reasons }
}
