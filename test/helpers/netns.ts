// A test network of separate hosts on one machine, made of Linux network
// namespaces from a small description, and removed again even when a test fails.
//
//   public segment:  one bridge (in a "switch" namespace) joining the public hosts
//                    and the outside ("wan") side of every NAT router
//   NAT segment:     its own bridge inside its router's namespace; the router
//                    masquerades the private subnet onto the public segment and
//                    rejects everything unsolicited from outside (conntrack:
//                    only established/related comes back in)
//   link:            the NAT segment's uplink (router ↔ public segment) with delay,
//                    jitter and loss: `tc netem` where the kernel has sch_netem,
//                    otherwise a userspace TCP relay in the router (delay and jitter,
//                    TCP only, no loss: see netns-tool.ts `forward`)
//
// Every namespace is named concur-<pid>-<n>-<role>: unique per process and
// per network, so parallel test files cannot collide, and sweep() can tell a
// crashed run's leftovers (its pid is dead) from a live one's. Interfaces are
// created directly inside our namespaces (`ip -n NS link add … peer … netns NS2`),
// so their names only have to be unique there and the host's own interfaces,
// routes and addresses are never touched.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface LinkSpec {
  /** added in each direction: a round trip grows by twice this */
  delayMs?: number
  /** each direction's delay is drawn uniformly from delayMs ± jitterMs */
  jitterMs?: number
  /** netem only: the userspace relay cannot drop TCP segments (see TestNetwork.ignored) */
  lossPercent?: number
}

export interface SegmentSpec {
  /** a /24 (a.b.c.0/24); defaults: 100.64.0.0/24 for the public segment, 10.<n>.0.0/24 for NAT segments.
   * concur's dial policy classes 100.64.0.0/10 as private: a daemon that listens
   * on loopback only needs --dial-private to dial the public segment */
  subnet?: string
  /** behind a NAT router of its own; exactly one segment is not (the public one) */
  nat?: boolean
  /** what the router does with unsolicited inbound: 'reject' (default: RST / ICMP, so a test waits on an event) or 'drop' (as most home routers) */
  inbound?: 'reject' | 'drop'
}

export interface NetworkSpec {
  segments: Record<string, SegmentSpec>
  hosts: Record<string, { segment: string }>
  /** keyed by NAT segment: that segment's uplink */
  links?: Record<string, LinkSpec>
  /** 'auto' (default): netem where the kernel has it; 'userspace': the relay even where netem exists */
  linkMode?: 'auto' | 'userspace'
}

export interface Router { ns: string, wan: string, lan: string, subnet: string }

export interface TestNetwork {
  prefix: string
  mode: 'netem' | 'userspace'
  /** link properties that this mode could not apply, one sentence each */
  ignored: string[]
  namespaces: string[]
  nsOf (host: string): string
  /** the host's own address on its segment (private for a NAT'd host) */
  addressOf (host: string): string
  /** the address the public segment sees the host as: its router's for a NAT'd host */
  publicAddressOf (host: string): string
  routerOf (segment: string): Router
  /** start argv inside the host's namespace (a router's too: 'router:SEGMENT'); stdout and
   * stderr are pipes unless opts.stdio says otherwise: read them, or a chatty child blocks.
   * Killed (SIGKILL) on teardown. */
  spawnIn (host: string, argv: string[], opts?: SpawnOptions): ChildProcess
  /** run argv there to its end */
  run (host: string, argv: string[], opts?: { timeoutMs?: number, input?: string }): Promise<{ code: number | null, stdout: string, stderr: string }>
  /** change a NAT segment's uplink (one given in the spec's links) while the network runs,
   * open connections included; returns the properties this mode could not apply (as `ignored`) */
  setLink (segment: string, link: LinkSpec): Promise<string[]>
  teardown (): Promise<void>
}

export const NETNS_TOOL = fileURLToPath(new URL('./netns-tool.ts', import.meta.url))
const NAME_RE = /^concur-(\d+)-(\d+)-/
const FORWARD_PORT = 7999

let counter = 0
/** each live network's synchronous teardown, for the exit hook */
const live = new Map<TestNetwork, () => void>()
let exitHook = false

