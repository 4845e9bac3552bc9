/**
 * How the requester's views are shown to a person. Every field that came from
 * the network (a reason, a worker, a name, a log) goes through terminalSafe:
 * it can neither drive the terminal nor forge the lines around it.
 */
import { terminalSafe } from '../../src/text/terminal-safe.ts'
import type { LogView, RequestView } from '../api/types.ts'

/** Exit codes of `submit --wait` and `status`: scripts branch on them. */
export const EXIT = { accepted: 0, failed: 2, disputed: 3, expired: 4, timeout: 5, pending: 6 } as const

export function exitFor (status: string): number {
  return (EXIT as Record<string, number>)[status] ?? EXIT.pending
}

export function short (did: string): string {
  return did.length > 24 ? `${did.slice(0, 16)}…${did.slice(-6)}` : did
}

/**
 * A field from the network (a reason, a worker, a name) shown on one line:
 * its controls escaped, newlines included, so it can neither drive the
 * terminal nor forge the lines around it (src/text/terminal-safe.ts).
 */
export function oneLine (text: string): string {
  return terminalSafe(text, { singleLine: true })
}

/** what a worker says it varied, e.g. `clock +3600 s, 1 cpu, host concur-0a1b2c3d, TZ Asia/Kolkata` */
function variationText (v: NonNullable<RequestView['attestations'][number]['variation']>): string {
  const parts: string[] = []
  if (v.clockOffsetSeconds != null) parts.push(`clock ${v.clockOffsetSeconds >= 0 ? '+' : ''}${v.clockOffsetSeconds} s`)
  if (v.cpus != null) parts.push(`${v.cpus} cpu${v.cpus === 1 ? '' : 's'}`)
  if (v.hostname != null) parts.push(`host ${oneLine(v.hostname)}`)
  if (v.timezone != null) parts.push(`TZ ${oneLine(v.timezone)}`)
  return parts.join(', ')
}

/** a host record as one line: `Debian GNU/Linux 12 (bookworm); gcc 4:12.2.0-3, libc6 2.36-9+deb12u14, make 4.3-4.1` */
export function hostText (h: NonNullable<RequestView['attestations'][number]['host']>): string {
  const pkgs = h.packages.filter(p => ['gcc', 'libc6', 'binutils', 'make'].includes(p.name)).map(p => `${oneLine(p.name)} ${oneLine(p.version)}`)
  return `${oneLine(h.os)}${pkgs.length > 0 ? `; ${pkgs.join(', ')}` : ''}`
}

/** a release as one line: `declined: asks for more than this volunteer allows: cpus 2 > 1` */
export function releaseText (n: { kind: string, reason: string }): string {
  const what = n.kind === 'declined' ? 'declined' : n.kind === 'inputs-unavailable' ? 'inputs did not come' : n.kind === 'gave-up' ? 'gave up' : n.kind
  return `${oneLine(what)}: ${reasonText(n.reason)}`
}

/**
 * A stranger's words (a reason) on one line: whitespace runs collapsed (1,024
 * characters of padding soft-wrapped into what looked like another worker's
 * line), cut to RELEASE_SHOWN characters and escaped; `--json` has them whole.
 */
export function reasonText (text: string): string {
  const reason = text.replace(/\s+/g, ' ').trim()
  const chars = Array.from(reason)
  return oneLine(chars.length > RELEASE_SHOWN ? chars.slice(0, RELEASE_SHOWN - 1).join('') + '…' : reason)
}

/** characters of a release's reason shown on a line (the rest: --json) */
export const RELEASE_SHOWN = 200

