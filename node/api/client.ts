import { request } from 'node:http'
import { ApiError, NoDaemonError } from '../errors.ts'
import { readApiToken, readDaemonInfo } from '../home.ts'
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

/**
 * Connect to the daemon of a home directory: daemon.json (written when it is
 * ready) says where its API is, api.token (readable by the daemon's user only)
 * is the credential sent with every call.
 */
export async function connectApi (home: string): Promise<ApiClient> {
  const info = await readDaemonInfo(home)
  if (info == null) throw new NoDaemonError(home)
  const token = await readApiToken(home)
  const client: ApiClient = {
    info,
    async get (path, options) { return await call(info.api, token, 'GET', path, undefined, options?.signal) },
    async post (path, body, options) { return await call(info.api, token, 'POST', path, body ?? {}, options?.signal) }
  }
  try {
    await client.get('/v1/id', { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    if (err instanceof ApiError) throw err
    // daemon.json left behind by a daemon that died (SIGKILL leaves it)
    throw new NoDaemonError(home)
  }
  return client
}
