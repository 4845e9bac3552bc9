import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { logger } from '@libp2p/logger'
import { PortInUseError } from '../errors.ts'
import { API_TOKEN_PATTERN, homePaths } from '../home.ts'
import { httpStatusOf } from './error-status.ts'

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

/** No token, or not this daemon's: the caller is not the daemon's user. */
export class UnauthorizedError extends HttpError {
  constructor (message: string) {
    super(401, 'ERR_UNAUTHORIZED', message)
    this.name = 'UnauthorizedError'
  }
}

/** A Host other than 127.0.0.1:PORT / localhost:PORT: a DNS-rebinding page, or a proxy. */
export class BadHostError extends HttpError {
  constructor (message: string) {
    super(403, 'ERR_BAD_HOST', message)
    this.name = 'BadHostError'
  }
}

/** An Origin other than the API's own: a web page's request. */
export class BadOriginError extends HttpError {
  constructor (message: string) {
    super(403, 'ERR_BAD_ORIGIN', message)
    this.name = 'BadOriginError'
  }
}

/** A body not declared as JSON: what a cross-origin "simple" request looks like. */
export class UnsupportedMediaTypeError extends HttpError {
  constructor (message: string) {
    super(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', message)
    this.name = 'UnsupportedMediaTypeError'
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

interface Route { method: string, path: string, pattern: RegExp, keys: string[], handler: Handler }

/** One entry of the route table: a method and the path as registered (`/v1/jobs/:id`). */
export interface RouteEntry { method: string, path: string }

/** Largest JSON body the API reads: requests carry paths and envelopes, not data. */
const MAX_BODY = 1024 * 1024

export class Router {
  private readonly routes: Route[] = []

  on (method: string, path: string, handler: Handler): this {
    const keys: string[] = []
    const pattern = new RegExp('^' + path.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)' }) + '$')
    this.routes.push({ method, path, pattern, keys, handler })
    return this
  }

  /** Every registered route, in registration order (served to the owner as GET /v1/routes). */
  table (): RouteEntry[] {
    return this.routes.map(r => ({ method: r.method, path: r.path }))
  }

  match (method: string, path: string): { handler: Handler, params: Record<string, string> } | null {
    for (const r of this.routes) {
      if (r.method !== method) continue
      const m = r.pattern.exec(path)
      if (m == null) continue
      const params: Record<string, string> = {}
      try {
        r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1] ?? '') })
      } catch {
        throw new HttpError(400, 'ERR_BAD_REQUEST', `malformed %-escape in ${path}`)
      }
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

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body)
  // never any Access-Control-* header: no web page may read an answer or send a preflighted request
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  res.end(data)
}

export interface ApiServer {
  address: string
  server: Server
  close (): Promise<void>
}

/**
 * A file served without the token: the dashboard's page, script and style.
 * They hold no data (every datum comes from the token-guarded /v1 routes the
 * script calls), so a browser can load them by plain navigation, which cannot
 * carry an Authorization header. The Host check still applies.
 */
export interface PublicFile { type: string, body: Buffer }

/**
 * What every public file is sent with. The page renders text from peers
 * (reasons, names, logs, dispute reports): the CSP allows only the daemon's
 * own script and style, no inline script, no plugin, no other origin to
 * talk to, no framing (a page of another site cannot overlay it to steal
 * clicks), no referrer (the page's address carries the token in its
 * fragment, which browsers never send, but nothing is left to chance).
 */
export const PUBLIC_FILE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': 'default-src \'none\'; script-src \'self\'; style-src \'self\'; connect-src \'self\'; img-src \'self\' data:; base-uri \'none\'; form-action \'none\'; frame-ancestors \'none\'',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store'
}

export interface ApiAuth {
  /** the secret in <home>/api.token */
  token: string
  /** the home, named (with its token file) in the 401 message so the caller knows what to run */
  home: string
}

