import { resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { initHome, loadIdentity, resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { ApiClient } from '../api/client.ts'
import { output, progress } from '../cli.ts'
import type { Command } from '../cli.ts'
import { UsageError } from '../errors.ts'
import { terminalSafe } from '../../src/text/terminal-safe.ts'
import { oneLine } from '../render/request.ts'
import type { AddResponse, EventsResponse } from '../api/types.ts'
import { StatusLine, fetchProgressLine } from '../render/fetch-progress.ts'
import { WORKER_ACTIVITY, workerActivity } from '../render/worker-activity.ts'
import { LOG_HELP, LOG_OPTIONS, LOG_USAGE, eventLogger, logOptions } from '../daemon-log.ts'
import type { LogOptions } from '../daemon-log.ts'
// the daemon (libp2p, helia, sandbox) is loaded only by the commands that run
// one: every other command talks to a daemon over HTTP and starts ~3x faster
import { WORKER_ADMISSION_HELP, WORKER_OPTIONS, parseBytes } from '../worker-options.ts'
import type { RunningDaemon } from '../daemon.ts'
import { SHARD_COUNT } from '../../protocol/index.ts'

/** Keep a process alive until SIGINT/SIGTERM, then stop cleanly. */
export async function runUntilSignal (daemon: { stop: () => Promise<void> }): Promise<number> {
  // A long-running node handles bytes from anyone: a dependency that drops a
  // rejected promise on a hostile input must not end it (Node's default for
  // an unhandled rejection is to exit). Logged as the bug it is.
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`concur: unhandled rejection (a bug, please report it): ${terminalSafe(String((reason as Error)?.stack ?? reason))}\n`)
  })
  return await new Promise<number>((resolvePromise) => {
    let stopping = false
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return
      stopping = true
      process.stderr.write(`received ${sig}, stopping\n`)
      const force = setTimeout(() => { resolvePromise(1) }, 10_000)
      force.unref()
      daemon.stop().then(() => { clearTimeout(force); resolvePromise(0) }, (err: Error) => {
        process.stderr.write(`error while stopping: ${err.message}\n`)
        resolvePromise(1)
      })
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    // a closed terminal: stop cleanly too, so daemon.json does not outlive the daemon
    process.once('SIGHUP', onSignal)
  })
}

export const initCommand: Command = {
  name: 'init',
  summary: 'create keys and config in the home directory; print the did:key and peer id',
  usage: 'concur init [--home DIR] [--json]',
  options: {},
  async run ({ global }) {
    const home = resolveHome(global.home)
    const r = await initHome(home)
    output(global, { home, did: r.signing.did, peerId: r.peerId, created: r.created }, () =>
      `${r.created ? 'initialised' : 'already initialised'} ${home}\ndid:key  ${r.signing.did}\npeer id  ${r.peerId}`)
    return 0
  }
}

export const idCommand: Command = {
  name: 'id',
  summary: 'print this node\'s did:key and peer id',
  usage: 'concur id [--home DIR] [--json]',
  options: {},
  async run ({ global }) {
    const home = resolveHome(global.home)
    const id = await loadIdentity(home)
    output(global, { did: id.signing.did, peerId: id.peerId }, () => `did:key  ${id.signing.did}\npeer id  ${id.peerId}`)
    return 0
  }
}

export function printReady (global: { json: boolean }, role: string, d: RunningDaemon): void {
  const addrs = d.peer.libp2p.getMultiaddrs().map(String)
  output(global, { role, did: d.identity.signing.did, peerId: d.identity.peerId, multiaddrs: addrs, api: d.api.address }, () => [
    `concur ${role} running`,
    `did:key  ${d.identity.signing.did}`,
    `peer id  ${d.identity.peerId}`,
    'listening on:',
    ...addrs.map(a => `  ${a}`),
    `api      http://${d.api.address} (127.0.0.1 only)`
  ].join('\n'))
}

function relayMode (v: unknown): 'auto' | 'on' | 'off' {
  if (v == null || v === 'auto' || v === 'on' || v === 'off') return (v ?? 'auto') as 'auto' | 'on' | 'off'
  throw new UsageError(`--relay takes auto, on or off, not ${JSON.stringify(v)}`)
}

