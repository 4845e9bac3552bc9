/**
 * Runs one untrusted build command inside bubblewrap, in a per-build cgroup.
 *
 * runSandboxed only puts the parts together: the command line
 * (command-chain.ts, pure, where the process chain is described), the
 * spawned sandbox and everything it is watched by (sandbox-process.ts), and
 * how the run ended (classify-run.ts, pure).
 *
 * Disk: /build is a tmpfs of `diskBytes` inside the sandbox (bwrap --size),
 * the prepared source is bound read-only and copied in before the build, and
 * after it the tree is copied out from the host through a handle on the
 * /build mount taken before the job ran, once every process of the build is
 * gone (build-mount.ts). Chosen over a host directory + RLIMIT_FSIZE
 * because RLIMIT_FSIZE limits one file, not the total; a tmpfs gives a hard
 * total (ENOSPC), leaves nothing on the host disk when the build is killed,
 * works for unprivileged workers, and its pages are charged to the memory
 * cgroup - hence memoryBytes >= diskBytes is required.
 */
import { sandboxScratchRoot } from './scratch.ts'
import { mkdtemp, readFile, writeFile, rm, chmod, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { randomBytes, randomInt } from 'node:crypto'
import { BuildCgroup, findCgroupBackend } from './cgroup.ts'
import type { CgroupBackend } from './cgroup.ts'
import { bwrapRootEntries, generatedEtc } from './bwrap-args.ts'
import { classifyRun, outputMayBeCopied } from './classify-run.ts'
import { commandChain, requireSandboxTools } from './command-chain.ts'
import { copyTreeNoFollow } from './copy-out.ts'
import { SandboxLimitError, SandboxOutputError, SandboxSpecError, SandboxUnavailableError } from './errors.ts'
import { detectHostTools } from './host-tools.ts'
import { SandboxProcess } from './sandbox-process.ts'
import { buildSeccompFilter } from './seccomp.ts'
import type { SandboxLimits, SandboxResult, SandboxSpec } from './types.ts'

export interface RunSandboxedOptions {
  signal?: AbortSignal
  /** bytes of log kept (the tail); default 1 MiB */
  logCapBytes?: number
  /** called with every chunk of output as it arrives (not capped) */
  onLog?: (chunk: Buffer) => void
  /** where build cgroups go (see FindCgroupBackendOptions); default: found automatically */
  cgroupBackend?: CgroupBackend
  /**
   * host uid/gid bwrap runs as when the worker is root; default a fresh random
   * pair per build (see sandboxHostIds)
   */
  hostUid?: number
  hostGid?: number
  /** RLIMIT_NOFILE; default 4096 */
  maxOpenFiles?: number
  /** run without the seccomp filter (e.g. on an architecture without one); default: use it where supported */
  seccomp?: boolean
  /** name used for the cgroup directory; default concur-build-<random> */
  name?: string
  /** most entries copied out of /build; default 250,000 (copy-out.ts) */
  maxOutputEntries?: number
}

const DEFAULT_LOG_CAP = 1024 * 1024

/**
 * Host uids (and gids) a root worker's builds run as: 0x70000000–0x7ffdffff,
 * above the ranges Linux distributions and systemd hand out (accounts,
 * dynamic users, container ranges up to 0x6fffffff). A build's processes own
 * its user namespace, so a host process with the same uid could open
 * /proc/<pid>/root of a running build and change its output or read its
 * inputs: with "nobody" (65534) that is any nobody process on the host, and
 * with one fixed uid it would be another of the worker's builds. A fresh
 * random uid per build is shared with no process.
 */
export const SANDBOX_HOST_ID_MIN = 0x70000000
// below systemd's "foreign" range 0x7ffe0000-0x7ffeffff (UIDS-GIDS.md)
export const SANDBOX_HOST_ID_MAX = 0x7ffdffff

export function sandboxHostIds (): { uid: number, gid: number } {
  const pick = (): number => SANDBOX_HOST_ID_MIN + randomInt(SANDBOX_HOST_ID_MAX - SANDBOX_HOST_ID_MIN + 1)
  const uid = pick()
  return { uid, gid: uid }
}

export function validateLimits (limits: SandboxLimits): void {
  for (const key of ['memoryBytes', 'cpus', 'diskBytes', 'wallSeconds', 'processes'] as const) {
    const v = limits[key]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new SandboxLimitError(`limits.${key} must be a positive finite number, got ${String(v)}`)
    }
  }
  for (const key of ['memoryBytes', 'diskBytes', 'processes'] as const) {
    if (!Number.isSafeInteger(limits[key])) throw new SandboxLimitError(`limits.${key} must be an integer`)
  }
  // /build is a tmpfs and tmpfs pages are charged to the memory cgroup: with
  // memory < disk, filling the disk would be reported as an OOM kill.
  if (limits.memoryBytes < limits.diskBytes) {
    throw new SandboxLimitError(`limits.memoryBytes (${limits.memoryBytes}) must be >= limits.diskBytes (${limits.diskBytes}): the build dir is a tmpfs charged to the memory limit`)
  }
  if (limits.processes < 4) {
    // outer bwrap + pid-namespace init + wrapper shell + the build itself
    throw new SandboxLimitError('limits.processes must be >= 4 (bwrap, its init and the wrapper shell count)')
  }
}