function ip (args: string[], input?: string): string {
  const r = spawnSync('ip', args, { input, encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`)
  return r.stdout
}

/** argv to run `argv` inside namespace `ns`. Not `ip netns exec`: that also
 * unshares the mount namespace and mounts a fresh /sys for the netns, which
 * hides /sys/fs/cgroup, and a concur worker then refuses to start (no cgroups
 * for its sandbox). nsenter switches the network namespace and nothing else. */
export function inNs (ns: string, argv: string[]): string[] {
  return ['nsenter', `--net=/run/netns/${ns}`, '--', ...argv]
}

function nsExec (ns: string, argv: string[], input?: string): string {
  const [cmd, ...args] = inNs(ns, argv)
  const r = spawnSync(cmd as string, args, { input, encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${ns}: ${r.error?.message ?? r.stderr.trim()}`)
  return r.stdout
}

/** Our namespaces that exist now (names only). */
export function listOurNamespaces (): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) return []
  return r.stdout.split('\n').map(l => l.split(' ')[0] ?? '').filter(n => NAME_RE.test(n))
}

/** Kill what still runs in a namespace (a process keeps its namespace alive
 * after the name is gone) and delete it; returns whether the name is gone. */
function removeNamespace (ns: string): boolean {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 }).stdout ?? ''
  for (const p of pids.split('\n').filter(Boolean)) {
    try { process.kill(Number(p), 'SIGKILL') } catch {}
  }
  return spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 }).status === 0
}

function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Remove namespaces left by earlier runs that crashed (their creating pid is dead). */
export function sweep (): string[] {
  const removed: string[] = []
  for (const ns of listOurNamespaces()) {
    const pid = Number(NAME_RE.exec(ns)?.[1])
    if (pid === process.pid || pidAlive(pid)) continue
    if (removeNamespace(ns)) removed.push(ns)
  }
  return removed
}

let support: { ok: true, netem: boolean } | { ok: false, reason: string } | undefined

/** Whether this machine can make the network (checked once per process): root,
 * `ip` and `nft`, a namespace that can be created, and whether netem exists
 * (tried on the probe namespace's own lo, never on the host's). */
export function netnsSupport (): { ok: true, netem: boolean } | { ok: false, reason: string } {
  if (support != null) return support
  const missing = ['ip', 'nft', 'tc', 'nsenter'].filter(t => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  if (process.getuid?.() !== 0) {
    support = { ok: false, reason: 'network namespaces need root (CAP_SYS_ADMIN); these tests run as root in CI' }
  } else if (!hasSysAdmin()) {
    support = { ok: false, reason: 'root without CAP_SYS_ADMIN (a container that may not make namespaces)' }
  } else if (missing.length > 0) {
    support = { ok: false, reason: `missing ${missing.join(', ')}: apt-get install iproute2 nftables util-linux (as .ci/run does)` }
  } else {
    const probe = `concur-${process.pid}-0-probe`
    const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: 10_000 })
    if (r.status !== 0) {
      support = { ok: false, reason: `cannot create a network namespace: ${r.error?.message ?? r.stderr.trim()}` }
    } else {
      const [cmd, ...args] = inNs(probe, ['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'])
      const netem = spawnSync(cmd as string, args, { timeout: 10_000 }).status === 0
      removeNamespace(probe)
      support = { ok: true, netem }
    }
  }
  return support
}

/** CAP_SYS_ADMIN (bit 21) in our effective set: root in a default container lacks it */
function hasSysAdmin (): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
  return m != null && (BigInt(`0x${m[1] as string}`) & (1n << 21n)) !== 0n
}

/** For a test file: the reason to skip, or null to run. In CI as root (with
 * CAP_SYS_ADMIN) a machine that cannot make namespaces is a failure, not a skip. */
export function netnsSkipReason (): string | null {
  const s = netnsSupport()
  if (s.ok) return null
  if (process.env.CI === 'true' && process.getuid?.() === 0 && hasSysAdmin()) throw new Error(`CI runs as root but the namespace test network cannot be made: ${s.reason}`)
  return `skipped: ${s.reason}`
}

