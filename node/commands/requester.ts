import { resolve } from 'node:path'
import { readFile } from 'node:fs/promises'
import { resolveHome, homePaths } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { ApiClient } from '../api/client.ts'
import { output, progress } from '../cli.ts'
import type { Command, GlobalFlags } from '../cli.ts'
import { CliError, UsageError } from '../errors.ts'
import { addTrusted, readPolicyFile, removeTrusted, setPolicy, toTrustPolicy, writePolicyFile, checkDid } from '../policy-store.ts'
import { parseBytes } from '../worker-options.ts'
import { createPolicy, isProtocolError } from '../../protocol/index.ts'
import type { TrustPolicy } from '../../protocol/index.ts'
import type { RequestRecord } from '../../src/requester/requester.ts'
import { terminalSafe } from '../../src/text/terminal-safe.ts'

/** Exit codes of `submit --wait` and `status`: scripts branch on them. */
export const EXIT = { accepted: 0, failed: 2, disputed: 3, expired: 4, timeout: 5, pending: 6 } as const

export const trustCommand: Command = {
  name: 'trust',
  summary: 'manage the trusted worker keys of this requester: trust add|remove|list KEY…',
  usage: 'concur trust add|remove|list [DID…] [--home DIR] [--json]',
  options: {},
  positionals: true,
  async run ({ positionals, global }) {
    const [verb, ...dids] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    if (verb === 'add' || verb === 'remove') {
      if (dids.length === 0) throw new UsageError(`concur trust ${verb} needs at least one did:key`)
      p = verb === 'add' ? addTrusted(p, dids) : removeTrusted(p, dids)
      await writePolicyFile(home, p)
    } else if (verb !== 'list' && verb != null) {
      throw new UsageError(`unknown trust verb "${verb}": use add, remove or list`)
    }
    output(global, p, () => p.trusted.length === 0 ? '(no trusted keys)' : p.trusted.map(d => `${d}${p.required.includes(d) ? '  (required)' : ''}`).join('\n'))
    return 0
  }
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'show or set the trust policy: policy set --threshold K [--required KEY]… [--min-tier T]',
  usage: 'concur policy show | set --threshold K [--required DID]… [--min-tier T] [--home DIR] [--json]',
  options: {
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true },
    'min-tier': { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [verb] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    if (verb === 'set') {
      const threshold = values.threshold != null ? Number(values.threshold) : undefined
      if (threshold != null && !Number.isInteger(threshold)) throw new UsageError('--threshold takes a whole number')
      p = setPolicy(p, {
        ...(threshold != null ? { threshold } : {}),
        ...(values.required != null ? { required: values.required as string[] } : {}),
        ...(values['min-tier'] != null ? { minTier: values['min-tier'] as string } : {})
      })
      await writePolicyFile(home, p)
    } else if (verb !== 'show' && verb != null) {
      throw new UsageError(`unknown policy verb "${verb}": use show or set`)
    }
    output(global, p, () => [
      `trusted    ${p.trusted.length} key(s)`,
      `threshold  ${p.threshold ?? '(not set)'}`,
      `required   ${p.required.length > 0 ? p.required.join(', ') : '(none)'}`,
      `min tier   ${p.minTier ?? '(any)'}`
    ].join('\n'))
    return 0
  }
}

interface RequestView {
  record: RequestRecord
  verdict: { status: string, artifact?: string, counted: string[], reasons: string[], candidates: Array<{ artifact: string, trusted: string[], untrusted: string[] }>, dissent: Array<{ worker: string, artifact: string }>, equivocators: Array<{ worker: string }>, failures: Array<{ worker: string, reason: string }> } | null
  attestations: Array<{ worker: string, trusted: boolean, result: { status: string, artifact?: string, reason?: string }, jobId: string }>
  threshold: number | null
}

function short (did: string): string {
  return did.length > 24 ? `${did.slice(0, 16)}…${did.slice(-6)}` : did
}

/**
 * A field from the network (a reason, a worker, a name) shown on one line:
 * its controls escaped, newlines included, so it can neither drive the
 * terminal nor forge the lines around it (src/text/terminal-safe.ts).
 */
function oneLine (text: string): string {
  return terminalSafe(text, { singleLine: true })
}