function validateSpec (spec: SandboxSpec): void {
  if (!Array.isArray(spec.argv) || spec.argv.length === 0 || spec.argv.some(a => typeof a !== 'string' || a.includes('\0'))) {
    throw new SandboxSpecError('argv must be a non-empty array of strings without NUL')
  }
  if (!isAbsolute(spec.buildDir)) throw new SandboxSpecError('buildDir must be an absolute path')
  if (spec.outputDir != null && !isAbsolute(spec.outputDir)) throw new SandboxSpecError('outputDir must be an absolute path')
  if (spec.environment.kind === 'rootfs' && !isAbsolute(spec.environment.root)) throw new SandboxSpecError('environment.root must be an absolute path')
  for (const [k, v] of Object.entries(spec.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes('\0')) throw new SandboxSpecError(`bad environment variable ${JSON.stringify(k)}`)
  }
  if (spec.tier !== 'namespaces+cgroups' && spec.tier !== 'namespaces') throw new SandboxSpecError(`unknown tier ${String(spec.tier)}`)
  if (spec.clockOffsetSeconds != null && !Number.isSafeInteger(spec.clockOffsetSeconds)) {
    throw new SandboxSpecError(`clockOffsetSeconds must be a whole number of seconds, got ${String(spec.clockOffsetSeconds)}`)
  }
  if (spec.hostname != null && !HOSTNAME.test(spec.hostname)) throw new SandboxSpecError(`hostname must be an RFC 1123 label, got ${JSON.stringify(spec.hostname)}`)
  if (spec.timezone != null && !ZONE_NAME.test(spec.timezone)) throw new SandboxSpecError(`timezone must be a zone name such as Asia/Kolkata, got ${JSON.stringify(spec.timezone)}`)
  if (spec.cpus != null && !(Number.isSafeInteger(spec.cpus) && spec.cpus >= 1)) throw new SandboxSpecError(`cpus must be a whole number >= 1, got ${String(spec.cpus)}`)
}

/** one DNS label: what sethostname and /etc/hosts take without surprises */
const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
/** an IANA zone name: path segments of [A-Za-z0-9_+-], never `..` or absolute (it is looked up under /usr/share/zoneinfo) */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/

/** Parses a Linux cpu list (`0-3,8,10-11`, as in /proc/self/status Cpus_allowed_list) into CPU numbers, ascending. */
export function parseCpuList (text: string): number[] {
  const out = new Set<number>()
  for (const part of text.trim().split(',')) {
    if (part === '') continue
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (m == null) throw new SandboxUnavailableError(`cannot read the CPU list ${JSON.stringify(text.slice(0, 100))}`, 'Run the worker on Linux with /proc mounted')
    const lo = Number(m[1])
    const hi = m[2] != null ? Number(m[2]) : lo
    for (let c = lo; c <= hi && out.size <= 4096; c++) out.add(c)
  }
  return [...out].sort((a, b) => a - b)
}

/** The CPUs this process may run on (its affinity mask): what a build pinned with taskset can be given. */
export async function allowedCpus (): Promise<number[]> {
  const status = await readFile('/proc/self/status', 'utf8')
  const line = /^Cpus_allowed_list:\s*(.*)$/m.exec(status)
  if (line == null) throw new SandboxUnavailableError('/proc/self/status has no Cpus_allowed_list', 'Run the worker on Linux with /proc mounted')
  return parseCpuList(line[1]!)
}

/**
 * `count` of the allowed CPUs, a contiguous run starting at a random one (so
 * concurrent builds asked for one CPU do not all land on the first). Which
 * CPUs does not change what the build sees; how many does.
 */
async function pickCpus (count: number): Promise<number[]> {
  const allowed = await allowedCpus()
  if (allowed.length < count) throw new SandboxUnavailableError(`the build asks to run on ${count} CPUs and this worker may use ${allowed.length}`, 'Give the worker at least as many CPUs as the job asks for')
  const start = randomInt(allowed.length)
  return Array.from({ length: count }, (_, i) => allowed[(start + i) % allowed.length]!)
}

async function createCgroup (limits: SandboxLimits, opts: RunSandboxedOptions): Promise<BuildCgroup> {
  let backend = opts.cgroupBackend
  let detail = ''
  if (backend == null) ({ backend, detail } = await findCgroupBackend())
  if (backend == null) {
    throw new SandboxUnavailableError(`no usable cgroup for tier namespaces+cgroups: ${detail}`, 'Run the worker as root (cgroup v1), or in a delegated cgroup v2 (systemd-run --user --scope -p Delegate=yes ...), or opt in to the weaker "namespaces" tier')
  }
  return await BuildCgroup.create(backend, opts.name ?? `concur-build-${randomBytes(6).toString('hex')}`, limits)
}