function netemArgs (delay: number, jitter: number, loss: number): string[] {
  return ['netem', 'delay', `${delay}ms`, ...(jitter > 0 ? [`${jitter}ms`] : []), ...(loss > 0 ? ['loss', `${loss}%`] : [])]
}

function subnetBase (subnet: string): string {
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet)
  if (m == null) throw new Error(`subnet ${subnet}: only a.b.c.0/24 is supported`)
  return m[1] as string
}

/** Build the network the description asks for. */
export async function createNetwork (spec: NetworkSpec): Promise<TestNetwork> {
  const s = netnsSupport()
  if (!s.ok) throw new Error(s.reason)
  sweep()
  const prefix = `concur-${process.pid}-${++counter}`
  const mode: TestNetwork['mode'] = s.netem && spec.linkMode !== 'userspace' ? 'netem' : 'userspace'
  const ignored: string[] = []
  const namespaces: string[] = []
  const children = new Set<ChildProcess>()
  const hostNs = new Map<string, string>()
  const hostAddr = new Map<string, string>()
  const routers = new Map<string, Router>()
  /** per linked NAT segment: how to change its uplink later */
  const linkCtl = new Map<string, { relay: JsonLines & { child: ChildProcess } } | { ns: string, dev: string }[]>()
  let linkSets = 0

  const segNames = Object.keys(spec.segments)
  const publics = segNames.filter(n => spec.segments[n]?.nat !== true)
  if (publics.length !== 1) throw new Error(`exactly one segment must be public (not nat), got ${publics.length}`)
  const pubName = publics[0] as string
  const ok = /^[A-Za-z0-9_]{1,32}$/
  for (const n of [...segNames, ...Object.keys(spec.hosts)]) if (!ok.test(n)) throw new Error(`name ${n}: letters, digits and _ only`)
  for (const [h, { segment }] of Object.entries(spec.hosts)) if (spec.segments[segment] == null) throw new Error(`host ${h}: no segment ${segment}`)
  // addresses: public hosts .10–.199, routers' wan side .201–.254, NAT'd hosts .10–.254
  if (segNames.length - 1 > 54) throw new Error('at most 54 NAT segments')
  for (const seg of segNames) {
    const n = Object.values(spec.hosts).filter(h => h.segment === seg).length
    if (n > (seg === pubName ? 190 : 245)) throw new Error(`segment ${seg}: too many hosts for its /24`)
  }
  for (const l of Object.keys(spec.links ?? {})) if (spec.segments[l]?.nat !== true) throw new Error(`link ${l}: links are a NAT segment's uplink`)

  const addNs = (role: string): string => {
    const ns = `${prefix}-${role}`
    ip(['netns', 'add', ns])
    namespaces.push(ns)
    ip(['-n', ns, 'link', 'set', 'lo', 'up'])
    return ns
  }

  const teardownSync = (): void => {
    for (const c of children) if (c.exitCode == null && c.signalCode == null) c.kill('SIGKILL')
    for (const ns of [...namespaces].reverse()) removeNamespace(ns)
    namespaces.length = 0
  }

  const spawnNs = (ns: string, argv: string[], opts: SpawnOptions = {}): ChildProcess => {
    const [cmd, ...args] = inNs(ns, argv)
    const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    children.add(child)
    child.once('exit', () => children.delete(child))
    return child
  }

  const lookupNs = (host: string): string => {
    if (host.startsWith('router:')) {
      const r = routers.get(host.slice('router:'.length))
      if (r == null) throw new Error(`no router for segment ${host}`)
      return r.ns
    }
    const ns = hostNs.get(host)
    if (ns == null) throw new Error(`no host ${host}`)
    return ns
  }

  const net: TestNetwork = {
    prefix,
    mode,
    ignored,
    namespaces,
    nsOf: lookupNs,
    addressOf: (host) => {
      const a = hostAddr.get(host)
      if (a == null) throw new Error(`no host ${host}`)
      return a
    },
    publicAddressOf: (host) => {
      const seg = spec.hosts[host]?.segment
      if (seg == null) throw new Error(`no host ${host}`)
      return seg === pubName ? net.addressOf(host) : net.routerOf(seg).wan
    },
    routerOf: (segment) => {
      const r = routers.get(segment)
      if (r == null) throw new Error(`segment ${segment} has no router`)
      return r
    },
    spawnIn: (host, argv, opts) => spawnNs(lookupNs(host), argv, opts),
    run: async (host, argv, opts = {}) => {
      const child = spawnNs(lookupNs(host), argv, { stdio: [opts.input == null ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
      if (opts.input != null) child.stdin?.end(opts.input)
      let stdout = ''
      let stderr = ''
      child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
      child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
      const timeoutMs = opts.timeoutMs ?? 60_000
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
      clearTimeout(timer)
      return { code, stdout, stderr }
    },
    setLink: async (segment, link) => {
      const ctl = linkCtl.get(segment)
      if (ctl == null) throw new Error(`segment ${segment} has no link to change (give it one in the spec's links)`)
      const delay = link.delayMs ?? 0
      const jitter = link.jitterMs ?? 0
      const loss = link.lossPercent ?? 0
      if (Array.isArray(ctl)) {
        for (const { ns, dev } of ctl) nsExec(ns, ['tc', 'qdisc', 'change', 'dev', dev, 'root', ...netemArgs(delay, jitter, loss)])
        return []
      }
      const set = ++linkSets
      ctl.relay.child.stdin?.write(JSON.stringify({ set, delay, jitter }) + '\n')
      await ctl.relay.until('set', `${segment}'s link relay taking the new delay`, 10_000, d => d.set === set)
      return loss > 0 ? [`${segment}: lossPercent ${loss} not applied (no sch_netem; the userspace relay only delays)`] : []
    },
    teardown: async () => {
      live.delete(net)
      teardownSync()
    }
  }
  // the exit hook tears down what afterAll did not reach (a crash in a hook,
  // process.exit); a SIGKILLed run is left to the next run's sweep()
  live.set(net, teardownSync)
  if (!exitHook) {
    exitHook = true
    process.on('exit', () => { for (const t of live.values()) t() })
  }

  try {
    const pubBase = subnetBase(spec.segments[pubName]?.subnet ?? '100.64.0.0/24')
    const sw = addNs('sw')
    ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge'])
    ip(['-n', sw, 'link', 'set', 'br0', 'up'])
    let port = 0
    /** a veth from the bridge in `bridgeNs` to `ns`, named `name` there; returns the bridge port's name */
    const plug = (bridgeNs: string, ns: string, name: string): string => {
      const p = `p${port++}`
      ip(['-n', bridgeNs, 'link', 'add', p, 'type', 'veth', 'peer', 'name', name, 'netns', ns])
      ip(['-n', bridgeNs, 'link', 'set', p, 'master', 'br0', 'up'])
      ip(['-n', ns, 'link', 'set', name, 'up'])
      return p
    }

    let pubHost = 10
    for (const [name, h] of Object.entries(spec.hosts)) {
      if (h.segment !== pubName) continue
      const ns = addNs(`h-${name}`)
      plug(sw, ns, 'eth0')
      const addr = `${pubBase}.${pubHost++}`
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0'])
      hostNs.set(name, ns)
      hostAddr.set(name, addr)
    }

    let natIndex = 0
    for (const [seg, segSpec] of Object.entries(spec.segments)) {
      if (segSpec.nat !== true) continue
      natIndex++
      const base = subnetBase(segSpec.subnet ?? `10.${natIndex}.0.0/24`)
      const r = addNs(`r-${seg}`)
      const wan = `${pubBase}.${200 + natIndex}`
      const lan = `${base}.1`
      routers.set(seg, { ns: r, wan, lan, subnet: `${base}.0/24` })
      const wanPort = plug(sw, r, 'wan')
      ip(['-n', r, 'addr', 'add', `${wan}/24`, 'dev', 'wan'])
      ip(['-n', r, 'link', 'add', 'br0', 'type', 'bridge'])
      ip(['-n', r, 'addr', 'add', `${lan}/24`, 'dev', 'br0'])
      ip(['-n', r, 'link', 'set', 'br0', 'up'])
      nsExec(r, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
      let hostNo = 10
      for (const [name, h] of Object.entries(spec.hosts)) {
        if (h.segment !== seg) continue
        const ns = addNs(`h-${name}`)
        plug(r, ns, 'eth0')
        const addr = `${base}.${hostNo++}`
        ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0'])
        ip(['-n', ns, 'route', 'add', 'default', 'via', lan])
        hostNs.set(name, ns)
        hostAddr.set(name, addr)
      }

      const link = spec.links?.[seg]
      const delay = link?.delayMs ?? 0
      const jitter = link?.jitterMs ?? 0
      const loss = link?.lossPercent ?? 0
      const relay = link != null && mode === 'userspace'
      if (relay && loss > 0) ignored.push(`${seg}: lossPercent ${loss} not applied (no sch_netem; the userspace relay only delays)`)
      const unsolicited = segSpec.inbound === 'drop' ? 'drop' : 'meta l4proto tcp reject with tcp reset\n      reject with icmp type admin-prohibited'
      nsExec(r, ['nft', '-f', '-'], `
table ip concur {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ${relay ? `iifname "br0" ip daddr ${pubBase}.0/24 meta l4proto tcp redirect to :${FORWARD_PORT}` : ''}
  }
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr ${base}.0/24 masquerade
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lo" accept
    ct state established,related accept
    iifname "br0" accept
    ${unsolicited}
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    iifname "br0" oifname "wan" accept
    ${unsolicited}
  }
}
`)
      if (link != null && mode === 'netem') {
        // netem shapes egress only: both ends of the uplink, one direction each
        const netem = netemArgs(delay, jitter, loss)
        nsExec(r, ['tc', 'qdisc', 'add', 'dev', 'wan', 'root', ...netem])
        nsExec(sw, ['tc', 'qdisc', 'add', 'dev', wanPort, 'root', ...netem])
        linkCtl.set(seg, [{ ns: r, dev: 'wan' }, { ns: sw, dev: wanPort }])
      }
      if (relay) {
        // stdin open: setLink() tells the relay a new delay
        const fwd = spawnNs(r, [process.execPath, NETNS_TOOL, 'forward', `listen=${lan}:${FORWARD_PORT}`, `delay=${delay}`, `jitter=${jitter}`], { stdio: ['pipe', 'pipe', 'pipe'] })
        const lines = jsonLines(fwd)
        await lines.until('listening', `${seg}'s link relay`)
        linkCtl.set(seg, { relay: Object.assign(lines, { child: fwd }) })
      }
    }
    if (ignored.length > 0) process.stderr.write(`netns: ${ignored.join('; ')}\n`)
    return net
  } catch (e) {
    await net.teardown()
    throw e
  }
}

/** The JSON documents a child prints on stdout, one a line, and a way to wait
 * for one: a process tells us it is ready (or what it saw) instead of us sleeping. */
export interface JsonLines {
  docs: Array<Record<string, unknown>>
  /** the first document (already printed or still to come) that has `key` (and passes `match`);
   * rejects when the child exits first or timeoutMs passes */
  until<T = Record<string, unknown>> (key: string, what: string, timeoutMs?: number, match?: (doc: Record<string, unknown>) => boolean): Promise<T>
}

export function jsonLines (child: ChildProcess): JsonLines {
  const docs: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  let buf = ''
  let err = ''
  let exited: number | string | null = null
  child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  child.stdout?.on('data', (c: Buffer) => {
    buf += c.toString()
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try { docs.push(JSON.parse(line) as Record<string, unknown>) } catch {}
    }
    for (const w of [...waiters]) w()
  })
  child.once('close', (code, signal) => {
    exited = code ?? signal
    for (const w of [...waiters]) w()
  })
  return {
    docs,
    until: async <T>(key: string, what: string, timeoutMs = 30_000, match?: (doc: Record<string, unknown>) => boolean): Promise<T> => await new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const doc = docs.find(d => key in d && (match == null || match(d)))
        if (doc != null) { finish(); resolve(doc as T) } else if (exited != null) { finish(); reject(new Error(`${what} exited (${exited}) before printing ${key}: ${err}`)) }
      }
      const timer = setTimeout(() => { finish(); reject(new Error(`${what}: no ${key} within ${timeoutMs} ms: ${err}`)) }, timeoutMs)
      const finish = (): void => { clearTimeout(timer); waiters.delete(check) }
      waiters.add(check)
      check()
    })
  }
}