export function describeRequest (v: RequestView): string {
  const r = v.record
  const lines = [
    `job       ${r.jobId}`,
    `build     ${r.buildId}`,
    `verdict   ${r.status.toUpperCase()}${r.status === 'provisional' ? ' (usable for testing only: not enough trusted keys agree yet)' : ''}${r.reused ? ' (from existing attestations: not rebuilt)' : ''}`
  ]
  if (r.artifact != null) lines.push(`artifact  ${r.artifact}`)
  lines.push(`trusted   ${r.counted.length}/${v.threshold ?? '?'} agreeing keys`)
  if (v.attestations.length > 0) {
    lines.push('attestations:')
    for (const a of v.attestations) {
      const what = a.result.status === 'success' ? a.result.artifact : `FAILED: ${a.result.reason ?? ''}`
      const tag = !a.trusted ? 'untrusted' : r.artifact != null && a.result.artifact !== r.artifact ? 'DISSENT' : 'trusted'
      lines.push(`  ${short(oneLine(a.worker))}  ${tag.padEnd(9)}  ${oneLine(what ?? '')}`)
    }
  }
  if (r.dissent.length > 0) lines.push(`dissent   ${r.dissent.map(d => `${short(oneLine(d.worker))} → ${oneLine(d.artifact)}`).join(', ')}`)
  if (v.verdict?.equivocators != null && v.verdict.equivocators.length > 0) lines.push(`equivocating keys (not counted): ${v.verdict.equivocators.map(e => short(oneLine(e.worker))).join(', ')}`)
  for (const reason of r.reasons) lines.push(`  · ${oneLine(reason)}`)
  if (r.bundle != null) lines.push(`bundle    ${r.bundle}`)
  if (r.bundleError != null) lines.push(`bundle    not written: ${oneLine(r.bundleError)}`)
  if (r.dispute?.report != null) lines.push(`dispute   ${r.dispute.report}`, ...(r.dispute.summary ?? '').split('\n').filter(Boolean).map(l => `  ${oneLine(l)}`))
  if (r.dispute?.error != null) lines.push(`dispute   diagnosis failed: ${oneLine(r.dispute.error)}`)
  return lines.join('\n')
}

function exitFor (status: string): number {
  return (EXIT as Record<string, number>)[status] ?? EXIT.pending
}

async function waitForVerdict (api: ApiClient, jobId: string, global: GlobalFlags, timeoutMs: number): Promise<{ view: RequestView, timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs
  let after = 0
  let lastLine = ''
  const seen = new Set<string>()
  while (true) {
    const view = await api.get<RequestView>(`/v1/requests/${jobId}`)
    const r = view.record
    const line = `[${r.status}] ${r.counted.length}/${view.threshold ?? '?'} trusted keys agree${r.artifact != null ? ` on ${r.artifact}` : ''}`
    if (line !== lastLine) { progress(global, line); lastLine = line }
    const settled = r.status === 'accepted' ? r.bundle != null || r.bundleError != null : r.status === 'disputed' ? r.dispute != null : r.status === 'failed' || r.status === 'expired'
    if (settled) return { view, timedOut: false }
    if (Date.now() >= deadline) return { view, timedOut: true }
    const ev = await api.get<{ last: number, events: Array<{ seq: number, event: Record<string, unknown> }> }>(`/v1/events?after=${after}&wait=${Math.min(1000, Math.max(0, deadline - Date.now()))}`)
    for (const { seq, event } of ev.events) {
      after = Math.max(after, seq)
      if (event.jobId !== jobId) continue
      const who = typeof event.worker === 'string' ? short(oneLine(event.worker)) : ''
      let text = ''
      if (event.type === 'claim') text = `claimed by ${who} (lease until ${oneLine(String(event.leaseUntil))})`
      else if (event.type === 'attestation') {
        const res = event.result as { status: string, artifact?: string, reason?: string }
        text = `attestation from ${who}: ${oneLine(res.status === 'success' ? res.artifact ?? '' : `failed (${res.reason ?? ''})`)}`
      }
      if (text !== '' && !seen.has(text)) { seen.add(text); progress(global, `  ${text}`) }
    }
  }
}

