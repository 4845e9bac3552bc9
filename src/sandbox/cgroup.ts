/**
 * Per-build cgroups: cgroup v2 where it is delegated to us with the memory,
 * pids and cpu controllers, else cgroup v1 (memory + pids + cpu, plus freezer
 * for killing), which is what hosts without systemd (like the CI machines)
 * have. On hybrid hosts a v2 group without controllers is still joined,
 * only for its `cgroup.kill`.
 */
import { readFile, writeFile, mkdir, rmdir, access, constants } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CgroupError } from './errors.ts'
import type { SandboxLimits } from './types.ts'

export interface CgroupBackendV2 {
  kind: 'v2'
  /** a directory whose cgroup.subtree_control enables memory, pids and cpu */
  parent: string
}

export interface CgroupBackendV1 {
  kind: 'v1'
  parents: { memory: string, pids: string, cpu: string, freezer?: string }
  /** hybrid hosts: a cgroup2 directory (no controllers) used only for cgroup.kill */
  unifiedParent?: string
}

export type CgroupBackend = CgroupBackendV2 | CgroupBackendV1

export interface FindCgroupBackendOptions {
  /**
   * Parent directory for build cgroups. v2: a delegated cgroup directory.
   * v1: ignored per controller unless it is a name (no slash), then used as
   * the subdirectory of each controller's mount. Default v1: `concur` at each
   * controller's top (the worker's own group may belong to a supervisor that
   * expects no children).
   */
  cgroupParent?: string
  /** when false, the v2 branch never moves this process into a leaf cgroup */
  allowSelfMove?: boolean
}

interface Mount { mountPoint: string, root: string, fsType: string, superOptions: string[] }

const V1_REQUIRED = ['memory', 'pids', 'cpu'] as const

async function readText (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return undefined
  }
}

async function exists (path: string): Promise<boolean> {
  try {
    await access(path, constants.F_OK)
    return true
  } catch {
    return false
  }
}

function unescapeMount (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

async function readMounts (): Promise<Mount[]> {
  const text = await readText('/proc/self/mountinfo') ?? ''
  const out: Mount[] = []
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ')
    if (dash < 0) continue
    const pre = line.slice(0, dash).split(' ')
    const post = line.slice(dash + 3).split(' ')
    const root = pre[3]
    const mountPoint = pre[4]
    const fsType = post[0]
    if (root == null || mountPoint == null || fsType == null) continue
    out.push({ root: unescapeMount(root), mountPoint: unescapeMount(mountPoint), fsType, superOptions: (post[2] ?? '').split(',') })
  }
  return out
}

/** this process's cgroup path per v1 controller, and '' key for v2 */
async function readOwnCgroups (): Promise<Map<string, string>> {
  const text = await readText('/proc/self/cgroup') ?? ''
  const map = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (m == null) continue
    const controllers = m[2] ?? ''
    const path = m[3] ?? '/'
    if (controllers === '') {
      map.set('', path)
    } else {
      for (const c of controllers.split(',')) map.set(c, path)
    }
  }
  return map
}

function dirFor (mount: Mount, cgroupPath: string): string {
  // inside a cgroup namespace / container the mount root may be our own path
  let rel = cgroupPath
  if (mount.root !== '/' && rel.startsWith(mount.root)) rel = rel.slice(mount.root.length)
  return join(mount.mountPoint, rel)
}

async function listProcs (dir: string): Promise<number[]> {
  const text = await readText(join(dir, 'cgroup.procs'))
  if (text == null) return []
  return text.split('\n').filter(s => s !== '').map(Number).filter(n => Number.isInteger(n) && n > 0)
}

