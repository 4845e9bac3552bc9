/** The requester over HTTP: each route reads its body and calls src/requester. */
import type { Requester } from '../../../src/requester/requester.ts'
import type { EventHub } from '../../events.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import type { LogsView, RequestView, RequestsResponse, SubmitResponse } from '../types.ts'
import { absPath, optNum, record, str, variations } from './body.ts'

export interface RequestRouteDeps {
  requester: Requester
  events: Pick<EventHub, 'last'>
}

export function requestRoutes (router: Router, deps: RequestRouteDeps): void {
  const { requester, events } = deps

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
      includeVcs: (body as { includeVcs?: unknown } | undefined)?.includeVcs === true
    })
    const { job, record: r, source, threshold, excluded, ignoreRules, vcsExcluded } = submitted
    return { jobId: job.jobId, buildId: job.job.buildId, source, record: r, threshold, eventSeq, excluded, ignoreRules, vcsExcluded }
  })

  router.on('GET', '/v1/requests', async (): Promise<RequestsResponse> => ({ requests: requester.list() }))

  router.on('GET', '/v1/requests/:id', async (req): Promise<RequestView> => await requester.view(req.params.id ?? ''))

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
