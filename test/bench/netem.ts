/**
 * `npm run bench -- --netem [--quick]` (issue 17, "figures over latency"):
 * concur over round-trip times and loss, in the namespace test network
 * (test/helpers/netns.ts). A bootstrap node (and relay) on the public
 * segment; three trusted workers and the requester each behind a NAT of
 * their own, so everything between two of them goes through the relay (or a
 * hole punch) and crosses two home uplinks. One network, started once: each
 * setting changes the four uplinks in place (netns `setLink`), connections
 * kept, and is measured against the baseline of the same run (every uplink at
 * 0 ms added, through the same relay or qdisc).
 *
 * RTT: a link's delayMs is added in each direction of one uplink, so the
 * requester ↔ worker round trip crosses four delays: each uplink gets RTT/4.
 * It is measured, not assumed: TCP round trips of 32 bytes from the
 * requester and from a worker to an echo server on the bootstrap host; their
 * medians' sum is the requester ↔ worker path.
 *
 * Figures per setting:
 * - submit → accepted: a devnet-style job (the example project, each job with
 *   its own source so every worker fetches it over the links), k = 3 of 3
 *   trusted workers, from the request record's creation (just before the job
 *   is published) to its `accepted` entry, both on the requester's clock;
 * - announcement to all: from that same moment to the last worker's `job`
 *   event (read from each worker's event feed, long-polled); one machine, one clock;
 * - fetch: `concur get`'s request (POST /v1/content/get) of a directory of
 *   random files held by one worker, timed inside the requester's namespace
 *   (no CLI start in the figure).
 * Loss only where the kernel has sch_netem; elsewhere those rows say so.
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createNetwork, jsonLines, NETNS_TOOL, netnsSupport } from '../helpers/netns.ts'
import type { TestNetwork } from '../helpers/netns.ts'
import { concurIn, startIn } from '../helpers/netns-concur.ts'
import type { NsDaemon } from '../helpers/netns-concur.ts'
import { cleanupAll, tempDir, waitFor } from '../helpers/processes.ts'
import { EXAMPLE_PROJECT } from '../../node/commands/devnet.ts'
import type { RequestRecord, SubmitResponse } from '../../node/api/types.ts'
import { MiB, median, spread } from './stats.ts'
import type { Row } from './stats.ts'

export interface NetemSetting { rttMs: number, lossPercent: number }

interface Sample { acceptedMs: number[], announceMs: number[], fetchMs: number[], failures: string[], measuredRttMs: number, rttParts: { requester: number, worker: number } }

export interface NetemReport {
  skipped?: string
  /** netem, or the userspace relay (delay only) */
  mode?: 'netem' | 'userspace'
  /** settings that could not be run here, and why */
  unavailable: Array<NetemSetting & { reason: string }>
  baseline?: Sample
  settings: Array<NetemSetting & Sample>
  fetchBytes: number
  /** the proof bundles of the measured jobs, at the end of the run */
  bundles?: { jobs: number, written: number, failed: number, notYet: number, acceptedToWrittenMs: number[], notYetSinceAcceptedMs: number[] }
  rows: Row[]
  /** the README's table */
  table: string
}

const NO_NETEM = 'n/a (no sch_netem on this kernel)'
const OVER_BUDGET = 'not measured: the run\'s time budget was spent'
/** a fetch's bound: 3× what 16 MiB took at 200 ms RTT when it did not stall */
const FETCH_BOUND_MS = 60_000
const ECHO_PORT = 5000
const HOMES = ['w1', 'w2', 'w3', 'req'] as const
const SEGMENT: Record<string, string> = { w1: 'h1', w2: 'h2', w3: 'h3', req: 'h4' }

const CLIENT = fileURLToPath(new URL('./netem-client.ts', import.meta.url))

/** netem-client.ts on `host` against the daemon of `home`: its JSON answer */
async function clientIn<T> (net: TestNetwork, host: string, home: string, args: string[], timeoutMs: number): Promise<T> {
  const r = await net.run(host, [process.execPath, CLIENT, args[0] as string, home, ...args.slice(1)], { timeoutMs })
  if (r.code !== 0) {
    // the thrown error's own line (the daemon's answer), not the stack under it
    const why = r.stderr.split('\n').find(l => /^\w*Error: /.test(l)) ?? r.stderr.trim().split('\n').slice(-3).join(' / ')
    throw new Error(`${args.slice(0, 3).join(' ')} on ${host}: exited ${r.code ?? 'by signal'}: ${why.trim().slice(0, 400)}`)
  }
  return JSON.parse(r.stdout) as T
}