async function tryV2 (mounts: Mount[], own: Map<string, string>, opts: FindCgroupBackendOptions): Promise<{ backend?: CgroupBackendV2, detail: string }> {
  const m2 = mounts.find(m => m.fsType === 'cgroup2')
  if (m2 == null) return { detail: 'no cgroup2 mount' }
  const ownPath = own.get('')
  const parent = opts.cgroupParent?.includes('/') === true ? opts.cgroupParent : (ownPath != null ? dirFor(m2, ownPath) : undefined)
  if (parent == null) return { detail: 'cannot locate our cgroup v2 group' }
  const available = (await readText(join(parent, 'cgroup.controllers')) ?? '').trim().split(/\s+/)
  const missing = V1_REQUIRED.filter(c => !available.includes(c))
  if (missing.length > 0) {
    return { detail: `cgroup v2 at ${parent} lacks controllers: ${missing.join(', ')} (not delegated)` }
  }
  const enabled = (): Promise<string[]> => readText(join(parent, 'cgroup.subtree_control')).then(t => (t ?? '').trim().split(/\s+/))
  const alreadyEnabled = await enabled()
  if (!V1_REQUIRED.every(c => alreadyEnabled.includes(c))) {
    const enable = async (): Promise<void> => { await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +pids +cpu') }
    try {
      await enable()
    } catch (caught) {
      const err = caught as NodeJS.ErrnoException
      // "no internal processes": controllers can only be enabled for the
      // children of a group that holds no process itself. If every process
      // in the group is this one (e.g. `systemd-run --user --scope -p
      // Delegate=yes concur ...`), move ourselves into a leaf and retry.
      const procs = await listProcs(parent)
      if (err?.code === 'EBUSY' && opts.allowSelfMove !== false && procs.length > 0 && procs.every(p => p === process.pid)) {
        try {
          const leaf = join(parent, 'concur-worker')
          await mkdir(leaf, { recursive: true })
          await writeFile(join(leaf, 'cgroup.procs'), String(process.pid))
          await enable()
        } catch (err2) {
          return { detail: `cannot enable controllers in ${parent} after moving into a leaf: ${String((err2 as Error)?.message ?? err2)}` }
        }
      } else {
        return { detail: `cannot enable memory/pids/cpu in ${parent}/cgroup.subtree_control: ${String(err?.message ?? err)}` }
      }
    }
  }
  return { backend: { kind: 'v2', parent }, detail: `cgroup v2 delegated at ${parent}` }
}

async function tryV1 (mounts: Mount[], own: Map<string, string>, opts: FindCgroupBackendOptions): Promise<{ backend?: CgroupBackendV1, detail: string }> {
  const sub = opts.cgroupParent != null && !opts.cgroupParent.includes('/') ? opts.cgroupParent : 'concur'
  const parents: Record<string, string> = {}
  for (const c of [...V1_REQUIRED, 'freezer']) {
    const m = mounts.find(x => x.fsType === 'cgroup' && x.superOptions.includes(c))
    if (m == null) {
      if (c === 'freezer') continue
      return { detail: `cgroup v1 controller ${c} is not mounted` }
    }
    // with a cgroup namespace the mount root is already our group
    parents[c] = join(m.root === '/' ? m.mountPoint : dirFor(m, own.get(c) ?? m.root), sub)
  }
  const m2 = mounts.find(m => m.fsType === 'cgroup2')
  let unifiedParent: string | undefined
  if (m2 != null) {
    unifiedParent = join(m2.root === '/' ? m2.mountPoint : dirFor(m2, own.get('') ?? m2.root), sub)
  }
  const { memory, pids, cpu, freezer } = parents
  if (memory == null || pids == null || cpu == null) return { detail: 'cgroup v1 controllers missing' }
  try {
    for (const p of [memory, pids, cpu, freezer]) if (p != null) await mkdir(p, { recursive: true })
  } catch (caught) {
    const err = caught as NodeJS.ErrnoException
    return { detail: `cannot create cgroup v1 parents (need root): ${String(err?.message ?? err)}` }
  }
  if (unifiedParent != null) {
    try {
      await mkdir(unifiedParent, { recursive: true })
    } catch {
      unifiedParent = undefined
    }
  }
  const backend: CgroupBackendV1 = { kind: 'v1', parents: { memory, pids, cpu } }
  if (freezer != null) backend.parents.freezer = freezer
  if (unifiedParent != null) backend.unifiedParent = unifiedParent
  return { backend, detail: `cgroup v1 under ${memory}, ${pids}, ${cpu}${freezer != null ? `, ${freezer}` : ''}${unifiedParent != null ? `; cgroup.kill via ${unifiedParent}` : ''}` }
}

/**
 * Finds where per-build cgroups can be created. Prefers a delegated v2 with
 * controllers; falls back to v1. Does not create a build group (see BuildCgroup.create).
 */
export async function findCgroupBackend (opts: FindCgroupBackendOptions = {}): Promise<{ backend?: CgroupBackend, detail: string }> {
  const mounts = await readMounts()
  const own = await readOwnCgroups()
  const v2 = await tryV2(mounts, own, opts)
  if (v2.backend != null) return v2
  const v1 = await tryV1(mounts, own, opts)
  if (v1.backend != null) return { backend: v1.backend, detail: `${v1.detail} (v2: ${v2.detail})` }
  return { detail: `v2: ${v2.detail}; v1: ${v1.detail}` }
}

async function writeLimit (dir: string, file: string, value: string, optional = false): Promise<void> {
  const path = join(dir, file)
  if (optional && !(await exists(path))) return
  try {
    await writeFile(path, value)
  } catch (caught) {
    const err = caught as NodeJS.ErrnoException
    throw new CgroupError(`cannot write ${value} to ${path}: ${String(err?.message ?? err)}`)
  }
}

function parseKeyed (text: string | undefined, key: string): number {
  if (text == null) return 0
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text)
  return m?.[1] != null ? Number(m[1]) : 0
}