/** a host directory with the generatedEtc() files (host environment) */
async function writeEtcDir (hostname: string | undefined): Promise<string> {
  const etcDir = await mkdtemp(join(await sandboxScratchRoot(), 'etc-'))
  // bwrap may run as an unprivileged uid: it must be able to reach these
  await chmod(etcDir, 0o755)
  for (const [name, text] of Object.entries(generatedEtc(hostname))) await writeFile(join(etcDir, name), text, { mode: 0o644 })
  return etcDir
}

async function copyOut (handle: FileHandle | undefined, outputDir: string, limits: SandboxLimits, opts: RunSandboxedOptions): Promise<void> {
  if (handle == null) throw new SandboxOutputError('the sandbox reported an exit status but its /build was never opened')
  await copyTreeNoFollow(handle, outputDir, {
    ...(opts.signal != null ? { signal: opts.signal } : {}),
    ...(opts.maxOutputEntries != null ? { maxEntries: opts.maxOutputEntries } : {}),
    // the build could only write diskBytes; hard links and sparse files
    // must not make it more on the worker's disk
    maxBytes: limits.diskBytes
  })
}

export async function runSandboxed (spec: SandboxSpec, opts: RunSandboxedOptions = {}): Promise<SandboxResult> {
  validateSpec(spec)
  validateLimits(spec.limits)
  opts.signal?.throwIfAborted()
  const startedAt = Date.now()
  const isRoot = process.getuid?.() === 0
  const tools = requireSandboxTools(await detectHostTools(), isRoot)
  const inputStat = await stat(spec.buildDir).catch(() => null)
  if (inputStat?.isDirectory() !== true) throw new SandboxSpecError(`buildDir ${spec.buildDir} is not a directory`)
  const cgroup = spec.tier === 'namespaces+cgroups' ? await createCgroup(spec.limits, opts) : undefined

  let etcDir: string | undefined
  let sandbox: SandboxProcess | undefined
  try {
    if (spec.environment.kind === 'host') etcDir = await writeEtcDir(spec.hostname)
    const seccompFilter = opts.seccomp === false || !tools.bwrapFeatures.seccomp ? null : buildSeccompFilter()
    const ids = isRoot ? sandboxHostIds() : null
    const chain = commandChain({
      tools,
      spec,
      cgroupProcsFiles: cgroup?.procsFiles ?? null,
      dropTo: ids != null ? { uid: opts.hostUid ?? ids.uid, gid: opts.hostGid ?? ids.gid } : null,
      rootEntries: await bwrapRootEntries(spec.environment),
      ...(etcDir != null ? { etcDir } : {}),
      seccomp: seccompFilter != null,
      ...(opts.maxOpenFiles != null ? { maxOpenFiles: opts.maxOpenFiles } : {}),
      ...(spec.cpus != null ? { cpuList: await pickCpus(spec.cpus) } : {})
    })
    sandbox = SandboxProcess.spawn(chain, {
      seccompFilter,
      takeBuildMount: spec.outputDir != null,
      diskBytes: spec.limits.diskBytes,
      wallSeconds: spec.limits.wallSeconds,
      logCapBytes: opts.logCapBytes ?? DEFAULT_LOG_CAP,
      ...(opts.onLog != null ? { onLog: opts.onLog } : {}),
      ...(cgroup != null ? { cgroup } : {}),
      ...(opts.signal != null ? { signal: opts.signal } : {})
    })
    try {
      await sandbox.waitForEnd()
      if (spec.outputDir != null && outputMayBeCopied(sandbox.observed())) await copyOut(sandbox.buildDir, spec.outputDir, spec.limits, opts)
    } catch (err) {
      sandbox.fail(err as Error)
    } finally {
      await sandbox.close()
    }

    const run = classifyRun({
      ...sandbox.observed(),
      oomKills: cgroup != null ? await cgroup.oomKills() : 0,
      pidsLimitHit: cgroup != null ? await cgroup.pidsLimitHit() : false
    })
    if (!run.ok) throw run.error
    const { exitCode, signal, reason, oomKilled, pidsLimitHit } = run.status
    return {
      exitCode,
      signal,
      reason,
      log: sandbox.log.toBuffer(),
      logTruncated: sandbox.log.truncated,
      durationMs: Date.now() - startedAt,
      oomKilled,
      pidsLimitHit,
      cgroupPaths: cgroup?.dirs ?? [],
      tier: spec.tier
    }
  } finally {
    sandbox?.killOuter()
    if (cgroup != null) await cgroup.remove()
    if (etcDir != null) await rm(etcDir, { recursive: true, force: true })
  }
}
