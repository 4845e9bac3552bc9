/**
 * The report of a whole dispute: every distinct artifact CID of a disputed
 * verdict compared with the largest agreeing group (N CIDs: N - 1
 * comparisons, each in its own directory with its exported files), each CID
 * named with the workers that built it. report.json (version 2, for tools)
 * and report.txt (for people) go to `workDir`; each comparison also leaves
 * its own pair report (diagnose-dispute.ts, version 1) in its directory.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ReadableStorage } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { namedByTrustedKey } from '../../../protocol/index.ts'
import { atomicWrite, diagnoseDispute, diffoscopeMissing, printable, renderComparison } from './diagnose-dispute.ts'
import type { DiagnoseOptions, DisputeReport } from './diagnose-dispute.ts'
import { DIFFOSCOPE_HINT, findExecutable } from './diffoscope.ts'
import { NotADisputeError } from './errors.ts'

/** One artifact CID of a verdict and the keys behind it (protocol/verdict.ts VerdictCandidate). */
export interface DisputeCandidate {
  artifact: string
  trusted: string[]
  untrusted: string[]
  belowTier: string[]
}

export interface DisputeComparison {
  /** the CID compared with the reference, and who built it */
  candidate: DisputeCandidate
  /** this comparison's directory (pair report, exported files), relative to workDir */
  dir: string
  /** the pair report (A = the reference, B = this candidate) */
  report?: DisputeReport
  /** why this comparison could not be made (e.g. its blocks could not be fetched in time) */
  error?: string
}

export interface DisputeSetReport {
  version: 2
  /** the largest agreeing group: every comparison is against its CID */
  reference: DisputeCandidate
  comparisons: DisputeComparison[]
  /** CIDs past {@link MAX_COMPARED_CIDS}, not compared (fewest keys first out) */
  omitted: DisputeCandidate[]
  /**
   * CIDs only untrusted keys named: listed, never fetched or diffed. Keys
   * are free: each such CID would cost a fetch (of blocks that may never
   * come) and a diff, and could push trusted CIDs out of the comparisons.
   */
  untrustedOnly: DisputeCandidate[]
  maxCids: number
  diffoscope: { installed: boolean, hint?: string }
  /** absolute paths of the written reports */
  reportJson: string
  reportText: string
}

/**
 * At most this many CIDs (8: the reference and 7 others) are compared. Each
 * comparison fetches two trees and may run diffoscope for minutes, and the
 * CIDs are named by whoever signs: a hostile set of (untrusted, free to make)
 * keys could name hundreds. The best-supported CIDs are compared first, so
 * what is left out is the least trusted; the report says how many.
 */
export const MAX_COMPARED_CIDS = 8

/**
 * One comparison may take this long (20 min) before it is abandoned and
 * recorded as an error: a CID no peer can deliver would otherwise hold every
 * later comparison, and the report, forever.
 */
export const DEFAULT_COMPARISON_TIMEOUT_MS = 20 * 60_000

/** In report.txt, at most this many (16) keys are listed per group of a CID; report.json has all. */
const LISTED_KEYS = 16
/** In the summary, at most this many (3) keys per group and (10) differences per comparison. */
const SUMMARY_KEYS = 3
const SUMMARY_ENTRIES = 10

export interface DiagnoseSetOptions extends DiagnoseOptions {
  /** at most this many CIDs compared, the reference included (default {@link MAX_COMPARED_CIDS}) */
  maxCids?: number
  /** per comparison (default {@link DEFAULT_COMPARISON_TIMEOUT_MS}) */
  comparisonTimeoutMs?: number
  /**
   * The whole report's time. Each comparison gets at most a fair share of
   * what is left (left / comparisons still to make), so one CID whose blocks
   * never come cannot use up the time of the others; what is not compared
   * when it runs out is recorded as such, and the report is still written.
   */
  budgetMs?: number
}

const byString = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
const keysOf = (c: DisputeCandidate): number => c.trusted.length + c.untrusted.length + c.belowTier.length

/**
 * Candidates best supported first: most trusted keys, then most keys of any
 * kind, then CID order. Deterministic whatever order the verdict lists them
 * in, so two runs over the same attestations pick the same reference.
 */
export function orderCandidates (candidates: readonly DisputeCandidate[]): DisputeCandidate[] {
  return [...candidates].sort((a, b) => (b.trusted.length - a.trusted.length) || (keysOf(b) - keysOf(a)) || byString(a.artifact, b.artifact))
}