/** A request to the API of the daemon of `home` on `host` (it listens on that namespace's loopback), timed there: `ms` holds no process start. */
export async function callIn<T> (net: TestNetwork, host: string, home: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<{ ms: number, json: T }> {
  return await clientIn<{ ms: number, json: T }>(net, host, home, ['call', method, path, body == null ? '-' : JSON.stringify(body), String(timeoutMs)], timeoutMs + 15_000)
}

/** When worker `w` logged the `job` event of `jobId` (its feed, long-polled; bounded) */
async function heardAt (net: TestNetwork, w: NsDaemon, jobId: string, boundMs: number): Promise<number> {
  return Date.parse((await clientIn<{ at: string }>(net, w.host, w.home, ['heard', jobId, String(boundMs)], boundMs + 15_000)).at)
}

/** Median TCP round trip (ms) from `host` to the echo server on the bootstrap host. */
async function rttTo (net: TestNetwork, host: string, count: number): Promise<number> {
  const r = await net.run(host, [process.execPath, NETNS_TOOL, 'rtt', `host=${net.addressOf('boot')}`, `port=${ECHO_PORT}`, `count=${count}`], { timeoutMs: 60_000 })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  const doc = JSON.parse(line === '' ? '{}' : line) as { rtts?: number[] }
  if (doc.rtts == null) throw new Error(`rtt from ${host}: ${r.stdout} ${r.stderr}`)
  return median(doc.rtts)
}

/** `budgetMs`: past it, the settings not yet begun are reported as not measured (the caller's hard deadline comes later) */
export async function netemBench (opts: { quick: boolean, budgetMs: number, log: (s: string) => void }): Promise<NetemReport> {
  const { quick, log } = opts
  const startedAt = Date.now()
  const fileCount = 4
  const fileSize = (quick ? 1 : 4) * MiB
  const report: NetemReport = { unavailable: [], settings: [], fetchBytes: fileCount * fileSize, rows: [], table: '' }
  const support = netnsSupport()
  if (!support.ok) {
    report.skipped = support.reason
    return report
  }
  const rtts = quick ? [20, 200] : [20, 80, 200]
  const losses = [0, 1, 5]
  const wanted: NetemSetting[] = rtts.flatMap(rttMs => losses.map(lossPercent => ({ rttMs, lossPercent })))
  // loss is a netem feature: the userspace relay carries TCP, whose bytes it cannot drop
  const runnable = wanted.filter(s => s.lossPercent === 0 || support.netem)
  report.unavailable = wanted.filter(s => !runnable.includes(s)).map(s => ({ ...s, reason: NO_NETEM }))
  const jobs = quick ? 1 : 3
  const fetches = quick ? 1 : 2

  let net: TestNetwork | undefined
  try {
    // every home uplink has a link (0 ms to start): the baseline goes through the same relay or qdisc
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' }, h1: { nat: true }, h2: { nat: true }, h3: { nat: true }, h4: { nat: true } },
      hosts: { boot: { segment: 'public' }, w1: { segment: 'h1' }, w2: { segment: 'h2' }, w3: { segment: 'h3' }, req: { segment: 'h4' } },
      links: { h1: { delayMs: 0 }, h2: { delayMs: 0 }, h3: { delayMs: 0 }, h4: { delayMs: 0 } }
    })
    const n = net
    report.mode = n.mode
    log(`netem: network up (${n.mode === 'netem' ? 'tc netem' : 'userspace relay: delay only'}); starting the bootstrap node, 3 workers and the requester`)
    await jsonLines(n.spawnIn('boot', [process.execPath, NETNS_TOOL, 'echo', `port=${ECHO_PORT}`])).until('listening', 'the echo server on the bootstrap host')
    const boot = await startIn(n, 'boot', ['bootstrap'])
    const bootAddr = `/ip4/${n.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}`
    // one at a time: each worker probes its sandbox as it starts (2 cores)
    const workers: NsDaemon[] = []
    for (const h of ['w1', 'w2', 'w3']) workers.push(await startIn(n, h, ['daemon', '--worker', '--bootstrap', bootAddr]))
    const req = await startIn(n, 'req', ['daemon', '--bootstrap', bootAddr])
    const t = await concurIn(n, 'req', req.home, ['trust', 'add', ...workers.map(w => w.did)])
    if (t.code !== 0) throw new Error(`trust add: ${t.stderr}`)
    const p = await concurIn(n, 'req', req.home, ['policy', 'set', '--threshold', '3'])
    if (p.code !== 0) throw new Error(`policy set: ${p.stderr}`)
    await waitFor(async () => {
      const r = await concurIn<{ subscribers: { jobs: string[] } }>(n, 'req', req.home, ['peers'])
      return workers.every(w => r.json?.subscribers.jobs.includes(w.peerId)) || undefined
    }, 'the three workers on the requester\'s jobs topic', 120_000)
    log('netem: the workers are on the requester\'s jobs topic')

    const scratch = await tempDir('concur-netem-')
    let epoch = 1_700_000_000
    const jobIds: string[] = []
    /** one devnet-style job with a source of its own: its two figures */
    const job = async (): Promise<{ acceptedMs: number, announceMs: number }> => {
      const src = join(scratch, `src-${epoch}`)
      await cp(EXAMPLE_PROJECT, src, { recursive: true })
      await writeFile(join(src, 'JOB'), `${epoch}\n`)
      // not --wait: that also waits for the proof bundle, which is not what this measures (and can stall: see README)
      const s = await concurIn<SubmitResponse>(n, 'req', req.home, ['submit', src, '--out', 'out', '--replicas', '3', '--source-date-epoch', String(epoch++), '--timeout', '120', '--', 'sh', 'build.sh'], 60_000)
      if (s.code !== 0 || s.json?.jobId == null) throw new Error(`submit exited ${s.code ?? 'by signal'}: ${s.stderr.slice(-300)}`)
      jobIds.push(s.json.jobId)
      const { record: rec } = await clientIn<{ record: RequestRecord, timedOut: boolean }>(n, 'req', req.home, ['verdict', s.json.jobId, '150000'], 170_000)
      if (rec.status !== 'accepted') throw new Error(`job ${rec.jobId} ${rec.status} after ${((Date.now() - Date.parse(rec.submittedAt)) / 1000).toFixed(0)} s: ${JSON.stringify(rec.reasons)}`)
      const published = Date.parse(rec.submittedAt)
      const accepted = Date.parse(rec.history.find(h => h.status === 'accepted')?.at ?? '')
      // every worker attested, so every one has it: the feed answers at once
      const heard = await Promise.all(workers.map(async w => await heardAt(n, w, rec.jobId, 30_000)))
      return { acceptedMs: accepted - published, announceMs: Math.max(...heard) - published }
    }
    const holder = workers[0] as NsDaemon
    let fetchNo = 0
    /** a fresh tree of random files on one worker, fetched by the requester: ms */
    const fetch = async (): Promise<number> => {
      const dir = join(scratch, `tree-${fetchNo++}`)
      await mkdir(dir)
      for (let f = 0; f < fileCount; f++) await writeFile(join(dir, `f${f}.bin`), randomBytes(fileSize))
      const added = await callIn<{ cid: string }>(n, holder.host, holder.home, 'POST', '/v1/content/add', { path: dir }, 60_000)
      // the client waits longer than the route's own bound, so a fetch that stalls ends with the daemon's answer (504, ERR_FETCH_TIMEOUT)
      const got = await callIn<{ bytes?: number }>(n, 'req', req.home, 'POST', '/v1/content/get', { cid: added.json.cid, out: join(scratch, `got-${fetchNo}`), timeoutMs: FETCH_BOUND_MS }, FETCH_BOUND_MS + 15_000)
      return got.ms
    }

    const measure = async (s: NetemSetting): Promise<Sample> => {
      const one = s.rttMs / 4
      for (const h of HOMES) {
        const ignored = await n.setLink(SEGMENT[h] as string, { delayMs: one, lossPercent: s.lossPercent })
        // runnable settings are the ones this mode applies in full
        if (ignored.length > 0) throw new Error(ignored.join('; '))
      }
      const sample: Sample = { acceptedMs: [], announceMs: [], fetchMs: [], failures: [], measuredRttMs: NaN, rttParts: { requester: NaN, worker: NaN } }
      const rq = await rttTo(n, 'req', 10)
      const rw = await rttTo(n, holder.host, 10)
      sample.rttParts = { requester: rq, worker: rw }
      sample.measuredRttMs = rq + rw
      for (let i = 0; i < jobs; i++) {
        try {
          const j = await job()
          sample.acceptedMs.push(j.acceptedMs)
          sample.announceMs.push(j.announceMs)
        } catch (err) {
          sample.failures.push(`job: ${(err as Error).message}`)
        }
      }
      for (let i = 0; i < fetches; i++) {
        try { sample.fetchMs.push(await fetch()) } catch (err) { sample.failures.push(`fetch: ${(err as Error).message}`) }
      }
      log(`netem: ${label(s)}: RTT measured ${sample.measuredRttMs.toFixed(1)} ms; accepted ${fmtMs(median(sample.acceptedMs))}, announcement ${fmtMs(median(sample.announceMs))}, fetch ${fmtMBs(report.fetchBytes, median(sample.fetchMs))}${sample.failures.length > 0 ? `; ${sample.failures.length} failed: ${sample.failures.join(' | ')}` : ''}`)
      return sample
    }

    // warm-up, unmeasured: the first job and fetch set up connections and caches every later one finds
    log('netem: warm-up job and fetch')
    // (a failure here is logged, not fatal: the measured ones below say how often it happens)
    await job().catch((err: Error) => { log(`netem: warm-up job: ${err.message}`) })
    await fetch().catch((err: Error) => { log(`netem: warm-up fetch: ${err.message}`) })
    report.baseline = await measure({ rttMs: 0, lossPercent: 0 })
    for (const s of runnable) {
      if (Date.now() - startedAt > opts.budgetMs) { report.unavailable.push({ ...s, reason: OVER_BUDGET }); continue }
      report.settings.push({ ...s, ...await measure(s) })
    }
    // the proof bundle of each accepted job (`submit --wait` waits for it): written by now, or not
    const bundles: NetemReport['bundles'] = { jobs: 0, written: 0, failed: 0, notYet: 0, acceptedToWrittenMs: [], notYetSinceAcceptedMs: [] }
    for (const jobId of jobIds) {
      const rec = (await callIn<{ record: RequestRecord }>(n, 'req', req.home, 'GET', `/v1/requests/${jobId}`, null, 30_000)).json.record
      const accepted = rec.history.find(h => h.status === 'accepted')
      if (accepted == null) continue
      bundles.jobs++
      if (rec.bundle != null) {
        bundles.written++
        bundles.acceptedToWrittenMs.push((await stat(rec.bundle)).mtimeMs - Date.parse(accepted.at))
      } else if (rec.bundleError != null) bundles.failed++
      else {
        bundles.notYet++
        bundles.notYetSinceAcceptedMs.push(Date.now() - Date.parse(accepted.at))
      }
    }
    report.bundles = bundles
    log(`netem: bundles of accepted jobs: ${bundles.written} of ${bundles.jobs} written (accepted → written median ${fmtMs(median(bundles.acceptedToWrittenMs))}), ${bundles.failed} failed, ${bundles.notYet} still being made`)
  } finally {
    await net?.teardown()
    await cleanupAll()
  }
  report.rows = rowsOf(report, jobs, fetches)
  report.table = tableOf(report)
  return report
}