export const submitCommand: Command = {
  name: 'submit',
  summary: 'announce a build job for DIR; with --wait show progress and end with the verdict',
  usage: 'concur submit DIR --out PATH [--replicas N] [--env host|CID] [--wait] [--timeout S] [--memory 512M] [--disk 256M] [--cpus N] [--wall S] [--processes N] [--source-date-epoch N] [--no-reuse] [--home DIR] [--json] -- CMD ARG…',
  options: {
    out: { type: 'string' },
    replicas: { type: 'string' },
    env: { type: 'string', default: 'host' },
    wait: { type: 'boolean', default: false },
    timeout: { type: 'string' },
    memory: { type: 'string' },
    disk: { type: 'string' },
    cpus: { type: 'string' },
    wall: { type: 'string' },
    processes: { type: 'string' },
    'source-date-epoch': { type: 'string' },
    'no-reuse': { type: 'boolean', default: false }
  },
  positionals: true,
  async run ({ positionals, values, global, rest }) {
    const [dir] = positionals
    if (dir == null) throw new UsageError('concur submit needs a source directory')
    if (values.out == null) throw new UsageError('concur submit needs --out PATH (the build\'s output directory, relative to the build dir)')
    if (rest.length === 0) throw new UsageError('concur submit needs the build command after --, e.g. -- sh build.sh')
    const home = resolveHome(global.home)
    const api = await connectApi(home)
    const timeoutS = values.timeout != null ? Number(values.timeout) : 600
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout takes seconds')
    const resources: Record<string, number> = {}
    if (values.memory != null) resources.memoryBytes = parseBytes(values.memory as string, 'memory')
    if (values.disk != null) resources.diskBytes = parseBytes(values.disk as string, 'disk')
    if (values.cpus != null) resources.cpus = Number(values.cpus)
    if (values.wall != null) resources.wallSeconds = Number(values.wall)
    if (values.processes != null) resources.processes = Number(values.processes)
    const env: Record<string, string> = {}
    if (values['source-date-epoch'] != null) env.SOURCE_DATE_EPOCH = values['source-date-epoch'] as string
    const submitted = await api.post<{ jobId: string, buildId: string, source: string, record: RequestRecord }>('/v1/jobs', {
      source: resolve(dir),
      output: values.out,
      command: rest,
      env,
      environment: values.env,
      replicas: values.replicas != null ? Number(values.replicas) : undefined,
      resources,
      // the job is open exactly as long as we are prepared to wait for it
      ttlSeconds: Math.max(5, Math.ceil(timeoutS)),
      reuse: values['no-reuse'] !== true
    })
    if (values.wait !== true) {
      output(global, submitted, () => submitted.jobId)
      return 0
    }
    progress(global, `job ${submitted.jobId}\nbuild ${submitted.buildId} (source ${submitted.source})${submitted.record.reused ? '\nthis build already has enough trusted attestations: accepted without rebuilding' : ''}`)
    // a little grace past the expiry, so the requester's own clock marks it expired
    const { view, timedOut } = await waitForVerdict(api, submitted.jobId, global, timeoutS * 1000 + 3000)
    output(global, { ...view, timedOut }, () => describeRequest(view) + (timedOut ? '\n(timed out waiting for a final verdict)' : ''))
    if (timedOut && view.record.status !== 'expired') return EXIT.timeout
    return exitFor(view.record.status)
  }
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'show a submitted job\'s verdict, attestations, dissent and bundle',
  usage: 'concur status JOB [--home DIR] [--json]',
  options: {},
  positionals: true,
  async run ({ positionals, global }) {
    const home = resolveHome(global.home)
    const api = await connectApi(home)
    const [jobId] = positionals
    if (jobId == null) {
      const list = await api.get<{ requests: RequestRecord[] }>('/v1/requests')
      output(global, list, () => list.requests.map(r => `${r.jobId}  ${r.status.padEnd(11)} ${r.artifact ?? ''}`).join('\n') || '(no jobs submitted from this node)')
      return 0
    }
    const view = await api.get<RequestView>(`/v1/requests/${jobId}`)
    output(global, view, () => describeRequest(view))
    return exitFor(view.record.status)
  }
}

interface LogView {
  worker: string
  trusted: boolean
  status: string
  /** absent when not loaded: see `skipped` */
  text?: string
  skipped?: string
  size?: number
  shown?: number
  truncated?: boolean
}