/** did:key:z6MkhaXg…a1b2c3: the first 16 and last 6 characters, as `concur status` shows keys. */
export function shortDid (did: string): string {
  return did.length > 24 ? `${did.slice(0, 16)}…${did.slice(-6)}` : did
}

/** "trusted: a, b; below tier: c; untrusted: d", at most `max` keys per group. */
export function describeWorkers (c: DisputeCandidate, options: { max: number, short: boolean }): string {
  const group = (label: string, dids: string[]): string | undefined => {
    if (dids.length === 0) return undefined
    const shown = dids.slice(0, options.max).map(d => printable(options.short ? shortDid(d) : d))
    return `${label}: ${shown.join(', ')}${dids.length > options.max ? ` and ${dids.length - options.max} more` : ''}`
  }
  return [group('trusted', c.trusted), group('below tier', c.belowTier), group('untrusted', c.untrusted)].filter(g => g !== undefined).join('; ') || 'no keys'
}

async function renderSetText (report: DisputeSetReport, workDir: string, excerptLines: number): Promise<string> {
  const total = report.comparisons.length + 1 + report.omitted.length + report.untrustedOnly.length
  const lines: string[] = [
    'concur dispute report',
    `${total} distinct artifact CID(s); each is compared with the reference, the CID with the most trusted keys`,
    `reference ${printable(report.reference.artifact)}`,
    `  built by ${describeWorkers(report.reference, { max: LISTED_KEYS, short: false })}`
  ]
  report.comparisons.forEach((c, i) => {
    lines.push(`CID ${i + 2}     ${printable(c.candidate.artifact)}`, `  built by ${describeWorkers(c.candidate, { max: LISTED_KEYS, short: false })}`)
  })
  if (report.omitted.length > 0) lines.push(`${report.omitted.length} more CID(s) not compared (at most ${report.maxCids} are; the full list is in report.json)`)
  for (const c of report.untrustedOnly.slice(0, LISTED_KEYS)) lines.push(`untrusted only, not fetched: ${printable(c.artifact)} (${describeWorkers(c, { max: SUMMARY_KEYS, short: false })})`)
  if (report.untrustedOnly.length > LISTED_KEYS) lines.push(`… and ${report.untrustedOnly.length - LISTED_KEYS} more CID(s) only untrusted keys named (report.json)`)
  if (!report.diffoscope.installed) lines.push(diffoscopeMissing(report.diffoscope.hint))
  lines.push('')
  for (const [i, c] of report.comparisons.entries()) {
    lines.push(`=== reference vs CID ${i + 2}: ${printable(c.candidate.artifact)} (files in ${c.dir}/) ===`)
    lines.push(`A: ${printable(report.reference.artifact)}  (${describeWorkers(report.reference, { max: SUMMARY_KEYS, short: true })})`)
    lines.push(`B: ${printable(c.candidate.artifact)}  (${describeWorkers(c.candidate, { max: SUMMARY_KEYS, short: true })})`)
    if (c.error !== undefined) lines.push(`not compared: ${printable(c.error)}`, '')
    if (c.report !== undefined) lines.push(...await renderComparison(c.report, join(workDir, c.dir), workDir, excerptLines))
  }
  return lines.join('\n')
}

/**
 * Compares every CID of `candidates` (best supported first, at most
 * `maxCids`) with the best supported one, each under
 * `<workDir>/comparisons/<n>-<cid>/`; writes report.json and report.txt to
 * `workDir` after each comparison (a long dispute shows its progress). A
 * comparison that fails is recorded, not thrown; an abort of `signal` is.
 */
