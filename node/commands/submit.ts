/** `concur submit` and `concur status`: announce a job, follow it to its verdict. */
import { resolve } from 'node:path'
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { ApiClient } from '../api/client.ts'
import type { EventsResponse, RequestView, RequestsResponse, SubmitBody, SubmitResponse } from '../api/types.ts'
import { output, progress } from '../cli.ts'
import type { Command, GlobalFlags } from '../cli.ts'
import { UsageError } from '../errors.ts'
import { parseBytes } from '../worker-options.ts'
import { isSettled } from '../../src/requester/types.ts'
import { EXIT, describeRequest, exitFor, oneLine, releaseText, short } from '../render/request.ts'
import { JOB_VARIATIONS } from '../../protocol/index.ts'
import type { JobVariation } from '../../protocol/index.ts'

/** the longest one long-poll of the event feed waits (the daemon caps it at 30 s) */
const POLL_MS = 25_000

/**
 * Follow a job to a settled verdict: the view is read once, then again only
 * when the event feed says this job's verdict, bundle or dispute changed.
 * Claims and attestations on the feed are shown as progress. Nothing is
 * polled on a timer: each long-poll returns as soon as an event of this job
 * exists (or after POLL_MS with none, to check the deadline).
 */
async function waitForVerdict (api: ApiClient, jobId: string, after: number, global: GlobalFlags, timeoutMs: number): Promise<{ view: RequestView, timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs
  let lastLine = ''
  const seen = new Set<string>()
  let view = await api.get<RequestView>(`/v1/requests/${jobId}`)
  while (true) {
    const r = view.record
    const ops = view.verdict?.operators
    // under a policy of operators, k keys may agree and still wait for a second operator: said here, not only in status
    const line = `[${r.status}] ${r.counted.length}/${view.threshold ?? '?'} trusted keys agree${ops != null ? `, ${ops.spanned.length}/${ops.min} operators` : ''}${r.artifact != null ? ` on ${r.artifact}` : ''}`
    if (line !== lastLine) { progress(global, line); lastLine = line }
    if (isSettled(r)) return { view, timedOut: false }
    const left = deadline - Date.now()
    if (left <= 0) return { view, timedOut: true }
    const ev = await api.get<EventsResponse>(`/v1/events?after=${after}&wait=${Math.min(POLL_MS, left)}&jobId=${encodeURIComponent(jobId)}`)
    // the view is read again when this job's verdict moved, and also when the
    // feed cannot say: nothing came (the deadline may be near), events were
    // dropped from the ring before we read them, or the daemon restarted
    let changed = ev.events.length === 0 || ev.first > after + 1 || ev.last < after
    if (ev.last < after) after = 0
    for (const { seq, event } of ev.events) {
      after = Math.max(after, seq)
      let text = ''
      // releases are shown from the requester's own events: those it kept, tagged trusted or not
      if (event.type === 'claim' && event.release == null) text = `claimed by ${short(oneLine(event.worker))} (lease until ${oneLine(event.leaseUntil)})`
      else if (event.type === 'request:release') {
        text = `not building, says ${short(oneLine(event.worker))} (${event.trusted ? 'trusted' : 'untrusted'}): ${releaseText(event)}`
        changed = true
      } else if (event.type === 'attestation') {
        const res = event.result
        text = `attestation from ${short(oneLine(event.worker))}: ${oneLine(res.status === 'success' ? res.artifact : `failed (${res.reason})`)}`
      } else if (event.type.startsWith('request:')) changed = true
      // (bounded: a long wait on a busy job must not grow it for ever)
      if (text !== '' && !seen.has(text)) { if (seen.size < 10_000) seen.add(text); progress(global, `  ${text}`) }
    }
    // every event of this job up to `last` was in this answer
    after = Math.max(after, ev.last)
    if (changed) view = await api.get<RequestView>(`/v1/requests/${jobId}`)
  }
}