function describeLog (l: LogView): string {
  const head = `==> ${oneLine(l.worker)} (${oneLine(l.status)}, ${l.trusted ? 'trusted' : 'untrusted'})`
  if (l.text == null) return `${head}\n(not loaded: ${oneLine(l.skipped ?? 'no text')})`
  const cut = l.truncated === true ? ` [the last ${l.shown ?? '?'} of ${l.size ?? '?'} bytes: --bytes N shows more]` : ''
  // a build log is many lines: newlines stay, every other control is
  // escaped, and each line sits behind a gutter, so a log cannot print a line
  // that looks like another worker's header
  return `${head}${cut}\n${terminalSafe(l.text).split('\n').map(line => `│ ${line}`).join('\n')}`
}

export const logsCommand: Command = {
  name: 'logs',
  summary: 'print the tails of a job\'s build logs: trusted workers\' by default, others with --worker DID or --all',
  usage: 'concur logs JOB [--worker DID]… [--all] [--bytes N (default 256K, at most 4M)] [--home DIR] [--json]',
  options: {
    // any key can attest with a log of many MiB: untrusted ones are read only when asked for
    worker: { type: 'string', multiple: true },
    all: { type: 'boolean', default: false },
    bytes: { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [jobId] = positionals
    if (jobId == null) throw new UsageError('concur logs needs a job id')
    const api = await connectApi(resolveHome(global.home))
    const q = new URLSearchParams()
    for (const w of (values.worker as string[] | undefined) ?? []) q.append('worker', w)
    if (values.all === true) q.set('all', '1')
    if (values.bytes != null) q.set('bytes', String(parseBytes(values.bytes as string, 'bytes')))
    const query = q.size > 0 ? `?${q.toString()}` : ''
    const r = await api.get<{ logs: LogView[] }>(`/v1/requests/${jobId}/logs${query}`)
    output(global, r, () => r.logs.map(describeLog).join('\n'))
    return 0
  }
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a proof bundle offline (signatures, buildId, every block, the policy)',
  usage: 'concur verify BUNDLE.car [--trusted DID… --threshold K [--required DID]…] [--home DIR] [--json]',
  options: {
    trusted: { type: 'string', multiple: true },
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [file] = positionals
    if (file == null) throw new UsageError('concur verify needs a bundle file')
    let policy: TrustPolicy
    if (values.trusted != null) {
      if (values.threshold == null) throw new UsageError('--trusted needs --threshold K')
      for (const d of values.trusted as string[]) checkDid(d)
      try {
        policy = createPolicy({ trusted: values.trusted as string[], threshold: Number(values.threshold), ...(values.required != null ? { required: values.required as string[] } : {}) })
      } catch (err) {
        if (isProtocolError(err)) throw new UsageError(`bad policy: ${err.message}`)
        throw err
      }
    } else {
      const home = resolveHome(global.home)
      policy = toTrustPolicy(await readPolicyFile(home), homePaths(home).policy)
    }
    let bytes: Uint8Array
    try {
      bytes = await readFile(resolve(file))
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
    }
    const { verifyBundle } = await import('../../src/requester/bundle/index.ts')
    const report = verifyBundle(bytes, { policy, now: Date.now() })
    output(global, report, () => [
      report.ok ? `OK: bundle verified offline — ${report.verdict?.status ?? ''}` : 'INVALID bundle',
      ...(report.jobId != null ? [`job       ${report.jobId}`] : []),
      ...(report.buildId != null ? [`build     ${report.buildId}`] : []),
      ...(report.artifact != null ? [`artifact  ${report.artifact}`] : []),
      ...(report.verdict != null ? [`counted   ${report.verdict.counted.length}/${report.verdict.threshold}: ${report.verdict.counted.join(', ')}`] : []),
      ...(report.verdict?.reasons ?? []).map(r => `  · ${oneLine(r)}`),
      ...report.problems.map(p => `  ✗ ${p.code}: ${oneLine(p.message)}`)
    ].join('\n'))
    if (!report.ok) throw new CliError(`bundle ${file} did not verify: ${report.problems.map(p => p.code).join(', ')}`, 'ERR_API', 1)
    return 0
  }
}