export async function diagnoseDisputeSet (blockstore: ReadableStorage, candidates: readonly [DisputeCandidate, ...DisputeCandidate[]], workDir: string, options: DiagnoseSetOptions = {}): Promise<DisputeSetReport> {
  const { signal, maxCids: maxCidsOption, comparisonTimeoutMs, ...pairOptions } = options
  const maxCids = Math.max(2, maxCidsOption ?? MAX_COMPARED_CIDS)
  const timeoutMs = comparisonTimeoutMs ?? DEFAULT_COMPARISON_TIMEOUT_MS
  const excerptLines = options.excerptLines ?? 200
  const ordered = orderCandidates(candidates)
  const fetchable = ordered.filter(namedByTrustedKey)
  const untrustedOnly = ordered.filter(c => !namedByTrustedKey(c))
  if (fetchable.length < 2) throw new NotADisputeError(`a dispute report compares CIDs trusted keys named: ${fetchable.length} here`)
  const reference = fetchable[0]!
  const others = fetchable.slice(1)
  // CIDs are parsed before anything is fetched: a malformed one is not compared
  const referenceCid = CID.parse(reference.artifact)
  await mkdir(workDir, { recursive: true })
  const comparisonsDir = join(workDir, 'comparisons')
  await rm(comparisonsDir, { recursive: true, force: true })
  const installed = options.diffoscope !== false && (await findExecutable(options.diffoscopeCommand ?? 'diffoscope')) !== undefined

  const report: DisputeSetReport = {
    version: 2,
    reference,
    comparisons: [],
    omitted: others.slice(maxCids - 1),
    untrustedOnly,
    maxCids,
    diffoscope: installed ? { installed: true } : { installed: false, hint: DIFFOSCOPE_HINT },
    reportJson: join(workDir, 'report.json'),
    reportText: join(workDir, 'report.txt')
  }
  const write = async (): Promise<void> => {
    await atomicWrite(report.reportJson, JSON.stringify(report, null, 2) + '\n')
    await atomicWrite(report.reportText, await renderSetText(report, workDir, excerptLines))
  }

  const started = Date.now()
  const toCompare = others.slice(0, maxCids - 1)
  for (const [i, candidate] of toCompare.entries()) {
    signal?.throwIfAborted()
    const left = options.budgetMs === undefined ? Infinity : options.budgetMs - (Date.now() - started)
    let cid: CID | undefined
    try { cid = CID.parse(candidate.artifact) } catch {}
    // named by the parsed CID (multibase letters and digits), never by the
    // string as signed: no artifact name can choose where files land
    const dir = join('comparisons', `${i + 2}-${cid?.toString() ?? 'invalid-cid'}`)
    const comparison: DisputeComparison = { candidate, dir }
    report.comparisons.push(comparison)
    if (cid === undefined) {
      comparison.error = 'not a CID'
      await write()
      continue
    }
    if (left <= 0) {
      comparison.error = `not compared: the report's time (${options.budgetMs ?? 0} ms) ran out`
      await write()
      continue
    }
    const share = Math.min(timeoutMs, Math.max(1, Math.floor(left / (toCompare.length - i))))
    const timeout = AbortSignal.timeout(share)
    try {
      comparison.report = await diagnoseDispute(blockstore, referenceCid, cid, join(workDir, dir), {
        ...pairOptions,
        signal: signal !== undefined ? AbortSignal.any([signal, timeout]) : timeout
      })
    } catch (err) {
      signal?.throwIfAborted()
      comparison.error = timeout.aborted ? `not finished within ${share} ms` : err instanceof Error ? err.message : String(err)
    }
    await write()
  }
  if (report.comparisons.length === 0) await write()
  return report
}

/**
 * A few lines for `concur status`: each CID with the workers behind it
 * (short dids), then per comparison its first differences with the kinds of
 * hint found. Every network-derived string is one terminal-safe line.
 */
export function disputeSummary (report: DisputeSetReport): string {
  const who = (c: DisputeCandidate): string => describeWorkers(c, { max: SUMMARY_KEYS, short: true })
  const lines = [`reference ${printable(report.reference.artifact)} built by ${who(report.reference)}`]
  report.comparisons.forEach((c, i) => {
    const r = c.report
    const count = r === undefined ? `not compared: ${printable(c.error ?? 'unknown error')}` : `${r.entries.length}${r.truncated ? '+' : ''} difference(s) from the reference`
    lines.push(`CID ${i + 2} ${printable(c.candidate.artifact)} built by ${who(c.candidate)}: ${count}`)
    if (r === undefined) return
    const hintsOf = new Map(r.files.map(f => [f.path, [...new Set((f.hints ?? []).map(h => h.kind))]]))
    for (const e of r.entries.slice(0, SUMMARY_ENTRIES)) {
      const kinds = hintsOf.get(e.path) ?? []
      lines.push(`  ${e.change} ${printable(e.path)} (${e.sizeA ?? '-'} vs ${e.sizeB ?? '-'} bytes)${kinds.length > 0 ? `; hint: ${kinds.join(', ')}` : ''}`)
    }
    if (r.entries.length > SUMMARY_ENTRIES) lines.push(`  … ${r.entries.length - SUMMARY_ENTRIES} more in the report`)
  })
  if (report.omitted.length > 0) lines.push(`${report.omitted.length} more CID(s) not compared (at most ${report.maxCids})`)
  if (report.untrustedOnly.length > 0) lines.push(`${report.untrustedOnly.length} CID(s) only untrusted keys named: listed in the report, not fetched`)
  return lines.join('\n')
}
