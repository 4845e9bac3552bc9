/**
 * Runs one untrusted build command inside bubblewrap, in a per-build cgroup.
 *
 * Process chain (each `exec`s the next, so it is all one pid until bwrap forks):
 *
 *   sh (joins the cgroups: `echo $$ > cgroup.procs`, so nothing runs unconfined)
 *   -> nice -n 19 -> ionice -c 3 (lowest CPU and idle I/O priority)
 *   -> prlimit (RLIMIT_FSIZE = disk, NOFILE, CORE = 0)
 *   -> setpriv (only when the worker is root: bwrap then runs as an unprivileged
 *      host uid, so even an escape from every namespace lands on a nobody uid)
 *   -> bwrap -> [pid namespace init] -> sh wrapper -> the build's argv
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
import { spawn } from 'node:child_process'
import { mkdtemp, writeFile, rm, chmod, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { constants as osConstants } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { randomBytes, randomInt } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { BuildCgroup, findCgroupBackend } from './cgroup.ts'
import type { CgroupBackend } from './cgroup.ts'
import { bwrapArgs, generatedEtc, FD_JSON_STATUS, FD_SECCOMP, FD_BLOCK, INPUT_PATH, BUILD_PATH } from './bwrap-args.ts'
import { killIfRunning, openBuildMount, processIdentity, waitForNamespaceEnd } from './build-mount.ts'
import type { ProcessIdentity } from './build-mount.ts'
import type { FileHandle } from 'node:fs/promises'
import { copyTreeNoFollow } from './copy-out.ts'
import { SandboxLimitError, SandboxOutputError, SandboxSpecError, SandboxUnavailableError } from './errors.ts'
import { detectHostTools } from './host-tools.ts'
import { buildSeccompFilter } from './seccomp.ts'
import { TailBuffer } from './tail-buffer.ts'
import type { SandboxEndReason, SandboxLimits, SandboxResult, SandboxSpec } from './types.ts'

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
/** the wrapper's exit status when it could not copy the source in (its log says so) */
const SOURCE_COPY_FAILED = 125
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

// Runs as the job's first process (in a rootfs environment with the rootfs's
// own /bin/sh, so nothing here is relied on: the exit status comes from bwrap,
// and the end of every process from the pid namespace's end).
const INNER = [
  'exec 3>&- 4>&-',
  'umask 022',
  // The source is copied in sorted name order: readdir order on the build's
  // tmpfs follows creation order, and the host's order of the exported source
  // (ext4 hash order, export concurrency) differs between volunteers. A build
  // that lists a directory unsorted must still see the same order everywhere.
  // A rootfs without find/sort/xargs falls back to cp -a.
  'if command -v find >/dev/null && command -v sort >/dev/null && command -v xargs >/dev/null; then',
  `  (cd ${INPUT_PATH} && find . -mindepth 1 -print0 | LC_ALL=C sort -z | xargs -0 -r sh -c 'for p; do if [ -d "$p" ] && [ ! -L "$p" ]; then mkdir "${BUILD_PATH}/$p"; else cp -P "$p" "${BUILD_PATH}/$p"; fi || exit 1; done' sh) || { echo "concur-sandbox: cannot copy the source into ${BUILD_PATH}" >&2; exit ${SOURCE_COPY_FAILED}; }`,
  `elif ! cp -a ${INPUT_PATH}/. ${BUILD_PATH}/; then echo "concur-sandbox: cannot copy the source into ${BUILD_PATH}" >&2; exit ${SOURCE_COPY_FAILED}; fi`,
  // sources fetched by CID carry no mtimes: give every input SOURCE_DATE_EPOCH
  // so a build that records timestamps (tar, zip, make) records the same ones
  `if [ -n "\${SOURCE_DATE_EPOCH:-}" ]; then find ${BUILD_PATH} -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} + 2>/dev/null || true; fi`,
  'exec "$@" </dev/null'
].join('\n')

