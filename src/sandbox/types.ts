/**
 * Public types of the build sandbox.
 */

/** Ordered from strongest to weakest; `null` means "refuse to build". */
export type SandboxTier = 'namespaces+cgroups' | 'namespaces'

export interface SandboxLimits {
  /** memory cgroup limit (no swap). Must be >= diskBytes: tmpfs pages are charged to it. */
  memoryBytes: number
  /** CPU quota in cores (may be fractional, e.g. 0.5). */
  cpus: number
  /** size of the /build tmpfs (and of /tmp), and RLIMIT_FSIZE. */
  diskBytes: number
  /** wall clock; past it the whole process tree is killed. */
  wallSeconds: number
  /** max tasks (processes + threads) in the build's cgroup. */
  processes: number
}

export type SandboxEnvironment =
  /** the host's /usr (and /bin, /lib* links) read-only, a minimal generated /etc */
  | { kind: 'host' }
  /**
   * a host directory (e.g. an unpacked image) whose top-level entries become /
   * read-only; it must provide /bin/sh and cp (the wrapper copies the source
   * into /build with `cp -a`), e.g. busybox
   */
  | { kind: 'rootfs', root: string }

export interface SandboxSpec {
  /** the build command, run with cwd /build; argv[0] is looked up in PATH */
  argv: string[]
  /**
   * Host directory holding the prepared input (source tree). It is bound
   * read-only and copied into the /build tmpfs before the command runs. When
   * the worker runs as root the build runs as an unprivileged host uid, so this
   * directory (and its parents) must be world-readable/searchable.
   */
  buildDir: string
  /**
   * Optional host directory (must not exist, its parent must) that receives a
   * copy of /build after the command exits. Symlinks are copied as symlinks,
   * never followed; special files are skipped.
   */
  outputDir?: string
  /** extra environment; the normalized variables (TZ, LC_ALL, HOME, PATH, ...) override it */
  env: Record<string, string>
  environment: SandboxEnvironment
  limits: SandboxLimits
  tier: SandboxTier
  /**
   * Run the build with its wall clock moved by this many whole seconds
   * (libfaketime preloaded inside the sandbox only; see clockOffsetEnv in
   * bwrap-args.ts for what it reaches and what it does not). Absent: the
   * real clock. Needs HostTools.libfaketime, else SandboxUnavailableError.
   */
  clockOffsetSeconds?: number
  /**
   * The sandbox's hostname (bwrap --hostname, and /etc/hostname and
   * /etc/hosts in the host environment). Absent: SANDBOX_HOSTNAME. An RFC
   * 1123 label (letters, digits, inner hyphens; at most 63 characters).
   */
  hostname?: string
  /**
   * The zone TZ names (an IANA name such as Asia/Kolkata). Absent: UTC. The
   * build fails, saying so, when the environment has no
   * /usr/share/zoneinfo/<zone> (a rootfs without tzdata): with no file,
   * libc would quietly run it in UTC, the very thing not to be varied.
   */
  timezone?: string
  /**
   * Run the build on this many CPUs (its affinity mask, set with util-linux
   * taskset before bwrap: `nproc` and every affinity read see it). Absent:
   * every CPU the worker may use. Needs HostTools.taskset and at least this
   * many CPUs in the worker's own affinity mask, else SandboxUnavailableError.
   * The cgroup's CPU quota (limits.cpus) still applies on top.
   */
  cpus?: number
}

export type SandboxEndReason =
  /** the command exited (see exitCode / signal) */
  | 'exited'
  /** killed at limits.wallSeconds */
  | 'wall-clock'
  /** the memory cgroup OOM-killed a process of the build */
  | 'memory'
  /** opts.signal aborted the run; the tree was killed */
  | 'aborted'
  /** the sandbox could not be set up (bwrap failed, source copy failed); see log */
  | 'setup-failed'
  /** the sandbox died without reporting the command's status */
  | 'killed'

export interface SandboxResult {
  /** the command's exit status, null when it died from a signal or never reported */
  exitCode: number | null
  /** the signal that ended the command (as reported by the shell: status 128+n) */
  signal: string | null
  reason: SandboxEndReason
  /** the last `logCapBytes` of stdout+stderr, interleaved in arrival order */
  log: Buffer
  /** true when bytes were dropped from the front of `log` */
  logTruncated: boolean
  durationMs: number
  oomKilled: boolean
  /** true when a fork/clone failed because of limits.processes (cgroup tier only) */
  pidsLimitHit: boolean
  /** the per-build cgroup directories used (all removed before the promise settled) */
  cgroupPaths: string[]
  /** the tier the build actually ran in */
  tier: SandboxTier
}

export interface ProbeMechanism {
  ok: boolean
  detail: string
}
