/**
 * Verdict: what a requester may conclude from the attestations it has seen
 * for one buildId under its trust policy. Pure and order-independent: the
 * same set of attestations always gives the same verdict.
 *
 * Never a majority vote: only distinct trusted raw keys on the *same* artifact
 * CID count, a key that signed two CIDs counts for nothing, and disagreement
 * that reaches the threshold twice (or involves a required key) is `disputed`.
 */
import type { Envelope } from './dsse.ts'
import type { SignedAttestation } from './attestation.ts'
import { tierAtLeast } from './build.ts'
import { didFromPublicKey, keyHex } from './keys.ts'
import { isTrustedSigner } from './policy.ts'
import type { TrustPolicy } from './policy.ts'

export type VerdictStatus = 'pending' | 'provisional' | 'accepted' | 'disputed' | 'failed'

export interface VerdictCandidate { artifact: string; trusted: string[]; untrusted: string[]; belowTier: string[] }

export interface Verdict {
  status: VerdictStatus
  buildId: string
  artifact?: string
  threshold: number
  counted: string[]
  candidates: VerdictCandidate[]
  failures: Array<{ worker: string; trusted: boolean; reason: string; exitCode: number | null }>
  equivocators: Array<{ worker: string; envelopes: [Envelope, Envelope] }>
  dissent: Array<{ worker: string; artifact: string }>
  reasons: string[]
}

interface Signer {
  key: string
  did: string
  trusted: boolean
  /** artifact CID → attestations of that CID by this signer */
  successes: Map<string, SignedAttestation[]>
  failures: SignedAttestation[]
}

const byString = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

