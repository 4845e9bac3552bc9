import { request } from 'node:http'
import { ApiError, DaemonNotAnsweringError, NoDaemonError } from '../errors.ts'
import { homeLockHolder, processAlive, readApiToken, readDaemonInfo } from '../home.ts'
import type { DaemonInfo } from '../home.ts'

export interface ApiClient {
  info: DaemonInfo
  get<T = unknown> (path: string, options?: { signal?: AbortSignal }): Promise<T>
  post<T = unknown> (path: string, body?: unknown, options?: { signal?: AbortSignal }): Promise<T>
}

async function call<T> (api: string, token: string, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const [host, port] = [api.slice(0, api.lastIndexOf(':')), Number(api.slice(api.lastIndexOf(':') + 1))]
  const data = body === undefined ? undefined : JSON.stringify(body)
  // Host is set by node from host:port (127.0.0.1:PORT), which the daemon requires
  const headers: Record<string, string | number> = { authorization: `Bearer ${token}` }
  if (data != null) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  return await new Promise<T>((resolve, reject) => {
    const req = request({ host, port, method, path, signal, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown
        try {
          parsed = text.length > 0 ? JSON.parse(text) : {}
        } catch {
          reject(new ApiError(`daemon answered ${res.statusCode ?? '?'} with non-JSON`, res.statusCode ?? 0, 'ERR_BAD_JSON'))
          return
        }
        if ((res.statusCode ?? 500) >= 400) {
          const e = (parsed as { error?: { code?: string, message?: string } }).error
          reject(new ApiError(e?.message ?? `HTTP ${res.statusCode ?? '?'}`, res.statusCode ?? 0, e?.code ?? 'ERR_API'))
          return
        }
        resolve(parsed as T)
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (data != null) req.write(data)
    req.end()
  })
}

/** how long the CLI waits for a daemon's first answer (CONCUR_API_TIMEOUT, in seconds, overrides it) */
export const DEFAULT_PROBE_MS = 5000

function probeMs (): number {
  const s = Number(process.env.CONCUR_API_TIMEOUT)
  return Number.isFinite(s) && s > 0 ? s * 1000 : DEFAULT_PROBE_MS
}

/**
 * Connect to the daemon of a home directory: daemon.json (written when it is
 * ready) says where its API is, api.token (readable by the daemon's user only)
 * is the credential sent with every call.
 *
 * When the daemon does not answer, the error says which of three things is
 * true, because each has another remedy: no daemon runs (no daemon.json, or
 * one left by a process that has exited: start one); a daemon is starting
 * (it holds the home's lock, daemon.json is not written yet: wait); a daemon
 * runs but is busy (its process is alive, its API did not answer in time:
 * wait, or allow longer with CONCUR_API_TIMEOUT).
 */
export async function connectApi (home: string): Promise<ApiClient> {
  const info = await readDaemonInfo(home)
  if (info == null || !processAlive(info.pid)) {
    const holder = await homeLockHolder(home)
    if (holder != null) {
      throw new DaemonNotAnsweringError(`the daemon for ${home} (pid ${holder}) is still starting: it has not opened its API yet; try again in a moment`, holder)
    }
    throw new NoDaemonError(home, info == null ? undefined : `its daemon.json names pid ${info.pid}, which has exited without removing it (killed, or crashed)`)
  }
  const token = await readApiToken(home)
  const client: ApiClient = {
    info,
    async get (path, options) { return await call(info.api, token, 'GET', path, undefined, options?.signal) },
    async post (path, body, options) { return await call(info.api, token, 'POST', path, body ?? {}, options?.signal) }
  }
  const waitMs = probeMs()
  try {
    await client.get('/v1/id', { signal: AbortSignal.timeout(waitMs) })
  } catch (err) {
    if (err instanceof ApiError) throw err
    const e = err as NodeJS.ErrnoException
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      throw new DaemonNotAnsweringError(`the daemon for ${home} (pid ${info.pid}, API http://${info.api}) is running but did not answer within ${waitMs / 1000} s: it is busy (e.g. verifying a burst of messages); try again, or wait longer with CONCUR_API_TIMEOUT=SECONDS`, info.pid)
    }
    // the pid is alive but nothing listens where daemon.json says: the
    // daemon that wrote it has exited and its pid now names another process
    throw new NoDaemonError(home, `its daemon.json names pid ${info.pid} and API ${info.api}, but nothing answers there (${e.code ?? e.message}): that daemon has exited`)
  }
  return client
}
