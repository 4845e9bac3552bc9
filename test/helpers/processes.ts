import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CONCUR_BIN = fileURLToPath(new URL('../../node/bin/concur.ts', import.meta.url))

export interface ConcurProcess {
  child: ChildProcess
  home: string
  stdout: () => string
  stderr: () => string
  /** the first JSON document the command printed (daemons print their ready document) */
  ready: Promise<Record<string, unknown>>
  exited: Promise<number | null>
  kill (signal?: NodeJS.Signals): Promise<void>
}

const live = new Set<ConcurProcess>()
const temps = new Set<string>()
/** API address → home of the daemon serving it, learnt from each ready document */
const apiHomes = new Map<string, string>()

export async function tempDir (prefix = 'concur-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  temps.add(dir)
  return dir
}

/** Run `concur …` as a separate OS process under the same Node runtime as the tests. */
export function startConcur (args: string[], opts: {
  home: string
  env?: Record<string, string>
  umask?: string
  /** false: the human output, as a person at a terminal sees it */
  json?: boolean
  /** run in a mount namespace of its own (root), after these shell commands: another "machine" (e.g. another /etc/hostname bound over the host's) */
  mountNs?: string
}): ConcurProcess {
  // global flags go before a `--` (after it comes the build command)
  const dash = args.indexOf('--')
  const own = dash === -1 ? args : args.slice(0, dash)
  const after = dash === -1 ? [] : args.slice(dash)
  const argv = [CONCUR_BIN, ...own, '--home', opts.home, ...(opts.json === false ? [] : ['--json']), ...after]
  // a umask can only be set by the parent shell: run through sh when asked
  const [cmd, cmdArgs] = opts.mountNs != null
    ? ['unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', `${opts.mountNs} && exec "$0" "$@"`, process.execPath, ...argv]]
    : opts.umask == null
      ? [process.execPath, argv]
      : ['/bin/sh', ['-c', `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, ...argv]]
  const child = spawn(cmd, cmdArgs, {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  let resolveReady: (v: Record<string, unknown>) => void = () => {}
  let rejectReady: (e: Error) => void = () => {}
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => { resolveReady = resolve; rejectReady = reject })
  ready.catch(() => {})
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
    // the ready document is pretty-printed JSON: try to parse what we have
    const start = out.indexOf('{')
    if (start === -1) return
    for (let end = out.indexOf('\n}', start); end !== -1; end = out.indexOf('\n}', end + 1)) {
      try {
        const doc = JSON.parse(out.slice(start, end + 2)) as Record<string, unknown>
        // before anyone awaiting `ready` can call the API: api() finds the token through it
        if (typeof doc.api === 'string') apiHomes.set(doc.api, opts.home)
        resolveReady(doc)
        return
      } catch { /* not complete yet */ }
    }
  })
  child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      rejectReady(new Error(`concur ${args.join(' ')} exited with ${code ?? 'signal'} before it was ready:\n${err}`))
      resolve(code)
    })
  })
  const proc: ConcurProcess = {
    child,
    home: opts.home,
    stdout: () => out,
    stderr: () => err,
    ready,
    exited,
    async kill (signal = 'SIGTERM') {
      if (child.exitCode == null && child.signalCode == null) {
        child.kill(signal)
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(t)
      }
      live.delete(proc)
    }
  }
  live.add(proc)
  return proc
}

/** Run a short `concur …` command to completion. */
export async function runConcur (args: string[], opts: { home: string, env?: Record<string, string>, timeoutMs?: number, json?: boolean, mountNs?: string }): Promise<{ code: number | null, stdout: string, stderr: string, json: () => unknown }> {
  const p = startConcur(args, opts)
  const t = setTimeout(() => p.child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
  const code = await p.exited
  clearTimeout(t)
  live.delete(p)
  const stdout = p.stdout()
  return { code, stdout, stderr: p.stderr(), json: () => JSON.parse(stdout) }
}

export async function cleanupAll (): Promise<void> {
  await Promise.all([...live].map(async p => { await p.kill() }))
  await Promise.all([...temps].map(async d => { await rm(d, { recursive: true, force: true }) }))
  temps.clear()
}

/** Poll until `fn` returns a truthy value; bounded by `timeoutMs` (a guard, not a measured threshold). */
export async function waitFor<T> (fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v != null && v !== false) return v
    } catch (err) {
      lastErr = err
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`timed out waiting for ${what}${lastErr != null ? `: ${String(lastErr)}` : ''}`)
}

/**
 * The headers the daemon at `address` requires (its token, read from its home
 * as the owner's CLI does): for tests that call fetch themselves.
 */
export function apiHeaders (address: string, method: 'GET' | 'POST' = 'GET'): Record<string, string> {
  const home = apiHomes.get(address)
  if (home == null) throw new Error(`no daemon started by this test process serves its API on ${address}`)
  const token = readFileSync(join(home, 'api.token'), 'utf8').trim()
  return { authorization: `Bearer ${token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }
}

/** Tiny client for a daemon's local API, authenticated as the daemon's owner. */
export async function api<T = Record<string, unknown>> (address: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://${address}${path}`, {
    method,
    headers: apiHeaders(address, method),
    // every POST is JSON, even an empty one: the daemon refuses anything else
    body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined
  })
  const json = await res.json() as T & { error?: { message: string } }
  if (!res.ok) throw new Error(`API ${path}: ${res.status} ${json.error?.message ?? ''}`)
  return json
}