/**
 * `--shards LIST`: the shards whose topics the daemon subscribes to
 * (PROTOCOL.md §6.1): `all` (the default), `none`, or hex digits, comma-separated
 * (`0,1,a`) or as ranges (`0-7`). Every node also reads the unsharded topics.
 */
export function parseShards (v: unknown): number[] | undefined {
  if (v == null || v === 'all') return undefined
  // none: the unsharded topics only, as a node that predates shards
  if (v === 'none') return []
  const out = new Set<number>()
  for (const part of String(v).split(',').map(p => p.trim().toLowerCase())) {
    const m = /^([0-9a-f])(?:-([0-9a-f]))?$/.exec(part)
    const from = m?.[1] != null ? Number.parseInt(m[1], 16) : Number.NaN
    const to = m?.[2] != null ? Number.parseInt(m[2], 16) : from
    if (m == null || from >= SHARD_COUNT || to >= SHARD_COUNT || to < from) throw new UsageError(`--shards takes all, none, or hex digits 0-${(SHARD_COUNT - 1).toString(16)} such as 0,1,a or 0-7 (got ${JSON.stringify(v)})`)
    for (let s = from; s <= to; s++) out.add(s)
  }
  return [...out].sort((a, b) => a - b)
}

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run a peer (optionally a worker) with a local API on 127.0.0.1',
  usage: `concur daemon [--listen MA]… [--bootstrap MA]… [--dial-private] [--relay auto|on|off] [--shards all|none|0-7,a…] [--store-max SIZE (default 16G)] [--worker [--max-concurrent N] [--memory 1G] [--cpus N] [--disk 512M] [--wall S] [--processes N] [--serve DID]… [--max-per-requester N] [--max-per-requester-hour N] [--environments host,rootfs] [--min-tier T] [--allow-weak-sandbox] [--max-input-bytes 1G] [--max-input-entries 100000] [--max-input-dir-bytes 64M] [--fetch-timeout S] [--env-cache SIZE] [--rebuild-for DID]… [--sample P] [--rebuild-only] [--recheck-after S] [--recheck-window S]] [--api HOST:PORT] ${LOG_USAGE} [--home DIR] [--json]`,
  options: {
    listen: { type: 'string', multiple: true },
    bootstrap: { type: 'string', multiple: true },
    worker: { type: 'boolean', default: false },
    api: { type: 'string' },
    ...WORKER_OPTIONS,
    'no-init': { type: 'boolean', default: false },
    // the block store's quota: over it, unpinned blocks are collected
    'store-max': { type: 'string' },
    // peers announce addresses; a daemon dials loopback/private ones only where it listens, unless this is set
    'dial-private': { type: 'boolean', default: false },
    // behind NAT: reachable through the bootstrap node's relay (auto: when listening on private or all interfaces, none public)
    relay: { type: 'string' },
    // the shards whose topics this node reads (PROTOCOL.md §6.1): all, none, or a list of hex digits
    shards: { type: 'string' },
    'enable-test-routes': { type: 'boolean', default: false },
    ...LOG_OPTIONS
  },
  notes: [
    WORKER_ADMISSION_HELP,
    '',
    LOG_HELP,
    '',
    'for tests only (never on a node you run for real):',
    '  --enable-test-routes  also serve POST /v1/gossip/publish-raw, which puts unvalidated bytes',
    '                        on gossip (how the adversary tests play a hostile peer)'
  ].join('\n'),
  async run ({ values, global }) {
    const home = resolveHome(global.home)
    // a fresh home with no flags just works: create keys and config on first start
    if (values['no-init'] !== true) await initHome(home)
    // a rebuilder is a worker that also spot-checks jobs others already built
    const isWorker = values.worker === true || values['rebuild-for'] != null || values.sample != null
    const log = logOptions(values)
    const { startDaemon } = await import('../daemon.ts')
    const d = await startDaemon({
      home,
      listen: values.listen as string[] | undefined,
      bootstrap: values.bootstrap as string[] | undefined,
      api: values.api as string | undefined,
      ...(isWorker ? { worker: values } : {}),
      testRoutes: values['enable-test-routes'] === true,
      dialPrivate: values['dial-private'] === true,
      relay: relayMode(values.relay),
      ...(values.shards != null ? { shards: parseShards(values.shards) } : {}),
      ...(typeof values['store-max'] === 'string' ? { storeMaxBytes: parseBytes(values['store-max'], 'store-max') } : {})
    })
    printReady(global, isWorker ? 'worker daemon' : 'daemon', d)
    // a volunteer at the terminal sees what the worker does, fetches' progress included
    const status = new StatusLine()
    const activity = isWorker && !global.json && log.format === 'text' && status.enabled
    if (activity) d.events.listen(workerActivity(status, line => { progress(global, line) }))
    listenForLog(d, log, status, activity)
    if (values['enable-test-routes'] === true) progress(global, 'warning: --enable-test-routes: POST /v1/gossip/publish-raw is served (for tests only)')
    return await runUntilSignal(d)
  }
}

