import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { logger } from '@libp2p/logger'
import { PortInUseError } from '../errors.ts'

const log = logger('concur:api')

/** An error an API handler answers with: HTTP status plus a stable code. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string
  constructor (status: number, code: string, message: string) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
  }
}

export interface ApiRequest {
  method: string
  path: string
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
  raw: IncomingMessage
}

export type Handler = (req: ApiRequest, res: ServerResponse) => Promise<unknown>

interface Route { method: string, pattern: RegExp, keys: string[], handler: Handler }

/** Largest JSON body the API reads: requests carry paths and envelopes, not data. */
const MAX_BODY = 1024 * 1024

export class Router {
  private readonly routes: Route[] = []

  on (method: string, path: string, handler: Handler): this {
    const keys: string[] = []
    const pattern = new RegExp('^' + path.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)' }) + '$')
    this.routes.push({ method, pattern, keys, handler })
    return this
  }

  match (method: string, path: string): { handler: Handler, params: Record<string, string> } | null {
    for (const r of this.routes) {
      if (r.method !== method) continue
      const m = r.pattern.exec(path)
      if (m == null) continue
      const params: Record<string, string> = {}
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1] ?? '') })
      return { handler: r.handler, params }
    }
    return null
  }
}

async function readBody (req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new HttpError(413, 'ERR_TOO_LARGE', `request body over ${MAX_BODY} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'ERR_BAD_JSON', 'request body is not JSON')
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  res.end(data)
}

export interface ApiServer {
  address: string
  server: Server
  close (): Promise<void>
}

/**
 * The local API the CLI talks to. It binds 127.0.0.1 only: it can read and
 * write files as the daemon's user and sign with its key, so it must never be
 * reachable from another host.
 */
export async function startApiServer (router: Router, hostPort: string): Promise<ApiServer> {
  const idx = hostPort.lastIndexOf(':')
  const host = idx === -1 ? '127.0.0.1' : hostPort.slice(0, idx)
  const port = Number(idx === -1 ? hostPort : hostPort.slice(idx + 1))
  if (host !== '127.0.0.1' && host !== 'localhost') {
    throw new HttpError(400, 'ERR_API_HOST', `the API binds 127.0.0.1 only (got ${host})`)
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HttpError(400, 'ERR_API_PORT', `bad API port in ${hostPort}`)
  }
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const m = router.match(req.method ?? 'GET', url.pathname)
      try {
        if (m == null) throw new HttpError(404, 'ERR_NOT_FOUND', `no route ${req.method ?? ''} ${url.pathname}`)
        const body = await readBody(req)
        const result = await m.handler({ method: req.method ?? 'GET', path: url.pathname, params: m.params, query: url.searchParams, body, raw: req }, res)
        if (!res.headersSent) sendJson(res, 200, result ?? {})
      } catch (err) {
        const e = err as Error & { status?: number, code?: string }
        const status = err instanceof HttpError ? err.status : (typeof e.status === 'number' ? e.status : 500)
        if (status >= 500) log.error('API %s %s failed: %e', req.method, url.pathname, err)
        if (!res.headersSent) sendJson(res, status, { error: { code: e.code ?? 'ERR_INTERNAL', name: e.name, message: e.message } })
        else res.end()
      }
    })()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(`API ${host}:${port}`) : err)
    })
    server.listen(port, '127.0.0.1', () => { resolve() })
  })
  const addr = server.address() as AddressInfo
  return {
    address: `127.0.0.1:${addr.port}`,
    server,
    async close () {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