export function describeRequest (v: RequestView): string {
  const r = v.record
  const lines = [
    `job       ${r.jobId}`,
    `build     ${r.buildId}`,
    `verdict   ${r.status.toUpperCase()}${r.status === 'provisional' ? ' (usable for testing only: not enough trusted keys agree yet)' : ''}${r.reused ? ' (from existing attestations: not rebuilt)' : ''}`
  ]
  if (r.artifact != null) lines.push(`artifact  ${r.artifact}`)
  lines.push(`trusted   ${r.counted.length}/${v.threshold ?? '?'} agreeing keys${r.onlyThisJob === true ? ' (judged on this job\'s attestations only: --no-reuse)' : ''}`)
  // the policy's diversity rule (PROTOCOL.md §8.1): how many operators the agreeing keys span, of how many needed
  const ops = v.verdict?.operators
  if (ops != null) lines.push(`operators ${ops.spanned.length}/${ops.min}${ops.spanned.length > 0 ? `: ${ops.spanned.map(o => o.startsWith('did:') ? short(oneLine(o)) : oneLine(o)).join(', ')}` : ''}`)
  if (v.attestations.length > 0) {
    lines.push('attestations:')
    // every trusted key is equally trusted: a line says whether its key is
    // trusted, and only against an artifact that is usable (accepted or
    // provisional) whether it differs; in a dispute the CIDs speak for themselves
    for (const a of v.attestations) {
      const what = a.result.status === 'success' ? a.result.artifact : `FAILED: ${a.result.reason}`
      const built = a.result.status === 'success' ? a.result.artifact : undefined
      const differs = a.trusted && r.artifact != null && built != null && built !== r.artifact
      const tag = `${a.trusted ? 'trusted' : 'untrusted'}${differs ? ', differs' : ''}`
      const job = a.thisJob ? '' : `  (job ${short(oneLine(a.jobId))})`
      const varied = a.variation != null ? `  (${variationText(a.variation)})` : ''
      lines.push(`  ${short(oneLine(a.worker))}  ${tag.padEnd(17)}  ${oneLine(what ?? '')}${job}${varied}`)
      if (a.host != null) lines.push(`      host: ${hostText(a.host)}`)
    }
  }
  const releases = [...(r.releases ?? [])].sort((a, b) => Number(b.trusted) - Number(a.trusted))
  if (releases.length > 0) {
    // signed by the workers, never counted: why a job is not being built (PROTOCOL.md §7 rule 6)
    lines.push('not building (signed releases):')
    for (const n of releases) lines.push(`  ${short(oneLine(n.worker))}  ${(n.trusted ? 'trusted' : 'untrusted').padEnd(17)}  ${releaseText(n)}`)
  }
  if (r.dissent.length > 0) lines.push(`dissent   ${r.dissent.map(d => `${short(oneLine(d.worker))} → ${oneLine(d.artifact)}`).join(', ')}`)
  for (const n of v.verdict?.nonReproducible ?? []) {
    lines.push(`not reproducible: ${short(oneLine(n.worker))}${n.trusted ? '' : ' (untrusted)'} built ${n.artifacts.map(x => `${oneLine(x.artifact)} (job ${x.jobs.map(j => short(oneLine(j))).join(', ')})`).join(' and ')}`)
  }
  if (v.verdict?.equivocators != null && v.verdict.equivocators.length > 0) lines.push(`equivocating keys (not counted): ${v.verdict.equivocators.map(e => short(oneLine(e.worker))).join(', ')}`)
  for (const reason of r.reasons) lines.push(`  · ${oneLine(reason)}`)
  if (r.bundle != null) lines.push(`bundle    ${r.bundle}`)
  if (r.bundleError != null) lines.push(`bundle    not written: ${oneLine(r.bundleError)}`)
  if (r.revokedBundle != null && r.bundle == null) lines.push(`bundle    revoked: the job is no longer accepted (set aside as ${r.revokedBundle})`)
  if (r.dispute?.report != null) lines.push(`dispute   ${r.dispute.report}`, ...(r.dispute.summary ?? '').split('\n').filter(Boolean).map(l => `  ${oneLine(l)}`))
  if (r.dispute?.error != null) lines.push(`dispute   diagnosis failed: ${oneLine(r.dispute.error)}`)
  if (r.nonReproducible?.report != null) lines.push(`not reproducible: the diff of what trusted keys built for different jobs: ${r.nonReproducible.report}`, ...(r.nonReproducible.summary ?? '').split('\n').filter(Boolean).map(l => `  ${oneLine(l)}`))
  if (r.nonReproducible?.error != null) lines.push(`not reproducible: diff failed: ${oneLine(r.nonReproducible.error)}`)
  return lines.join('\n')
}

export function describeLog (l: LogView): string {
  const head = `==> ${oneLine(l.worker)} (${oneLine(l.status)}, ${l.trusted ? 'trusted' : 'untrusted'})`
  if (l.text == null) return `${head}\n(not loaded: ${oneLine(l.skipped ?? 'no text')})`
  const cut = l.truncated === true ? ` [the last ${l.shown ?? '?'} of ${l.size ?? '?'} bytes: --bytes N shows more]` : ''
  // a build log is many lines: newlines stay, every other control is
  // escaped, and each line sits behind a gutter, so a log cannot print a line
  // that looks like another worker's header
  return `${head}${cut}\n${terminalSafe(l.text).split('\n').map(line => `│ ${line}`).join('\n')}`
}