/** sha256 of a token: fixed length, so timingSafeEqual tells nothing, not even the length */
function digest (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** The media type of a Content-Type header, without parameters (charset=…), lowercased. */
function mediaType (header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

/**
 * Who may use the API, checked before a route runs or a byte of the body is
 * read, for unknown routes too (no route enumeration without the token):
 *  1. Host is 127.0.0.1:PORT or localhost:PORT. A DNS-rebinding page reaches
 *     127.0.0.1 under its own name, and its browser sends that name as Host.
 *  2. An Origin, when sent, is the API's own. Browsers send Origin on every
 *     cross-origin request and on every POST, and a page cannot forge it.
 *  3. The bearer token of <home>/api.token (0600): only the daemon's user can
 *     read it, so other local users and web pages cannot present it.
 *  4. A request that may carry a body declares it JSON. A cross-origin "simple"
 *     request (text/plain, form types) skips the CORS preflight; JSON does not.
 */
function admitHost (req: IncomingMessage, port: number): string[] {
  // clients leave the port out of Host (and Origin) when it is http's default
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`, ...(port === 80 ? ['127.0.0.1', 'localhost'] : [])]
  const host = (req.headers.host ?? '').toLowerCase()
  if (!hosts.includes(host)) {
    throw new BadHostError(`Host header must be ${hosts.join(' or ')} (got ${JSON.stringify(req.headers.host ?? '')}): requests through other names, such as a DNS-rebinding web page, are refused`)
  }
  return hosts
}

function admit (req: IncomingMessage, port: number, auth: ApiAuth, expected: Buffer): void {
  const hosts = admitHost(req, port)
  const origin = req.headers.origin
  if (origin != null && !hosts.map(h => `http://${h}`).includes(origin.toLowerCase())) {
    throw new BadOriginError(`requests from web pages are refused (Origin ${JSON.stringify(origin)}): the API serves the concur CLI of the daemon's user only`)
  }
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')
  if (m == null || !timingSafeEqual(digest(m[1] ?? ''), expected)) {
    throw new UnauthorizedError(`${m == null ? 'missing' : 'wrong'} API token: send "Authorization: Bearer <token>" with the token in ${homePaths(auth.home).apiToken}. ` +
      `That file is readable only by the user the daemon runs as: run the concur command as that user, with --home ${auth.home} (the CLI sends the token for you)`)
  }
  if (req.method !== 'GET' && req.method !== 'HEAD' && mediaType(req.headers['content-type']) !== 'application/json') {
    throw new UnsupportedMediaTypeError(`a ${req.method ?? ''} body must be sent as Content-Type: application/json (got ${JSON.stringify(req.headers['content-type'] ?? '')})`)
  }
}

/**
 * The local API the CLI talks to. It binds 127.0.0.1 only: it can read and
 * write files as the daemon's user and sign with its key, so it must never be
 * reachable from another host.
 */
export async function startApiServer (router: Router, hostPort: string, auth: ApiAuth, publicFiles: ReadonlyMap<string, PublicFile> = new Map()): Promise<ApiServer> {
  const idx = hostPort.lastIndexOf(':')
  const host = idx === -1 ? '127.0.0.1' : hostPort.slice(0, idx)
  const port = Number(idx === -1 ? hostPort : hostPort.slice(idx + 1))
  if (host !== '127.0.0.1' && host !== 'localhost') {
    throw new HttpError(400, 'ERR_API_HOST', `the API binds 127.0.0.1 only (got ${host})`)
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HttpError(400, 'ERR_API_PORT', `bad API port in ${hostPort}`)
  }
  if (!API_TOKEN_PATTERN.test(auth.token)) throw new HttpError(500, 'ERR_API_TOKEN', 'the API token must be 64 hex characters')
  const expected = digest(auth.token)
  // the port actually bound (port 0 picks one): set once listening, before any
  // request can arrive; until then no Host matches and everything is refused
  let boundPort = -1
  const server = createServer((req, res) => {
    void (async () => {
      // parsed inside the try: a request target like "//" or "//[" makes the
      // URL constructor throw, and an unhandled rejection would end the daemon
      let pathname = '?'
      try {
        let url: URL
        try {
          url = new URL(req.url ?? '/', 'http://127.0.0.1')
        } catch {
          throw new HttpError(400, 'ERR_BAD_REQUEST', 'malformed request target')
        }
        pathname = url.pathname
        const file = req.method === 'GET' || req.method === 'HEAD' ? publicFiles.get(url.pathname) : undefined
        if (file != null) {
          // the dashboard's files: Host checked (a rebinding page gets nothing), no token (see PublicFile)
          admitHost(req, boundPort)
          res.writeHead(200, { ...PUBLIC_FILE_HEADERS, 'content-type': file.type, 'content-length': file.body.length })
          res.end(req.method === 'HEAD' ? undefined : file.body)
          return
        }
        admit(req, boundPort, auth, expected)
        const m = router.match(req.method ?? 'GET', url.pathname)
        if (m == null) throw new HttpError(404, 'ERR_NOT_FOUND', `no route ${req.method ?? ''} ${url.pathname}`)
        const body = await readBody(req)
        const result = await m.handler({ method: req.method ?? 'GET', path: url.pathname, params: m.params, query: url.searchParams, body, raw: req }, res)
        if (!res.headersSent) sendJson(res, 200, result ?? {})
      } catch (err) {
        const e = err as Error & { code?: string }
        const status = httpStatusOf(err)
        if (status >= 500) log.error('API %s %s failed: %e', req.method, pathname, err)
        else if (status === 401 || status === 403 || status === 415) log('refused %s %s: %s', req.method, pathname, e.code)
        // RFC 6750: a 401 names the scheme the client should use
        const headers: Record<string, string> = status === 401 ? { 'www-authenticate': 'Bearer realm="concur"' } : {}
        if (!res.headersSent) sendJson(res, status, { error: { code: e.code ?? 'ERR_INTERNAL', name: e.name, message: e.message } }, headers)
        else res.end()
      }
    })().catch((err: unknown) => {
      // last resort: no request, however malformed, may take the daemon down
      log.error('API request handling failed: %e', err)
      res.destroy()
    })
  })
  // a local user holding connections open without finishing a request must
  // not tie up the daemon's descriptors for long (Node's defaults: 60 s / 300 s)
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  server.maxConnections = 256
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(`API ${host}:${port}`) : err)
    })
    server.listen(port, '127.0.0.1', () => {
      boundPort = (server.address() as AddressInfo).port
      resolve()
    })
  })
  return {
    address: `127.0.0.1:${boundPort}`,
    server,
    async close () {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
