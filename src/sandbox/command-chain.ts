/**
 * The command line one build is spawned with. Pure: the host tools, the
 * cgroup's procs files, the environment's root entries and the uid to drop
 * to are found by the caller (run.ts); this only puts them in order.
 *
 * Process chain (each `exec`s the next, so it is all one pid until bwrap forks):
 *
 *   sh (joins the cgroups: `echo $$ > cgroup.procs`, so nothing runs unconfined)
 *   -> nice -n 19 -> ionice -c 3 (lowest CPU and idle I/O priority)
 *   -> prlimit (RLIMIT_FSIZE = disk, NOFILE, CORE = 0)
 *   -> taskset (only for a build asked to see fewer CPUs: SandboxSpec.cpus)
 *   -> setpriv (only when the worker is root: bwrap then runs as an unprivileged
 *      host uid, so even an escape from every namespace lands on a nobody uid)
 *   -> bwrap -> [pid namespace init] -> sh wrapper -> the build's argv
 */
import { bwrapArgs, BUILD_PATH, INPUT_PATH } from './bwrap-args.ts'
import { SandboxUnavailableError } from './errors.ts'
import { INSTALL_FAKETIME, INSTALL_TASKSET } from './host-tools.ts'
import type { HostTools } from './host-tools.ts'
import type { SandboxSpec } from './types.ts'

/** the wrapper's exit status when it could not copy the source in (its log says so) */
export const SOURCE_COPY_FAILED = 125
/** the wrapper's exit status when the environment lacks the zone the job's TZ names (its log says so) */
export const ZONE_MISSING = 125
/** the outer shell's PATH (host programs are named by absolute path anyway) */
export const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** RLIMIT_NOFILE when the caller sets none */
export const DEFAULT_MAX_OPEN_FILES = 4096

// Runs as the job's first process (in a rootfs environment with the rootfs's
// own /bin/sh, so nothing here is relied on: the exit status comes from bwrap,
// and the end of every process from the pid namespace's end).
export const INNER = [
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
  // TZ names a zone only when the job asked to vary the timezone. Without its
  // file libc silently uses UTC: the build would agree with every other
  // replica for the reason the requester wanted ruled out, so it fails here.
  `case "\${TZ:-UTC}" in UTC) ;; *) if [ ! -e "/usr/share/zoneinfo/$TZ" ]; then echo "concur-sandbox: this environment has no /usr/share/zoneinfo/$TZ: a build asked to vary the timezone needs tzdata" >&2; exit ${ZONE_MISSING}; fi ;; esac`,
  'exec "$@" </dev/null'
].join('\n')

// Runs on the host before anything else: join every cgroup, then exec.
export const OUTER = [
  'exec 2>&1',
  'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do',
  '  echo $$ > "$1" || { echo "concur-sandbox: cannot join cgroup $1" >&2; exit 125; }',
  '  shift',
  'done',
  'shift',
  'exec "$@"'
].join('\n')

/** The host tools with the ones every build needs known to be there. */
export interface SandboxTools extends HostTools {
  bwrap: string
  prlimit: string
}

/**
 * Refuses (SandboxUnavailableError, with its remedy) when a tool the sandbox
 * is assembled from is missing or too old; `isRoot`: the worker runs as root
 * and must drop to an unprivileged uid before bwrap.
 */
export function requireSandboxTools (tools: HostTools, isRoot: boolean): SandboxTools {
  const { bwrap, prlimit } = tools
  if (bwrap == null) {
    throw new SandboxUnavailableError('bubblewrap (bwrap) is not installed', 'Install it: apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora)')
  }
  if (!tools.bwrapFeatures.tmpfsSize || !tools.bwrapFeatures.jsonStatusFd) {
    throw new SandboxUnavailableError(`${tools.bwrapVersion ?? 'bwrap'} lacks --size / --json-status-fd`, 'Install bubblewrap >= 0.6')
  }
  if (prlimit == null) {
    throw new SandboxUnavailableError('prlimit is not installed', 'Install util-linux (apt-get install util-linux)')
  }
  if (isRoot && tools.setpriv == null) {
    throw new SandboxUnavailableError('setpriv is needed to drop root before bwrap', 'Install util-linux (apt-get install util-linux)')
  }
  return { ...tools, bwrap, prlimit }
}