/**
 * The daemon's log on stderr (LOG_HELP): every event but those the worker's
 * terminal activity already shows, when it does; below a fetch's status line.
 */
function listenForLog (d: RunningDaemon, log: LogOptions, status: StatusLine, activity: boolean): void {
  d.events.listen(eventLogger(log, (line) => {
    status.end()
    process.stderr.write(`${line}\n`)
  }, activity ? e => WORKER_ACTIVITY.has(e.type) : undefined))
}

export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'run a bootstrap / circuit-relay node and print its dialable multiaddrs',
  usage: `concur bootstrap [--listen MA]… [--api HOST:PORT] ${LOG_USAGE} [--home DIR] [--json]`,
  options: {
    listen: { type: 'string', multiple: true },
    api: { type: 'string' },
    ...LOG_OPTIONS
  },
  notes: LOG_HELP,
  async run ({ values, global }) {
    const log = logOptions(values)
    const home = global.home != null ? resolveHome(global.home) : resolve(resolveHome(), 'bootstrap')
    await initHome(home)
    const { startDaemon } = await import('../daemon.ts')
    const d = await startDaemon({
      home,
      listen: (values.listen as string[] | undefined) ?? ['/ip4/127.0.0.1/tcp/4001'],
      bootstrap: [],
      api: values.api as string | undefined,
      bootstrapNode: true
    })
    printReady(global, 'bootstrap node', d)
    if (!global.json) progress(global, 'give daemons one of these with --bootstrap, or list it in bootstrap/peers.json')
    listenForLog(d, log, new StatusLine(), false)
    return await runUntilSignal(d)
  }
}

export const peersCommand: Command = {
  name: 'peers',
  summary: 'list the daemon\'s connections and gossip subscribers',
  usage: 'concur peers [--home DIR] [--json]',
  options: {},
  async run ({ global }) {
    const api = await connectApi(resolveHome(global.home))
    const r = await api.get<{ peers: Array<{ peerId: string, addr: string }>, subscribers: { jobs: string[] } }>('/v1/peers')
    output(global, r, () => r.peers.map(p => `${p.peerId}  ${p.addr}`).join('\n') || '(no peers)')
    return 0
  }
}

export const addCommand: Command = {
  name: 'add',
  summary: 'add a directory to the store (unixfs-v1-2025 profile), pin it and print its CID',
  usage: 'concur add DIR [--skip-special] [--home DIR] [--json]',
  notes: '  --skip-special  leave devices, sockets and FIFOs out (counted, the first few named) instead of refusing the\n                  tree: what a root filesystem made with mmdebstrap has in /dev, which the sandbox provides itself',
  options: {
    'skip-special': { type: 'boolean', default: false }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [dir] = positionals
    if (dir == null) throw new UsageError('concur add needs a directory')
    const path = resolve(dir)
    if (!existsSync(path)) throw new UsageError(`no such directory: ${path}`)
    const api = await connectApi(resolveHome(global.home))
    const r = await api.post<AddResponse>('/v1/content/add', { path, skipSpecial: values['skip-special'] === true })
    output(global, r, () => r.skippedSpecial.count > 0
      ? `${r.cid}\n(left out ${r.skippedSpecial.count} special file(s): ${r.skippedSpecial.paths.map(p => oneLine(p)).join(', ')}${r.skippedSpecial.count > r.skippedSpecial.paths.length ? ', …' : ''})`
      : r.cid)
    return 0
  }
}