const label = (s: NetemSetting): string => s.rttMs === 0 ? 'baseline (0 ms added)' : `${s.rttMs} ms RTT, ${s.lossPercent} % loss`
const fmtMs = (ms: number): string => Number.isNaN(ms) ? '—' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`
const fmtMBs = (bytes: number, ms: number): string => Number.isNaN(ms) ? '—' : `${(bytes / MiB / (ms / 1000)).toFixed(1)} MB/s`
const ratioOf = (x: number, base: number): string => Number.isNaN(x) || Number.isNaN(base) ? '—' : `×${(x / base).toFixed(1)}`

function rowsOf (r: NetemReport, jobs: number, fetches: number): Row[] {
  const b = r.baseline
  if (b == null) return []
  const rows: Row[] = []
  const where = 'requester and 3 trusted workers each behind its own NAT, bootstrap/relay public'
  for (const s of r.settings) {
    const tag = `rtt${s.rttMs}-loss${s.lossPercent}`
    const base = `every uplink at 0 ms added, same network and run (RTT measured ${b.measuredRttMs.toFixed(1)} ms)`
    const at = `${s.rttMs} ms requester↔worker RTT (measured ${s.measuredRttMs.toFixed(1)} ms), ${s.lossPercent} % loss; ${where}`
    rows.push({
      id: `netem-accepted-${tag}`,
      measure: `submit → accepted, devnet-style job, k = 3 of 3; ${at}`,
      baseline: `${base}: ${fmtMs(median(b.acceptedMs))}`,
      figure: `${fmtMs(median(s.acceptedMs))} (median of ${s.acceptedMs.length})`,
      ratio: median(s.acceptedMs) / median(b.acceptedMs),
      target: `accepted within 120 s, ${jobs} of ${jobs}`,
      pass: s.acceptedMs.length === jobs,
      detail: { ms: spread(s.acceptedMs), baselineMs: spread(b.acceptedMs), failures: s.failures.filter(f => f.startsWith('job')) }
    }, {
      id: `netem-announce-${tag}`,
      measure: `announcement to all 3 workers (publish → last worker's job event); ${at}`,
      baseline: `${base}: ${fmtMs(median(b.announceMs))}`,
      figure: `${fmtMs(median(s.announceMs))} (median of ${s.announceMs.length})`,
      ratio: median(s.announceMs) / median(b.announceMs),
      target: 'every worker hears every job',
      pass: s.announceMs.length === jobs,
      detail: { ms: spread(s.announceMs), baselineMs: spread(b.announceMs) }
    }, {
      id: `netem-fetch-${tag}`,
      measure: `concur get of a ${r.fetchBytes / MiB} MiB directory (4 random files) from a worker; ${at}`,
      baseline: `${base}: ${fmtMBs(r.fetchBytes, median(b.fetchMs))}`,
      figure: `${fmtMBs(r.fetchBytes, median(s.fetchMs))} (median of ${s.fetchMs.length})`,
      // throughput: the baseline's time over this one's
      ratio: median(b.fetchMs) / median(s.fetchMs),
      target: `completes within ${FETCH_BOUND_MS / 1000} s, ${fetches} of ${fetches}`,
      pass: s.fetchMs.length === fetches,
      detail: { ms: spread(s.fetchMs), baselineMs: spread(b.fetchMs), failures: s.failures.filter(f => f.startsWith('fetch')) }
    })
  }
  for (const u of r.unavailable) {
    for (const what of ['accepted', 'announce', 'fetch']) {
      rows.push({ id: `netem-${what}-rtt${u.rttMs}-loss${u.lossPercent}`, measure: `${what} at ${u.rttMs} ms RTT, ${u.lossPercent} % loss`, baseline: '—', figure: u.reason, ratio: NaN, target: '—', pass: false, detail: { unavailable: u.reason } })
    }
  }
  return rows
}

