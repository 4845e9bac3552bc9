/** Content in and out of the node's store: add, get, pins. */
import type { Helia } from '@helia/interface'
import { pin } from '../../../src/store/pin.ts'
import type { EventHub } from '../../events.ts'
import type { AddResponse } from '../types.ts'
import type { EnvView } from '../../../src/env/show.ts'
import type { FetchProgress } from '../../../src/content/fetch-progress.ts'
import type { ExportOptions } from '../../../src/content/export-directory.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import { absPath, num, parseCid, str } from './body.ts'

export interface ContentRouteDeps {
  helia: Pick<Helia, 'blockstore' | 'pins'>
  events: EventHub
  /** `concur get` by the DAG transfer first; bitswap fetches what it leaves */
  transfer?: ExportOptions['transfer']
  /** a `concur get` ended (the store may have grown past its quota) */
  afterGet?: () => void
}

const DEFAULT_FETCH_TIMEOUT_MS = 60_000

/** a progress id goes into every event of its fetch: short and plain */
const PROGRESS_ID = /^[A-Za-z0-9_-]{1,64}$/

/** how the user of `concur get` (the caller of this route) raises each cap */
const GET_LIMIT_REMEDY = {
  bytes: 'raise it with `concur get --max-bytes SIZE` ("maxBytes")',
  entries: 'raise it with `concur get --max-entries N` ("maxEntries")',
  'directory-bytes': 'raise it with `concur get --max-dir-bytes SIZE` ("maxDirectoryBytes")'
} as const

export function contentRoutes (router: Router, deps: ContentRouteDeps): void {
  const { helia, events, transfer, afterGet } = deps

  // an environment's manifest (concur env show): only the blocks on its path are fetched
  router.on('GET', '/v1/environments/:cid', async (req): Promise<EnvView> => {
    const cid = parseCid(req.params.cid ?? '').toString()
    const asked = req.query.get('timeoutMs')
    const timeoutMs = asked == null ? DEFAULT_FETCH_TIMEOUT_MS : Number(asked)
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new HttpError(400, 'ERR_BAD_REQUEST', '"timeoutMs" must be a positive whole number')
    const signal = AbortSignal.timeout(timeoutMs)
    const { readEnvironment } = await import('../../../src/env/show.ts')
    try {
      return await readEnvironment(helia.blockstore, cid, { signal })
    } catch (err) {
      if (signal.aborted) throw new HttpError(504, 'ERR_FETCH_TIMEOUT', `no peer delivered the manifest of ${cid} within ${timeoutMs} ms (is a peer holding it connected?)`)
      throw err
    }
  })

  router.on('POST', '/v1/content/add', async (req) => {
    const path = absPath(str(req.body, 'path') as string, 'path')
    const skipSpecial = (req.body as { skipSpecial?: unknown } | undefined)?.skipSpecial === true
    // through helia's blockstore, so peers that already want these blocks hear of them
    const { addDirectory } = await import('../../../src/content/add-directory.ts')
    const result = await addDirectory(helia.blockstore, path, {
      signal: AbortSignal.timeout(30 * 60_000),
      specialFiles: skipSpecial ? 'skip' : 'refuse',
      specialFilesRemedy: 'a root filesystem\'s /dev is provided by the sandbox: leave special files out with `concur add --skip-special` ("skipSpecial": true)'
    })
    await pin(helia.pins, result.cid)
    events.emit({ type: 'content:add', cid: result.cid.toString(), bytes: result.bytes })
    const answer: AddResponse = { cid: result.cid.toString(), bytes: result.bytes, files: result.files, skippedSpecial: result.skippedSpecial }
    return answer
  })

  router.on('POST', '/v1/content/get', async (req) => {
    const cid = parseCid(str(req.body, 'cid') as string)
    const out = absPath(str(req.body, 'out') as string, 'out')
    // loaded on first use, like the exporter it brings
    const { DEFAULT_FETCH_LIMITS, exportToDirectory } = await import('../../../src/content/export-directory.ts')
    const { DEFAULT_PREFETCH_CONCURRENCY } = await import('../../../src/content/prefetch.ts')
    // a DAG from the network can name far more than it weighs: every cap has a default
    const maxBytes = num(req.body, 'maxBytes', DEFAULT_FETCH_LIMITS.maxBytes)
    const maxEntries = num(req.body, 'maxEntries', DEFAULT_FETCH_LIMITS.maxEntries)
    const maxDirectoryBytes = num(req.body, 'maxDirectoryBytes', DEFAULT_FETCH_LIMITS.maxDirectoryBytes)
    const timeoutMs = num(req.body, 'timeoutMs', DEFAULT_FETCH_TIMEOUT_MS)
    const overwrite = (req.body as { overwrite?: unknown }).overwrite === true
    // the caller follows this fetch on the event feed under an id of its choosing
    const progressId = str(req.body, 'progressId', false)
    if (progressId != null && !PROGRESS_ID.test(progressId)) throw new HttpError(400, 'ERR_BAD_REQUEST', '"progressId" must be 1 to 64 letters, digits, "-" or "_"')
    const onFetchProgress = progressId == null ? undefined : (p: FetchProgress): void => { events.emit({ type: 'content:progress', id: progressId, cid: cid.toString(), ...p }) }
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      // helia's blockstore fetches missing blocks over bitswap and checks each
      // block's hash against its CID before it is stored or returned.
      // Not pinned: a pin walks every link of the DAG again, per visit, with
      // none of the export's caps (a symlink node's ignored links to one huge
      // shared node kept a daemon busy for minutes). The blocks read stay in
      // the store; `concur add` pins what this node publishes.
      const result = await exportToDirectory(helia.blockstore, cid, out, { signal, maxBytes, maxEntries, maxDirectoryBytes, overwrite, remedy: GET_LIMIT_REMEDY, prefetch: DEFAULT_PREFETCH_CONCURRENCY, ...(transfer != null ? { transfer } : {}), ...(onFetchProgress != null ? { onFetchProgress } : {}) })
      return { cid: cid.toString(), out, ...result }
    } catch (err) {
      if (signal.aborted) {
        throw new HttpError(504, 'ERR_FETCH_TIMEOUT', `no peer delivered ${cid.toString()} within ${timeoutMs} ms (is a peer holding it connected?)`)
      }
      // every other failure has its code, and its status in error-status.ts
      throw err
    } finally {
      afterGet?.()
    }
  })

  router.on('GET', '/v1/pins', async () => {
    const pins: string[] = []
    for await (const p of helia.pins.ls()) pins.push(p.cid.toString())
    return { pins }
  })
}
