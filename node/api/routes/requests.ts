/** The requester over HTTP: each route reads its body and calls src/requester. */
import { createReadStream } from 'node:fs'
import { open, realpath } from 'node:fs/promises'
import { basename, dirname, join, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Requester } from '../../../src/requester/requester.ts'
import { UnknownJobError } from '../../../src/requester/errors.ts'
import type { EventHub } from '../../events.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import type { LogsView, ReportView, RequestRecord, RequestView, RequestsResponse, SubmitResponse } from '../types.ts'
import { absPath, optNum, record, str, variations } from './body.ts'

export interface RequestRouteDeps {
  requester: Requester
  events: Pick<EventHub, 'last'>
  /** where the requester writes reports and bundles: the only places these routes read files from */
  dirs: { disputes: string, bundles: string }
}

/** the most of a report one answer carries (diffoscope's excerpts are capped, its full output is on disk) */
const MAX_REPORT_BYTES = 1024 * 1024

/**
 * The real path of `file` if it lies inside `dir`: a record names its report
 * and bundle by path, and a route must never become a way to read any file
 * the daemon's user can (a path rewritten in the datastore, a symlink).
 */
async function inside (dir: string, file: string): Promise<string> {
  const [root, real] = await Promise.all([realpath(dir), realpath(file)]).catch(() => { throw new HttpError(404, 'ERR_NOT_FOUND', `${basename(file)} is not on disk any more`) })
  if (!real.startsWith(root + sep)) throw new HttpError(403, 'ERR_OUTSIDE_HOME', `${file} is not under ${dir}`)
  return real
}

/** report.json is read up to this size for its list of differing paths */
const MAX_REPORT_JSON_BYTES = 4 * 1024 * 1024
/** at most this many differing paths are listed (the report has them all) */
const MAX_DIFFERENCES = 500

/**
 * The differing paths of a dispute report (report.json, version 2: one
 * comparison per CID against the reference), each with the CID that differs.
 * Read as untrusted shapes: whatever is not as expected is left out.
 */
async function differencesOf (file: string, dir: string): Promise<ReportView['differences']> {
  const out: ReportView['differences'] = []
  try {
    const fh = await open(await inside(dir, file), 'r')
    let text: string
    try {
      const buf = Buffer.alloc(Math.min((await fh.stat()).size, MAX_REPORT_JSON_BYTES))
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await fh.close()
    }
    const json = JSON.parse(text) as { comparisons?: unknown }
    for (const c of Array.isArray(json.comparisons) ? json.comparisons as unknown[] : []) {
      const artifact = (c as { candidate?: { artifact?: unknown } }).candidate?.artifact
      const entries = (c as { report?: { entries?: unknown } }).report?.entries
      if (typeof artifact !== 'string' || !Array.isArray(entries)) continue
      for (const e of entries as unknown[]) {
        const { path, change } = e as { path?: unknown, change?: unknown }
        if (typeof path !== 'string' || typeof change !== 'string') continue
        if (out.length >= MAX_DIFFERENCES) return out
        out.push({ artifact, change, path })
      }
    }
  } catch { /* no report.json (an older report, or it failed): the text has it all */ }
  return out
}