/** One build's cgroup (v2: one directory; v1: one per controller). */
export class BuildCgroup {
  readonly backend: CgroupBackend
  /** every directory created, in creation order */
  readonly dirs: string[]
  /** files the wrapper writes its pid into before exec'ing bwrap */
  readonly procsFiles: string[]
  private readonly memoryDir: string
  private readonly pidsDir: string
  private readonly freezerDir?: string
  private readonly killFile?: string

  private constructor (backend: CgroupBackend, dirs: string[], memoryDir: string, pidsDir: string, freezerDir: string | undefined, killFile: string | undefined) {
    this.backend = backend
    this.dirs = dirs
    this.procsFiles = dirs.map(d => join(d, 'cgroup.procs'))
    this.memoryDir = memoryDir
    this.pidsDir = pidsDir
    if (freezerDir != null) this.freezerDir = freezerDir
    if (killFile != null) this.killFile = killFile
  }

  /** creates the group(s) and writes the limits; removes what it created on failure */
  static async create (backend: CgroupBackend, name: string, limits: SandboxLimits): Promise<BuildCgroup> {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new CgroupError(`bad cgroup name ${name}`)
    const created: string[] = []
    const make = async (parent: string): Promise<string> => {
      const dir = join(parent, name)
      try {
        await mkdir(dir)
      } catch (caught) {
        const err = caught as NodeJS.ErrnoException
        throw new CgroupError(`cannot create cgroup ${dir}: ${String(err?.message ?? err)}`)
      }
      created.push(dir)
      return dir
    }
    const quota = Math.max(1000, Math.round(limits.cpus * 100_000))
    try {
      if (backend.kind === 'v2') {
        const dir = await make(backend.parent)
        await writeLimit(dir, 'memory.max', String(limits.memoryBytes))
        // swap would let a build exceed memoryBytes (and thrash the volunteer's disk)
        await writeLimit(dir, 'memory.swap.max', '0', true)
        await writeLimit(dir, 'pids.max', String(limits.processes))
        await writeLimit(dir, 'cpu.max', `${quota} 100000`)
        const killFile = await exists(join(dir, 'cgroup.kill')) ? join(dir, 'cgroup.kill') : undefined
        return new BuildCgroup(backend, created, dir, dir, undefined, killFile)
      }
      const p = backend.parents
      const memory = await make(p.memory)
      await writeLimit(memory, 'memory.limit_in_bytes', String(limits.memoryBytes))
      // memsw = memory + swap; equal values mean no swap at all
      await writeLimit(memory, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes), true)
      const pids = await make(p.pids)
      await writeLimit(pids, 'pids.max', String(limits.processes))
      const cpu = await make(p.cpu)
      await writeLimit(cpu, 'cpu.cfs_period_us', '100000')
      await writeLimit(cpu, 'cpu.cfs_quota_us', String(quota))
      const freezer = p.freezer != null ? await make(p.freezer) : undefined
      let killFile: string | undefined
      if (backend.unifiedParent != null) {
        try {
          const u = await make(backend.unifiedParent)
          if (await exists(join(u, 'cgroup.kill'))) killFile = join(u, 'cgroup.kill')
        } catch {
          // optional: only used to kill faster and without races
        }
      }
      return new BuildCgroup(backend, created, memory, pids, freezer, killFile)
    } catch (err) {
      for (const d of created.reverse()) await rmdir(d).catch(() => {})
      throw err
    }
  }

  /** pids (host namespace) currently in any of the build's groups */
  async pids (): Promise<number[]> {
    const all = new Set<number>()
    for (const d of this.dirs) for (const p of await listProcs(d)) all.add(p)
    return [...all]
  }

  /**
   * Kills every process in the group until it is empty. v2 (and hybrid):
   * cgroup.kill. v1: freeze, SIGKILL every listed pid, thaw, repeat: freezing
   * first means a fork bomb cannot outrun the loop and a listed pid cannot
   * exit and be reused by an unrelated process before we signal it.
   */
  async killAll (): Promise<void> {
    for (let i = 0; i < 500; i++) {
      if (this.killFile != null) await writeFile(this.killFile, '1').catch(() => {})
      if (this.freezerDir != null) await writeFile(join(this.freezerDir, 'freezer.state'), 'FROZEN').catch(() => {})
      const pids = await this.pids()
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      if (this.freezerDir != null) await writeFile(join(this.freezerDir, 'freezer.state'), 'THAWED').catch(() => {})
      if (pids.length === 0) return
      await sleep(i < 20 ? 5 : 20)
    }
    throw new CgroupError(`processes survive in ${this.dirs.join(', ')}: ${(await this.pids()).join(' ')}`)
  }

  /** number of processes the kernel OOM-killed in this group */
  async oomKills (): Promise<number> {
    if (this.backend.kind === 'v2') return parseKeyed(await readText(join(this.memoryDir, 'memory.events')), 'oom_kill')
    return parseKeyed(await readText(join(this.memoryDir, 'memory.oom_control')), 'oom_kill')
  }

  /** true when a fork failed because pids.max was reached */
  async pidsLimitHit (): Promise<boolean> {
    return parseKeyed(await readText(join(this.pidsDir, 'pids.events')), 'max') > 0
  }

  /** kills what is left and removes every directory (retrying while the kernel finishes exits) */
  async remove (): Promise<void> {
    let lastErr: unknown
    for (let i = 0; i < 200; i++) {
      await this.killAll()
      lastErr = undefined
      for (const d of [...this.dirs].reverse()) {
        try {
          await rmdir(d)
        } catch (caught) {
          const err = caught as NodeJS.ErrnoException
          if (err?.code !== 'ENOENT') lastErr = err
        }
      }
      if (lastErr == null) return
      await sleep(10)
    }
    throw new CgroupError(`cannot remove cgroup: ${String((lastErr as Error)?.message ?? lastErr)}`)
  }
}