function tableOf (r: NetemReport): string {
  const b = r.baseline
  if (b == null) return ''
  const lines = [
    `| requester↔worker RTT, each behind its own NAT: set (measured) | loss | submit → accepted | announcement to all 3 workers | fetch ${r.fetchBytes / MiB} MiB |`,
    '|---|---|---|---|---|',
    `| 0 ms added, baseline (${b.measuredRttMs.toFixed(1)} ms) | 0 % | ${fmtMs(median(b.acceptedMs))} | ${fmtMs(median(b.announceMs))} | ${fmtMBs(r.fetchBytes, median(b.fetchMs))} |`
  ]
  const all = [...r.settings.map(s => ({ s, u: undefined })), ...r.unavailable.map(u => ({ s: undefined, u }))]
    .sort((x, y) => ((x.s ?? x.u)?.rttMs ?? 0) - ((y.s ?? y.u)?.rttMs ?? 0) || ((x.s ?? x.u)?.lossPercent ?? 0) - ((y.s ?? y.u)?.lossPercent ?? 0))
  for (const { s, u } of all) {
    if (u != null) { lines.push(`| ${u.rttMs} ms | ${u.lossPercent} % | ${u.reason} | ${u.reason} | ${u.reason} |`); continue }
    if (s == null) continue
    const failed = (what: string): string => {
      const k = s.failures.filter(f => f.startsWith(what)).length
      return k > 0 ? ` (${k} of ${k + (what === 'job' ? s.acceptedMs : s.fetchMs).length} failed)` : ''
    }
    lines.push(`| ${s.rttMs} ms (${s.measuredRttMs.toFixed(1)} ms) | ${s.lossPercent} % | ${fmtMs(median(s.acceptedMs))} ${ratioOf(median(s.acceptedMs), median(b.acceptedMs))}${failed('job')} | ${fmtMs(median(s.announceMs))} ${ratioOf(median(s.announceMs), median(b.announceMs))} | ${fmtMBs(r.fetchBytes, median(s.fetchMs))} ${ratioOf(median(b.fetchMs), median(s.fetchMs))}${failed('fetch')} |`)
  }
  const bd = r.bundles
  if (bd != null) lines.push('', `Proof bundles of the ${bd.jobs} accepted jobs at the end of the run (\`submit --wait\` waits for them): ${bd.written} written (accepted → written: median ${fmtMs(median(bd.acceptedToWrittenMs))}, max ${fmtMs(Math.max(...bd.acceptedToWrittenMs))}), ${bd.failed} failed, ${bd.notYet} still being made${bd.notYet > 0 ? ` (accepted ${bd.notYetSinceAcceptedMs.map(ms => fmtMs(ms)).join(', ')} before)` : ''}.`)
  return lines.join('\n')
}