export function requestRoutes (router: Router, deps: RequestRouteDeps): void {
  const { requester, events, dirs } = deps
  // the record alone: a report or a bundle needs no verdict evaluated (view() waits for that)
  const recordOf = (jobId: string): RequestRecord => {
    const r = requester.get(jobId)
    if (r == null) throw new UnknownJobError(`this node submitted no job ${jobId}`)
    return r
  }

  router.on('POST', '/v1/jobs', async (req): Promise<SubmitResponse> => {
    const body = req.body
    const eventSeq = events.last
    const environment = str(body, 'environment', false)
    const platform = str(body, 'platform', false)
    const env = record(body, 'env') as Record<string, string> | undefined
    const resources = record(body, 'resources')
    const replicas = optNum(body, 'replicas')
    const ttlSeconds = optNum(body, 'ttlSeconds')
    const vary = variations(body, 'vary')
    const submitted = await requester.submitDirectory(absPath(str(body, 'source') as string, 'source'), {
      // the definition's own checks (protocol/) say what is wrong with these
      command: (body as { command?: string[] } | undefined)?.command as string[],
      output: (body as { output?: string } | undefined)?.output as string,
      ...(env != null ? { env } : {}),
      ...(environment != null ? { environment } : {}),
      ...(platform != null ? { platform } : {})
    }, {
      ...(replicas != null ? { replicas } : {}),
      ...(ttlSeconds != null ? { ttlSeconds } : {}),
      ...(resources != null ? { resources } : {}),
      ...(vary != null ? { vary } : {}),
      reuse: (body as { reuse?: unknown } | undefined)?.reuse !== false,
      sharded: (body as { sharded?: unknown } | undefined)?.sharded === true,
      includeVcs: (body as { includeVcs?: unknown } | undefined)?.includeVcs === true
    })
    const { job, record: r, source, threshold, excluded, ignoreRules, vcsExcluded, warnings } = submitted
    return { jobId: job.jobId, buildId: job.job.buildId, source, record: r, threshold, eventSeq, excluded, ignoreRules, vcsExcluded, warnings }
  })

  router.on('GET', '/v1/requests', async (): Promise<RequestsResponse> => ({ requests: requester.list() }))

  router.on('GET', '/v1/requests/:id', async (req): Promise<RequestView> => await requester.view(req.params.id ?? ''))

  // the text of a dispute report (or a non-reproducible build's), for the dashboard
  router.on('GET', '/v1/requests/:id/report', async (req): Promise<ReportView> => {
    const kind = req.query.get('kind') === 'non-reproducible' ? 'non-reproducible' : 'dispute'
    const record = recordOf(req.params.id ?? '')
    const made = kind === 'dispute' ? record.dispute : record.nonReproducible
    if (made?.report == null) throw new HttpError(404, 'ERR_NO_REPORT', `job ${record.jobId} has no ${kind} report${made?.error != null ? ` (${made.error})` : ''}`)
    const file = await open(await inside(dirs.disputes, made.report), 'r')
    try {
      const size = (await file.stat()).size
      const buf = Buffer.alloc(Math.min(size, MAX_REPORT_BYTES))
      const { bytesRead } = await file.read(buf, 0, buf.length, 0)
      const differences = await differencesOf(join(dirname(made.report), 'report.json'), dirs.disputes)
      return { jobId: record.jobId, kind, path: made.report, size, truncated: size > bytesRead, text: buf.subarray(0, bytesRead).toString('utf8'), differences, ...(made.summary != null ? { summary: made.summary } : {}) }
    } finally {
      await file.close()
    }
  })

  // the job's bundle (what `concur verify` checks offline), as a download
  router.on('GET', '/v1/requests/:id/bundle', async (req, res) => {
    const record = recordOf(req.params.id ?? '')
    if (record.bundle == null) throw new HttpError(404, 'ERR_NO_BUNDLE', `job ${record.jobId} has no bundle${record.bundleError != null ? ` (${record.bundleError})` : ' (only an accepted job has one)'}`)
    const real = await inside(dirs.bundles, record.bundle)
    const file = await open(real, 'r')
    const size = (await file.stat()).size
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': size,
      // a name of our own making: the job id is a CID (base32), nothing a peer chose
      'content-disposition': `attachment; filename="${record.jobId.replace(/[^a-z0-9]/gi, '')}.car"`,
      'x-content-type-options': 'nosniff'
    })
    await pipeline(createReadStream('', { fd: file }), res)
  })

  router.on('GET', '/v1/requests/:id/logs', async (req, res): Promise<LogsView> => {
    const asked = req.query.get('bytes')
    const tailBytes = asked == null ? undefined : Number(asked)
    if (tailBytes != null && (!Number.isSafeInteger(tailBytes) || tailBytes <= 0)) throw new HttpError(400, 'ERR_BAD_REQUEST', '"bytes" must be a positive whole number')
    const all = req.query.get('all') === '1' || req.query.get('all') === 'true'
    // the caller went away (Ctrl-C on `concur logs`): stop fetching logs for it
    const ac = new AbortController()
    res.on('close', () => { if (!res.writableFinished) ac.abort() })
    return await requester.logs(req.params.id ?? '', { workers: req.query.getAll('worker'), all, ...(tailBytes != null ? { tailBytes } : {}), signal: ac.signal })
  })
}
