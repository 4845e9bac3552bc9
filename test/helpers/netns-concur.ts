/**
 * concur daemons and commands inside the namespace test network
 * (test/helpers/netns.ts): each host runs its daemon with its API on its own
 * namespace's loopback, and the CLI is run in the same namespace.
 */
import type { ChildProcess } from 'node:child_process'
import type { TestNetwork } from './netns.ts'
import { CONCUR_BIN, tempDir } from './processes.ts'

export interface NsDaemon { host: string, home: string, child: ChildProcess, did: string, peerId: string, multiaddrs: string[], api: string, stderr: () => string }

/** The daemon's ready document (pretty-printed JSON on stdout); bounded by the child's exit. */
async function ready (child: ChildProcess, what: string): Promise<{ did: string, peerId: string, multiaddrs: string[], api: string }> {
  return await new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const start = out.indexOf('{')
      for (let end = out.indexOf('\n}', start); start !== -1 && end !== -1; end = out.indexOf('\n}', end + 1)) {
        try { resolve(JSON.parse(out.slice(start, end + 2)) as { did: string, peerId: string, multiaddrs: string[], api: string }); return } catch {}
      }
    })
    child.once('exit', (code) => { reject(new Error(`${what} exited (${code ?? 'signal'}) before it was ready: ${out}${err}`)) })
  })
}

/** Start `concur ARGS` (daemon or bootstrap) on `host`, listening on all its interfaces at port 4001;
 * in a new home, or in `opts.home` (a restart: same key, so same peer id). */
export async function startIn (net: TestNetwork, host: string, args: string[], opts: { home?: string } = {}): Promise<NsDaemon> {
  const home = opts.home ?? await tempDir(`concur-ns-${host}-`)
  const child = net.spawnIn(host, [process.execPath, CONCUR_BIN, ...args, '--listen', '/ip4/0.0.0.0/tcp/4001', '--api', '127.0.0.1:0', '--home', home, '--json'], process.env.NS_DEBUG != null ? { env: { ...process.env, DEBUG: process.env.NS_DEBUG } } : {})
  let err = ''
  child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  const r = await ready(child, `${args[0] ?? 'concur'} on ${host}`)
  return { host, home, child, ...r, stderr: () => err }
}

/** Stop a daemon with `signal` and wait until its process has exited (SIGKILL: no shutdown at all, as a crash) */
export async function stopIn (d: NsDaemon, signal: NodeJS.Signals): Promise<void> {
  if (d.child.exitCode != null || d.child.signalCode != null) return
  const exited = new Promise<void>((resolve) => d.child.once('exit', () => { resolve() }))
  d.child.kill(signal)
  await exited
}

/** Run `concur ARGS` on `host` against the daemon of `home`; its JSON output parsed. */
export async function concurIn<T = unknown> (net: TestNetwork, host: string, home: string, args: string[], timeoutMs = 60_000): Promise<{ code: number | null, json: T, stderr: string }> {
  const dash = args.indexOf('--')
  const own = dash === -1 ? args : args.slice(0, dash)
  const rest = dash === -1 ? [] : args.slice(dash)
  const r = await net.run(host, [process.execPath, CONCUR_BIN, ...own, '--home', home, '--json', ...rest], { timeoutMs })
  let json: T
  try { json = JSON.parse(r.stdout) as T } catch { json = undefined as T }
  return { code: r.code, json, stderr: r.stderr }
}

/** GET `path` of the daemon of `home` on `host` (from inside its namespace, with its token) */
export async function apiIn<T = unknown> (net: TestNetwork, host: string, home: string, path: string): Promise<T> {
  const script = `const fs = require('node:fs'); const h = ${JSON.stringify(home)};
    const info = JSON.parse(fs.readFileSync(h + '/daemon.json', 'utf8')); const token = fs.readFileSync(h + '/api.token', 'utf8').trim();
    fetch('http://' + info.api + ${JSON.stringify(path)}, { headers: { authorization: 'Bearer ' + token } }).then(r => r.text()).then(t => process.stdout.write(t))`
  const r = await net.run(host, [process.execPath, '-e', script], { timeoutMs: 20_000 })
  if (r.code !== 0) throw new Error(`GET ${path} on ${host}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