/**
 * Long-polls the feed for the progress events of one fetch (its id is sent
 * with the request) and shows each on `status`. `stop(true)` waits for the
 * fetch's last report (the feed holds it before the request answers), so the
 * line ends on the whole fetch's figures.
 */
function followFetch (api: ApiClient, status: StatusLine): { id: string, stop: (complete: boolean) => Promise<void> } {
  const id = randomUUID()
  const ac = new AbortController()
  let sawDone = false
  const loop = (async () => {
    // the feed's newest seq first: this fetch's events all come after it
    let after = (await api.get<EventsResponse>(`/v1/events?after=0&wait=0&progress=${id}`, { signal: ac.signal })).last
    while (!ac.signal.aborted && !sawDone) {
      const ev = await api.get<EventsResponse>(`/v1/events?after=${after}&wait=25000&progress=${id}`, { signal: ac.signal })
      for (const { seq, event } of ev.events) {
        after = Math.max(after, seq)
        if (event.type !== 'content:progress') continue
        status.update(`fetching: ${fetchProgressLine(event)}`)
        if (event.done) sawDone = true
      }
      after = Math.max(after, ev.last)
    }
  })().catch(() => { /* the display is best effort: the fetch's own answer says how it went */ })
  let stopped = false
  return {
    id,
    async stop (complete) {
      if (stopped) return
      stopped = true
      // the last report is emitted before the route answers: one more poll finds it
      if (!complete) ac.abort()
      await Promise.race([loop, new Promise(resolve => setTimeout(resolve, 2000).unref())])
      ac.abort()
      await loop
      status.end()
    }
  }
}

export const getCommand: Command = {
  name: 'get',
  summary: 'fetch a CID from the network into a directory, verified block by block',
  usage: 'concur get CID -o DIR [--max-bytes SIZE (default 1G)] [--max-entries N (default 100000)] [--max-dir-bytes SIZE (default 64M)] [--timeout S] [--force] [--home DIR] [--json]',
  options: {
    output: { type: 'string', short: 'o' },
    // caps of the fetch: file bytes, entries created, DAG-structure bytes read
    'max-bytes': { type: 'string' },
    'max-entries': { type: 'string' },
    'max-dir-bytes': { type: 'string' },
    timeout: { type: 'string' },
    force: { type: 'boolean', default: false }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [cid] = positionals
    if (cid == null || values.output == null) throw new UsageError('usage: concur get CID -o DIR')
    const api = await connectApi(resolveHome(global.home))
    const timeoutMs = values.timeout != null ? Number(values.timeout) * 1000 : 60_000
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout takes seconds')
    const maxBytes = values['max-bytes'] != null ? parseBytes(values['max-bytes'] as string, 'max-bytes') : undefined
    const maxDirectoryBytes = values['max-dir-bytes'] != null ? parseBytes(values['max-dir-bytes'] as string, 'max-dir-bytes') : undefined
    const maxEntries = values['max-entries'] != null ? Number(values['max-entries']) : undefined
    if (maxEntries !== undefined && !(Number.isSafeInteger(maxEntries) && maxEntries > 0)) throw new UsageError('--max-entries takes a positive whole number')
    progress(global, `fetching ${cid} …`)
    // on a terminal, the fetch's progress from the daemon's event feed, on one line
    const status = new StatusLine()
    const follow = !global.json && status.enabled ? followFetch(api, status) : undefined
    try {
      // --force replaces DIR only once the whole tree is fetched: a failed fetch leaves it as it was
      const r = await api.post<Record<string, unknown> & { bytes?: number }>('/v1/content/get', {
        cid, out: resolve(values.output as string), timeoutMs, maxBytes, maxEntries, maxDirectoryBytes, overwrite: values.force === true,
        ...(follow != null ? { progressId: follow.id } : {})
      })
      await follow?.stop(true)
      output(global, r, () => `${cid} → ${resolve(values.output as string)}`)
    } finally {
      await follow?.stop(false)
    }
    return 0
  }
}