export interface CommandChainInput {
  tools: SandboxTools
  spec: Pick<SandboxSpec, 'argv' | 'buildDir' | 'env' | 'environment' | 'limits' | 'clockOffsetSeconds' | 'hostname' | 'timezone' | 'cpus'>
  /**
   * the CPU numbers the build is pinned to (taskset -c) when spec.cpus is
   * set: spec.cpus of them, chosen by the caller from the worker's own
   * affinity mask
   */
  cpuList?: readonly number[]
  /**
   * the cgroup.procs files the outer shell writes its pid into before it
   * execs anything; null in the weak "namespaces" tier (no cgroup)
   */
  cgroupProcsFiles: readonly string[] | null
  /** the host uid/gid bwrap runs as (setpriv); null when the worker is not root */
  dropTo: { uid: number, gid: number } | null
  /** what bwrapRootEntries(spec.environment) returned */
  rootEntries: string[]
  /** host directory holding generatedEtc() files (host environment) */
  etcDir?: string
  /** bwrap reads a seccomp filter from FD_SECCOMP */
  seccomp: boolean
  /** RLIMIT_NOFILE; default DEFAULT_MAX_OPEN_FILES */
  maxOpenFiles?: number
}

/** What is spawned: `file` with `args`, in the environment `env`. */
export interface CommandChain {
  file: string
  args: string[]
  env: Record<string, string>
}

export function commandChain (input: CommandChainInput): CommandChain {
  const { tools, spec } = input
  const limits = spec.limits
  // never run a build asked to see another clock with the real one
  if (spec.clockOffsetSeconds != null && tools.libfaketime == null) {
    throw new SandboxUnavailableError('libfaketime is not installed: this worker cannot run a build with a clock offset', INSTALL_FAKETIME)
  }
  const bargs = bwrapArgs({
    features: tools.bwrapFeatures,
    environment: spec.environment,
    buildDir: spec.buildDir,
    diskBytes: limits.diskBytes,
    env: spec.env,
    ...(input.etcDir != null ? { etcDir: input.etcDir } : {}),
    seccomp: input.seccomp,
    rootEntries: input.rootEntries,
    command: ['/bin/sh', '-c', INNER, 'concur-build', ...spec.argv],
    ...(spec.clockOffsetSeconds != null && tools.libfaketime != null ? { clock: { library: tools.libfaketime, offsetSeconds: spec.clockOffsetSeconds } } : {}),
    ...(spec.hostname != null ? { hostname: spec.hostname } : {}),
    ...(spec.timezone != null ? { timezone: spec.timezone } : {})
  })

  const chain: string[] = []
  if (tools.nice != null) chain.push(tools.nice, '-n', '19')
  if (tools.ionice != null) chain.push(tools.ionice, '-c', '3', '-t')
  chain.push(tools.prlimit,
    // RLIMIT_FSIZE: a single file cannot exceed the disk limit even where
    // the tmpfs is bigger than the cgroup lets it grow
    `--fsize=${limits.diskBytes}`,
    `--nofile=${input.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES}`,
    '--core=0')
  if (input.cgroupProcsFiles == null) {
    // Weak tier (opt-in): rlimits are all there is. RLIMIT_AS is per process
    // and NPROC per uid, so both are coarse stand-ins for the cgroup limits.
    chain.push(`--as=${limits.memoryBytes}`, `--nproc=${limits.processes}`)
  }
  chain.push('--')
  if (spec.cpus != null) {
    // never run a build asked to see fewer CPUs on all of them
    if (tools.taskset == null) throw new SandboxUnavailableError('taskset is not installed: this worker cannot run a build on fewer CPUs', INSTALL_TASKSET)
    if (input.cpuList?.length !== spec.cpus) throw new SandboxUnavailableError(`a build asked to run on ${spec.cpus} CPU(s) needs that many CPU numbers to pin it to, got ${input.cpuList?.length ?? 0}`, 'Give the worker at least as many CPUs as the job asks for')
    // sched_setaffinity, inherited by bwrap and every process of the build.
    // Not a limit (a build may widen its own mask again; the cgroup quota is
    // the limit): it is what `nproc` and affinity-reading runtimes report.
    // (no `--`: taskset takes none; the next word is an absolute path)
    chain.push(tools.taskset, '-c', input.cpuList.join(','))
  }
  if (input.dropTo != null) {
    // never run bwrap as root because setpriv went missing
    if (tools.setpriv == null) throw new SandboxUnavailableError('setpriv is needed to drop root before bwrap', 'Install util-linux (apt-get install util-linux)')
    chain.push(tools.setpriv,
      '--reuid', String(input.dropTo.uid),
      '--regid', String(input.dropTo.gid),
      '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--')
  }
  chain.push(tools.bwrap, ...bargs)

  return {
    file: tools.sh,
    args: ['-c', OUTER, 'concur-sandbox', ...(input.cgroupProcsFiles ?? []), '--', ...chain],
    env: { PATH: HOST_PATH }
  }
}