// Runs on the host before anything else: join every cgroup, then exec.
const OUTER = [
  'exec 2>&1',
  'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do',
  '  echo $$ > "$1" || { echo "concur-sandbox: cannot join cgroup $1" >&2; exit 125; }',
  '  shift',
  'done',
  'shift',
  'exec "$@"'
].join('\n')

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
}

function signalName (n: number): string | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name
  return null
}

export async function runSandboxed (spec: SandboxSpec, opts: RunSandboxedOptions = {}): Promise<SandboxResult> {
  validateSpec(spec)
  validateLimits(spec.limits)
  opts.signal?.throwIfAborted()
  const startedAt = Date.now()
  const limits = spec.limits

  const tools = await detectHostTools()
  if (tools.bwrap == null) {
    throw new SandboxUnavailableError('bubblewrap (bwrap) is not installed', 'Install it: apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora)')
  }
  if (!tools.bwrapFeatures.tmpfsSize || !tools.bwrapFeatures.jsonStatusFd) {
    throw new SandboxUnavailableError(`${tools.bwrapVersion ?? 'bwrap'} lacks --size / --json-status-fd`, 'Install bubblewrap >= 0.6')
  }
  if (tools.prlimit == null) {
    throw new SandboxUnavailableError('prlimit is not installed', 'Install util-linux (apt-get install util-linux)')
  }
  const isRoot = process.getuid?.() === 0
  if (isRoot && tools.setpriv == null) {
    throw new SandboxUnavailableError('setpriv is needed to drop root before bwrap', 'Install util-linux (apt-get install util-linux)')
  }
  const inputStat = await stat(spec.buildDir).catch(() => null)
  if (inputStat?.isDirectory() !== true) throw new SandboxSpecError(`buildDir ${spec.buildDir} is not a directory`)

  let cgroup: BuildCgroup | undefined
  if (spec.tier === 'namespaces+cgroups') {
    let backend = opts.cgroupBackend
    let detail = ''
    if (backend == null) ({ backend, detail } = await findCgroupBackend())
    if (backend == null) {
      throw new SandboxUnavailableError(`no usable cgroup for tier namespaces+cgroups: ${detail}`, 'Run the worker as root (cgroup v1), or in a delegated cgroup v2 (systemd-run --user --scope -p Delegate=yes ...), or opt in to the weaker "namespaces" tier')
    }
    cgroup = await BuildCgroup.create(backend, opts.name ?? `concur-build-${randomBytes(6).toString('hex')}`, limits)
  }

  let etcDir: string | undefined
  let child: ReturnType<typeof spawn> | undefined
  try {
    if (spec.environment.kind === 'host') {
      etcDir = await mkdtemp(join(await sandboxScratchRoot(), 'etc-'))
      // bwrap may run as an unprivileged uid: it must be able to reach these
      await chmod(etcDir, 0o755)
      for (const [name, text] of Object.entries(generatedEtc())) await writeFile(join(etcDir, name), text, { mode: 0o644 })
    }
    const seccompFilter = opts.seccomp === false || !tools.bwrapFeatures.seccomp ? null : buildSeccompFilter()
    const bargs = await bwrapArgs({
      features: tools.bwrapFeatures,
      environment: spec.environment,
      buildDir: spec.buildDir,
      diskBytes: limits.diskBytes,
      env: spec.env,
      ...(etcDir != null ? { etcDir } : {}),
      seccomp: seccompFilter != null,
      command: ['/bin/sh', '-c', INNER, 'concur-build', ...spec.argv]
    })

    const chain: string[] = []
    if (tools.nice != null) chain.push(tools.nice, '-n', '19')
    if (tools.ionice != null) chain.push(tools.ionice, '-c', '3', '-t')
    chain.push(tools.prlimit,
      // RLIMIT_FSIZE: a single file cannot exceed the disk limit even where
      // the tmpfs is bigger than the cgroup lets it grow
      `--fsize=${limits.diskBytes}`,
      `--nofile=${opts.maxOpenFiles ?? 4096}`,
      '--core=0')
    if (cgroup == null) {
      // Weak tier (opt-in): rlimits are all there is. RLIMIT_AS is per process
      // and NPROC per uid, so both are coarse stand-ins for the cgroup limits.
      chain.push(`--as=${limits.memoryBytes}`, `--nproc=${limits.processes}`)
    }
    chain.push('--')
    if (isRoot && tools.setpriv != null) {
      const ids = sandboxHostIds()
      chain.push(tools.setpriv,
        '--reuid', String(opts.hostUid ?? ids.uid),
        '--regid', String(opts.hostGid ?? ids.gid),
        '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--')
    }
    chain.push(tools.bwrap, ...bargs)

    const log = new TailBuffer(opts.logCapBytes ?? DEFAULT_LOG_CAP)
    let endReason: SandboxEndReason | undefined
    let init: ProcessIdentity | undefined
    let exitedRc: number | undefined
    let jsonText = ''
    let killing: Promise<void> | undefined
    let outputError: Error | undefined

    const proc = spawn(tools.sh, ['-c', OUTER, 'concur-sandbox', ...(cgroup?.procsFiles ?? []), '--', ...chain], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: HOST_PATH },
      // a new process group, so a terminal's ^C reaches the worker, which then kills the tree
      detached: true
    })
    child = proc
    const outerExited = new Promise<void>(resolve => proc.on('exit', () => { resolve() }))
    const stdioClosed = new Promise<void>(resolve => proc.on('close', () => { resolve() }))
    proc.on('error', () => {})

    const onData = (chunk: Buffer): void => {
      log.push(chunk)
      opts.onLog?.(chunk)
    }
    proc.stdout?.on('data', onData)
    proc.stderr?.on('data', onData)

    // the pid bwrap reported for its child: the pid namespace's init
    let childPid: number | undefined
    const killTree = (): Promise<void> => {
      killing ??= (async () => {
        try { proc.kill('SIGKILL') } catch {}
        // the pid namespace's init: the kernel takes every process of the
        // namespace down with it (weak tier: the only way; cgroup tier: faster)
        init ??= childPid != null ? (await processIdentity(childPid) ?? undefined) : undefined
        if (init != null) await killIfRunning(init)
        await cgroup?.killAll()
      })()
      return killing
    }

    const fdStream = (fd: number): Duplex | undefined => (proc.stdio[fd] ?? undefined) as unknown as Duplex | undefined
    const blockStream = fdStream(FD_BLOCK)
    blockStream?.on('error', () => {})
    blockStream?.resume()

    // bwrap stopped before the job: take the handle on /build (when there is
    // output to copy), then let it go on. A failure here kills the sandbox
    // before any of the job has run.
    let buildMount: Promise<FileHandle | undefined> | undefined
    const attach = async (pid: number): Promise<FileHandle | undefined> => {
      try {
        init ??= await processIdentity(pid) ?? undefined
        if (init == null) throw new SandboxOutputError('the sandbox ended before it started')
        const fh = spec.outputDir != null ? await openBuildMount(init, BUILD_PATH, limits.diskBytes, opts.signal != null ? { signal: opts.signal } : {}) : undefined
        if (killing != null) {
          // killed (wall clock, abort) while we were opening: never let the
          // job start; bwrap's child does not die with its monitor until it
          // execs, so it is killed here
          await killIfRunning(init)
          await fh?.close()
          return undefined
        }
        blockStream?.end('1')
        return fh
      } catch (err) {
        outputError = err as Error
        endReason ??= opts.signal?.aborted === true ? 'aborted' : 'setup-failed'
        void killTree()
        return undefined
      }
    }

    const jsonStream = fdStream(FD_JSON_STATUS)
    jsonStream?.on('data', (c: Buffer) => {
      // bwrap (host code, outside the sandbox) writes one JSON document per
      // line: its child's pid right after clone, the job's exit status at the
      // end. The job cannot write here. Only whole lines are read, so a pid
      // split across two reads is never taken for a shorter one.
      jsonText += c.toString('utf8')
      let nl: number
      while ((nl = jsonText.indexOf('\n')) >= 0) {
        const line = jsonText.slice(0, nl)
        jsonText = jsonText.slice(nl + 1)
        let doc: Record<string, unknown>
        try { doc = JSON.parse(line) as Record<string, unknown> } catch { continue }
        const pid = doc['child-pid']
        if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && childPid == null) {
          childPid = pid
          buildMount = attach(pid)
        }
        const rc = doc['exit-code']
        if (typeof rc === 'number' && Number.isSafeInteger(rc) && exitedRc == null) exitedRc = rc
      }
    })
    jsonStream?.on('error', () => {})

    const seccompStream = fdStream(FD_SECCOMP)
    seccompStream?.on('error', () => {})
    // drain the read side too, or the socket never reports its end and the
    // child's 'close' never fires
    seccompStream?.resume()
    if (seccompFilter != null) seccompStream?.end(seccompFilter)
    else seccompStream?.end()

    const timer = setTimeout(() => {
      endReason = 'wall-clock'
      void killTree()
    }, limits.wallSeconds * 1000)
    const onAbort = (): void => {
      endReason ??= 'aborted'
      void killTree()
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    // an abort during the set-up above fired no listener
    if (opts.signal?.aborted === true) onAbort()

    let handle: FileHandle | undefined
    try {
      await outerExited
      clearTimeout(timer)
      // bwrap's monitor is gone (the job ended, or was killed): take the
      // whole tree down and wait until no process of it is left
      await killTree()
      handle = await buildMount
      if (init != null) await waitForNamespaceEnd(init)
      if (spec.outputDir != null && exitedRc != null && endReason == null && outputError == null) {
        if (handle == null) throw new SandboxOutputError('the sandbox reported an exit status but its /build was never opened')
        await copyTreeNoFollow(handle, spec.outputDir, {
          ...(opts.signal != null ? { signal: opts.signal } : {}),
          ...(opts.maxOutputEntries != null ? { maxEntries: opts.maxOutputEntries } : {}),
          // the build could only write diskBytes; hard links and sparse files
          // must not make it more on the worker's disk
          maxBytes: limits.diskBytes
        })
      }
    } catch (err) {
      outputError ??= err as Error
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      // closing the last handle frees the tmpfs (also when a kill above threw
      // before the handle was taken over)
      await (handle ?? await buildMount)?.close()
    }
    // Collect the last output. Only a process that escaped every kill could
    // hold the pipes open; never hang the worker on it.
    const grace = setTimeout(() => { for (const s of proc.stdio) s?.destroy() }, 2000)
    await stdioClosed
    clearTimeout(grace)

    let oomKilled = false
    let pidsLimitHit = false
    if (cgroup != null) {
      oomKilled = (await cgroup.oomKills()) > 0
      pidsLimitHit = await cgroup.pidsLimitHit()
    }

    let exitCode: number | null = null
    let signal: string | null = null
    if (exitedRc != null) {
      // bwrap reports "killed by signal n" as 128+n
      if (exitedRc > 128 && exitedRc < 128 + 65) signal = signalName(exitedRc - 128) ?? `SIG${exitedRc - 128}`
      else exitCode = exitedRc
    }
    let reason: SandboxEndReason
    if (endReason != null) reason = endReason
    else if (oomKilled && exitedRc !== 0) reason = 'memory'
    else if (exitedRc != null) reason = 'exited'
    // bwrap exits on its own without a status when it cannot set up; a
    // signal means it was killed (the OOM killer, or the worker)
    else if (proc.signalCode == null) reason = 'setup-failed'
    else reason = 'killed'

    if (outputError != null && reason === 'exited') throw outputError

    return {
      exitCode,
      signal,
      reason,
      log: log.toBuffer(),
      logTruncated: log.truncated,
      durationMs: Date.now() - startedAt,
      oomKilled,
      pidsLimitHit,
      cgroupPaths: cgroup?.dirs ?? [],
      tier: spec.tier
    }
  } finally {
    if (child != null && child.exitCode == null && child.signalCode == null) {
      try { child.kill('SIGKILL') } catch {}
    }
    if (cgroup != null) await cgroup.remove()
    if (etcDir != null) await rm(etcDir, { recursive: true, force: true })
  }
}