export const submitCommand: Command = {
  name: 'submit',
  summary: 'announce a build job for DIR; with --wait show progress and end with the verdict',
  usage: 'concur submit DIR --out PATH [--replicas N] [--env host|CID] [--wait] [--timeout S] [--memory 512M] [--disk 256M] [--cpus N] [--wall S] [--processes N] [--source-date-epoch N] [--no-reuse] [--vary clock,cpus,hostname,timezone] [--include-vcs] [--sharded] [--home DIR] [--json] -- CMD ARG…',
  notes: [
    '  --vary LIST   each replica builds with what it sees varied, each value derived from its key and the job, so a',
    '                build that records it differs between replicas instead of agreeing because they ran alike.',
    '                Comma-separated or repeated; implies --no-reuse (earlier attestations were built unvaried).',
    '    clock       its own clock offset (+1 h..+72 h). Workers without libfaketime decline the job. Reaches',
    '                dynamically linked programs only: not static binaries, not Go programs.',
    '    cpus        its own CPU count, 1..--cpus (sched_setaffinity: nproc, thread pools). Needs --cpus 2 or more; the',
    '                build may run on fewer cores than it asked for, so size --wall for one.',
    '    hostname    its own hostname, concur-<8 hex> (uname -n, /etc/hostname).',
    '    timezone    its own TZ, one of 12 zones, none UTC, most not a whole hour off it. A rootfs (--env CID) must',
    '                ship tzdata (/usr/share/zoneinfo), else its builds fail saying so.',
    '  The source is DIR without its version control directories (.git, .hg, .svn, …; --include-vcs keeps them)',
    '  and without what a .concurignore at its root names (gitignore syntax; the file itself is kept).'
  ].join('\n'),
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
    'no-reuse': { type: 'boolean', default: false },
    'include-vcs': { type: 'boolean', default: false },
    vary: { type: 'string', multiple: true },
    // a sharded job (PROTOCOL.md §6.1): on its shard's topics, for v1.1 workers serving that shard
    sharded: { type: 'boolean', default: false }
  },
  positionals: true,
  async run ({ positionals, values, global, rest }) {
    const [dir] = positionals
    if (dir == null) throw new UsageError('concur submit needs a source directory')
    if (values.out == null) throw new UsageError('concur submit needs --out PATH (the build\'s output directory, relative to the build dir)')
    if (rest.length === 0) throw new UsageError('concur submit needs the build command after --, e.g. -- sh build.sh')
    // --vary clock (repeatable, or comma-separated): checked before the daemon is asked anything
    const vary = ((values.vary as string[] | undefined) ?? []).flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
    for (const v of vary) {
      if (!(JOB_VARIATIONS as readonly string[]).includes(v)) throw new UsageError(`--vary takes ${JOB_VARIATIONS.join(', ')} (got ${v})`)
    }
    // a job of one CPU is owed 1..1 CPUs: every replica would see the same count
    if (vary.includes('cpus') && !(Number(values.cpus) >= 2)) throw new UsageError('--vary cpus needs --cpus 2 or more: with one CPU there is no count to vary')
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
    const body: SubmitBody = {
      source: resolve(dir),
      output: values.out as string,
      command: rest,
      env,
      environment: values.env as string,
      replicas: values.replicas != null ? Number(values.replicas) : undefined,
      resources,
      // the job is open exactly as long as we are prepared to wait for it
      ttlSeconds: Math.max(5, Math.ceil(timeoutS)),
      // earlier attestations were made without the variation: counting them
      // would accept the build without the check the job asks for
      reuse: values['no-reuse'] !== true && vary.length === 0,
      includeVcs: values['include-vcs'] === true,
      ...(vary.length > 0 ? { vary: vary as JobVariation[] } : {}),
      ...(values.sharded === true ? { sharded: true } : {})
    }
    const submitted = await api.post<SubmitResponse>('/v1/jobs', body)
    // what was left out of the source is said either way: a file the build needs may be among it
    // advice from the workers' adverts (PROTOCOL.md §5.4): said either way, the job is announced
    for (const w of submitted.warnings ?? []) progress(global, `warning: ${w}`)
    const left = submitted.excluded > 0 ? `left out of the source: ${submitted.excluded} entr${submitted.excluded === 1 ? 'y' : 'ies'} (${[submitted.vcsExcluded ? 'version control directories' : '', submitted.ignoreRules > 0 ? `${submitted.ignoreRules} rule(s) in .concurignore` : ''].filter(Boolean).join(', ')})` : ''
    if (values.wait !== true) {
      if (left !== '') progress(global, left)
      output(global, submitted, () => submitted.jobId)
      return 0
    }
    progress(global, `job ${submitted.jobId}\nbuild ${submitted.buildId} (source ${submitted.source})${left !== '' ? `\n${left}` : ''}${submitted.record.reused ? '\nthis build already has enough trusted attestations: accepted without rebuilding' : ''}`)
    // a little grace past the expiry, so the requester's own clock marks it expired
    const { view, timedOut } = await waitForVerdict(api, submitted.jobId, submitted.eventSeq, global, timeoutS * 1000 + 3000)
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
      const list = await api.get<RequestsResponse>('/v1/requests')
      output(global, list, () => list.requests.map(r => `${r.jobId}  ${r.status.padEnd(11)} ${r.artifact ?? ''}`).join('\n') || '(no jobs submitted from this node)')
      return 0
    }
    const view = await api.get<RequestView>(`/v1/requests/${jobId}`)
    output(global, view, () => describeRequest(view))
    return exitFor(view.record.status)
  }
}