export function evaluateVerdict (policy: TrustPolicy, buildId: string, attestations: SignedAttestation[]): Verdict {
  const k = policy.threshold
  const reasons: string[] = []

  // 1. Only this build. Attestations are reusable across jobs, never across buildIds.
  let otherBuilds = 0
  const signers = new Map<string, Signer>()
  const seen = new Set<string>()
  for (const a of attestations) {
    if (a.claim.buildId !== buildId) { otherBuilds++; continue }
    const key = keyHex(a.signer)
    // 2. The same signed statement seen twice (re-gossiped, re-wrapped) is one statement.
    const dedupe = `${key}:${a.id}`
    if (seen.has(dedupe)) continue
    seen.add(dedupe)
    let s = signers.get(key)
    if (s === undefined) {
      s = { key, did: didFromPublicKey(a.signer), trusted: isTrustedSigner(policy, a.signer), successes: new Map(), failures: [] }
      signers.set(key, s)
    }
    if (a.claim.result.status === 'success') {
      const list = s.successes.get(a.claim.result.artifact) ?? []
      list.push(a)
      s.successes.set(a.claim.result.artifact, list)
    } else {
      s.failures.push(a)
    }
  }
  if (otherBuilds > 0) reasons.push(`ignored ${otherBuilds} attestation(s) for other buildIds`)

  // 3. Equivocation: one key, two different artifacts for one buildId. Both envelopes are the proof.
  const equivocators: Verdict['equivocators'] = []
  const honest: Signer[] = []
  for (const s of [...signers.values()].sort((a, b) => byString(a.key, b.key))) {
    if (s.successes.size >= 2) {
      const [c1, c2] = [...s.successes.keys()].sort(byString) as [string, string]
      // The proof is picked independently of arrival order: the lowest attestation id per artifact.
      const pick = (cid: string): Envelope => [...s.successes.get(cid)!].sort((a, b) => byString(a.id, b.id))[0]!.envelope
      equivocators.push({ worker: s.did, envelopes: [pick(c1), pick(c2)] })
      reasons.push(`${s.did} equivocated (signed ${s.successes.size} different artifacts): it counts for nothing`)
    } else {
      honest.push(s)
    }
  }

  const tierOk = (list: SignedAttestation[]): boolean =>
    policy.minTier === undefined || list.some(a => tierAtLeast(a.claim.sandboxTier, policy.minTier!))

  // 4. Candidates: per artifact, distinct keys split by trust and sandbox tier.
  const byArtifact = new Map<string, VerdictCandidate>()
  for (const s of honest) {
    for (const [artifact, list] of s.successes) {
      let c = byArtifact.get(artifact)
      if (c === undefined) { c = { artifact, trusted: [], untrusted: [], belowTier: [] }; byArtifact.set(artifact, c) }
      if (!s.trusted) c.untrusted.push(s.did)
      else if (tierOk(list)) c.trusted.push(s.did)
      else c.belowTier.push(s.did)
    }
  }
  const candidates = [...byArtifact.values()]
  for (const c of candidates) { c.trusted.sort(byString); c.untrusted.sort(byString); c.belowTier.sort(byString) }
  candidates.sort((a, b) => (b.trusted.length - a.trusted.length) || (b.untrusted.length - a.untrusted.length) || byString(a.artifact, b.artifact))

  const failures: Verdict['failures'] = []
  for (const s of honest) {
    for (const f of s.failures) {
      if (f.claim.result.status !== 'failure') continue
      failures.push({ worker: s.did, trusted: s.trusted, reason: f.claim.result.reason, exitCode: f.claim.result.exitCode })
    }
  }
  failures.sort((a, b) => byString(a.worker, b.worker) || byString(a.reason, b.reason))

  const base = { buildId, threshold: k, candidates, failures, equivocators }
  const dissentFrom = (artifact: string): Verdict['dissent'] => {
    const out: Verdict['dissent'] = []
    for (const s of honest) {
      if (!s.trusted) continue
      for (const other of s.successes.keys()) if (other !== artifact) out.push({ worker: s.did, artifact: other })
    }
    return out.sort((a, b) => byString(a.worker, b.worker))
  }

  // 5. Decide.
  const reaching = candidates.filter(c => c.trusted.length >= k)
  if (reaching.length >= 2) {
    reasons.push(`disputed: ${reaching.length} different artifacts each have >= ${k} trusted keys (${reaching.map(c => c.artifact).join(', ')})`)
    return { status: 'disputed', ...base, counted: [], dissent: dissentFrom(reaching[0]!.artifact), reasons }
  }
  if (reaching.length === 1) {
    const c = reaching[0]!
    const dissent = dissentFrom(c.artifact)
    if (policy.required.size > 0) {
      const keyByDid = new Map([...signers.values()].map(s => [s.did, s.key]))
      const isRequired = (did: string): boolean => policy.required.has(keyByDid.get(did) ?? '')
      const requiredDissent = dissent.filter(d => isRequired(d.worker))
      if (requiredDissent.length > 0) {
        reasons.push(`disputed: ${c.artifact} has ${c.trusted.length} trusted keys but required key(s) ${requiredDissent.map(d => d.worker).join(', ')} attested a different artifact`)
        return { status: 'disputed', ...base, counted: [], dissent, reasons }
      }
      const requiredHere = c.trusted.filter(isRequired)
      if (requiredHere.length === 0) {
        reasons.push(`provisional: ${c.artifact} has ${c.trusted.length} >= ${k} trusted keys but none of the required keys yet`)
        return { status: 'provisional', ...base, artifact: c.artifact, counted: c.trusted, dissent, reasons }
      }
    }
    reasons.push(`accepted: ${c.artifact} signed by ${c.trusted.length} distinct trusted keys (threshold ${k})`)
    if (dissent.length > 0) reasons.push(`note: ${dissent.length} trusted attestation(s) name a different artifact (listed in dissent)`)
    return { status: 'accepted', ...base, artifact: c.artifact, counted: c.trusted, dissent, reasons }
  }

  // Nothing reached k. "failed" needs k trusted keys saying so, and no trusted key saying otherwise.
  const trustedHonest = honest.filter(s => s.trusted)
  const anyTrustedSuccess = trustedHonest.some(s => s.successes.size > 0)
  const failing = trustedHonest.filter(s => s.failures.length > 0 && tierOk(s.failures))
  if (!anyTrustedSuccess && failing.length >= k) {
    reasons.push(`failed: ${failing.length} distinct trusted keys report a failed build and none a success (threshold ${k})`)
    return { status: 'failed', ...base, counted: failing.map(s => s.did).sort(byString), dissent: [], reasons }
  }
  // Agreement impossible: even if every trusted key not heard from yet named
  // the leading CID (or a new one together), none could reach k. Waiting for
  // the job to expire would only hide a disagreement that is already final (a
  // build that is not reproducible, or a bad builder): it is disputed now.
  // Every trusted key that attested anything has answered (a second CID would
  // make it an equivocator, counting for nothing), so this never decides early.
  const trustedCids = candidates.filter(c => c.trusted.length + c.belowTier.length > 0)
  const answered = [...signers.values()].filter(s => s.trusted).length
  const outstanding = policy.trusted.size - answered
  const best = Math.max(0, ...candidates.map(c => c.trusted.length))
  if (trustedCids.length >= 2 && best + outstanding < k) {
    const lead = trustedCids[0]!
    reasons.push(`disputed: agreement is impossible: ${trustedCids.length} different artifacts from trusted keys (${trustedCids.map(c => `${c.artifact}: ${c.trusted.length + c.belowTier.length}`).join(', ')}), at most ${best} + ${outstanding} key(s) not heard from < ${k}`)
    return { status: 'disputed', ...base, counted: [], dissent: dissentFrom(lead.artifact), reasons }
  }
  // Provisional names an artifact only a trusted key attested (counted, or
  // below minTier): untrusted keys are free to make, so letting them choose
  // would hand anyone who consumes provisional results the attacker's bytes
  // until the first trusted attestation arrives. They are shown, never chosen.
  const withTrusted = candidates.filter(c => c.trusted.length + c.belowTier.length > 0)
  if (withTrusted.length > 0) {
    const lead = [...withTrusted].sort((a, b) => (b.trusted.length - a.trusted.length) || (b.belowTier.length - a.belowTier.length) || byString(a.artifact, b.artifact))[0]!
    reasons.push(`provisional: ${lead.artifact} has ${lead.trusted.length} of ${k} trusted keys (${lead.untrusted.length} untrusted)`)
    return { status: 'provisional', ...base, artifact: lead.artifact, counted: lead.trusted, dissent: dissentFrom(lead.artifact), reasons }
  }
  const untrustedOnly = candidates.reduce((n, c) => n + c.untrusted.length, 0)
  reasons.push(signers.size === 0
    ? 'pending: no attestation for this build yet'
    : untrustedOnly > 0
      ? `pending: no trusted key has attested an artifact (${untrustedOnly} untrusted attestation(s) shown, never chosen)`
      : 'pending: no usable success attestation and fewer than k trusted failure reports')
  return { status: 'pending', ...base, counted: [], dissent: [], reasons }
}
