/**
 * The bubblewrap command line for one build. Kept separate from run.ts so the
 * filesystem layout and the normalization can be read in one place.
 * `bwrapRootEntries` looks at the host's (or the rootfs's) top-level entries;
 * `bwrapArgs` is pure.
 */
import { lstat, readlink, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { BwrapFeatures } from './host-tools.ts'
import type { SandboxEnvironment } from './types.ts'

/** the fixed build path: builds that embed their path stay reproducible across workers */
export const BUILD_PATH = '/build'
/** where the prepared source is bound read-only before it is copied into /build */
export const INPUT_PATH = '/.concur/in'
/**
 * where libfaketime is bound read-only for a build with a clock offset: the
 * same path in host and rootfs environments, under /.concur, which a rootfs
 * cannot provide or shadow (RESERVED)
 */
export const FAKETIME_LIBRARY_PATH = '/.concur/libfaketime.so.1'
export const SANDBOX_UID = 1000
export const SANDBOX_GID = 1000
export const SANDBOX_USER = 'builder'
export const SANDBOX_HOSTNAME = 'concur'
export const SANDBOX_HOME = '/tmp/home'

/** file descriptors in the wrapper/bwrap process (node stdio indexes) */
export const FD_JSON_STATUS = 3
export const FD_SECCOMP = 4
/**
 * bwrap waits on this fd (--block-fd) after it has set the sandbox up and
 * before it runs anything of the job: the worker takes its handle on /build
 * in that pause (see build-mount.ts), then writes a byte.
 */
export const FD_BLOCK = 5

/**
 * The normalized environment. The caller's variables come first so these
 * always win: a job cannot choose its PATH, HOME or locale, which is what
 * makes two workers' builds comparable.
 */
export function normalizedEnv (env: Record<string, string>, timezone?: string): Record<string, string> {
  return {
    ...env,
    // UTC unless the job asks replicas to vary the timezone (SandboxSpec.timezone)
    TZ: timezone ?? 'UTC',
    LC_ALL: 'C.UTF-8',
    LANG: 'C.UTF-8',
    HOME: SANDBOX_HOME,
    USER: SANDBOX_USER,
    LOGNAME: SANDBOX_USER,
    PYTHONHASHSEED: '0',
    PATH: '/usr/local/bin:/usr/bin:/bin',
    TMPDIR: '/tmp'
  }
}

/**
 * The variables that move a build's wall clock by `offsetSeconds`, with
 * libfaketime preloaded (bound at FAKETIME_LIBRARY_PATH). They are set in the
 * sandbox only: the worker, bwrap and the wrapper chain outside keep the real
 * clock, and they win over the job's own env like normalizedEnv does.
 *
 * - FAKETIME "+N" / "-N": a relative offset in seconds (libfaketime README
 *   §4d). Every process computes real time + N, so children agree with their
 *   parents and time still runs: FAKETIME_DONT_RESET only matters for
 *   "start at" times, which are not used.
 * - FAKETIME_DONT_FAKE_MONOTONIC=1: only the wall clock moves. Monotonic
 *   clocks measure durations (timeouts, make -j's load checks, JVM/Go
 *   runtimes); moving them too gains nothing and hangs some runtimes.
 * - NO_FAKE_STAT=1: stat() reports files' real times. libfaketime 0.9.10
 *   otherwise adds the offset to the times some stat calls return (fstat,
 *   not statx/fstatat), so `tar` would record the inputs' SOURCE_DATE_EPOCH
 *   mtimes plus the offset: a reproducible build would differ between
 *   replicas (measured: 1700000000 became 1700003600 in a tar member).
 *
 * What the offset reaches (measured, libfaketime 0.9.10, Debian 12): clock
 * reads of dynamically linked programs through libc: `date`, python's
 * time.time(), perl's time, Node's Date.now(), and files stamped from a clock
 * read (`touch` without -d sets "now" through utimensat: the offset mtime is
 * stored). What it does not reach: statically linked programs (busybox-static
 * `date`: LD_PRELOAD needs the dynamic loader), Go programs (their runtime
 * reads the vDSO itself, not libc), setuid programs, and the mtimes the
 * kernel stamps on write(): a tar of files the build wrote, made without
 * --mtime/--clamp-mtime, records the real time. Linux time namespaces
 * (CLONE_NEWTIME) cannot help: they offset CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME only; a "realtime" line in /proc/self/timens_offsets is
 * refused (EINVAL, measured on Linux 6.18).
 */
export function clockOffsetEnv (offsetSeconds: number): Record<string, string> {
  return {
    LD_PRELOAD: FAKETIME_LIBRARY_PATH,
    FAKETIME: offsetSeconds < 0 ? String(offsetSeconds) : `+${offsetSeconds}`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    NO_FAKE_STAT: '1'
  }
}

/**
 * /etc/passwd etc. written to a host temp dir and bound read-only (host
 * environment only). `hostname`: the sandbox's (SandboxSpec.hostname), so
 * /etc/hostname, /etc/hosts and uname agree.
 */
export function generatedEtc (hostname: string = SANDBOX_HOSTNAME): Record<string, string> {
  return {
    passwd: `root:x:0:0:root:/root:/bin/sh\n${SANDBOX_USER}:x:${SANDBOX_UID}:${SANDBOX_GID}:${SANDBOX_USER}:${SANDBOX_HOME}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\n${SANDBOX_USER}:x:${SANDBOX_GID}:\nnogroup:x:65534:\n`,
    hosts: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost\n`,
    hostname: `${hostname}\n`
  }
}

// Host /etc entries a toolchain needs to start (dynamic loader config,
// Debian's alternatives symlinks for awk/cc/...). Nothing with secrets.
const HOST_ETC = ['alternatives', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'nsswitch.conf']
// Top-level names the sandbox provides itself (never taken from a rootfs).
const RESERVED = new Set(['proc', 'dev', 'sys', 'tmp', 'run', 'build', '.concur'])

async function lstatOrNull (p: string): Promise<Awaited<ReturnType<typeof lstat>> | null> {
  try {
    return await lstat(p)
  } catch {
    return null
  }
}

async function rootEntries (root: string, names: string[]): Promise<string[]> {
  const args: string[] = []
  for (const name of names) {
    if (RESERVED.has(name)) continue
    const src = join(root, name)
    const st = await lstatOrNull(src)
    if (st == null) continue
    if (st.isSymbolicLink()) {
      // recreate the link (e.g. /bin -> usr/bin) instead of following it
      args.push('--symlink', await readlink(src), `/${name}`)
    } else if (st.isDirectory() || st.isFile()) {
      args.push('--ro-bind', src, `/${name}`)
    }
  }
  return args
}

export interface BwrapArgsInput {
  features: BwrapFeatures
  environment: SandboxEnvironment
  buildDir: string
  diskBytes: number
  env: Record<string, string>
  /** host directory holding generatedEtc() files (host environment) */
  etcDir?: string
  seccomp: boolean
  /** what `bwrapRootEntries(environment)` returned */
  rootEntries: string[]
  /** the command bwrap executes (the inner wrapper) */
  command: string[]
  /** run with the wall clock moved (clockOffsetEnv): the host's libfaketime and the offset */
  clock?: { library: string, offsetSeconds: number }
  /** the sandbox's hostname; default SANDBOX_HOSTNAME */
  hostname?: string
  /** the zone TZ names; default UTC */
  timezone?: string
}

/**
 * The bwrap arguments that recreate the environment's top-level entries
 * (host: /bin, /lib* ...; rootfs: every entry of its root). This is the only
 * part of the command line that reads the filesystem.
 */
export async function bwrapRootEntries (environment: SandboxEnvironment): Promise<string[]> {
  if (environment.kind === 'host') return await rootEntries('/', ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'])
  return await rootEntries(environment.root, (await readdir(environment.root)).sort())
}

/** The bwrap command line (no I/O: the root entries were found by `bwrapRootEntries`). */
export function bwrapArgs (input: BwrapArgsInput): string[] {
  const a: string[] = [
    // every namespace: no network (only a down-by-default lo), no host IPC,
    // no view of host processes, own hostname, own cgroup view
    '--unshare-all',
    // explicit (not "-try"): the uid drop below and --disable-userns need it
    '--unshare-user',
    '--die-with-parent',
    // setsid(): the build cannot push keystrokes into a terminal (TIOCSTI)
    '--new-session',
    '--hostname', input.hostname ?? SANDBOX_HOSTNAME,
    '--uid', String(SANDBOX_UID),
    '--gid', String(SANDBOX_GID)
  ]
  if (input.features.disableUserns) a.push('--disable-userns')

  if (input.environment.kind === 'host') {
    a.push('--ro-bind', '/usr', '/usr')
    a.push(...input.rootEntries)
    a.push('--dir', '/etc')
    for (const name of HOST_ETC) a.push('--ro-bind-try', join('/etc', name), join('/etc', name))
    if (input.etcDir != null) {
      for (const name of Object.keys(generatedEtc())) a.push('--ro-bind', join(input.etcDir, name), join('/etc', name))
    }
  } else {
    a.push(...input.rootEntries)
  }

  a.push('--proc', '/proc', '--dev', '/dev')
  // Both writable places are sized tmpfs: writes cannot reach the host disk,
  // and their pages are charged to the build's memory cgroup.
  a.push('--size', String(input.diskBytes), '--tmpfs', '/tmp')
  a.push('--dir', SANDBOX_HOME)
  a.push('--size', String(input.diskBytes), '--tmpfs', BUILD_PATH)
  a.push('--ro-bind', input.buildDir, INPUT_PATH)
  if (input.clock != null) a.push('--ro-bind', input.clock.library, FAKETIME_LIBRARY_PATH)
  // bwrap's own root is a tmpfs writable by the sandbox uid; without this a
  // build could write unbounded data to / outside the sized tmpfs.
  a.push('--remount-ro', '/')
  a.push('--chdir', BUILD_PATH)

  a.push('--clearenv')
  const env = { ...normalizedEnv(input.env, input.timezone), ...(input.clock != null ? clockOffsetEnv(input.clock.offsetSeconds) : {}) }
  for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v)

  a.push('--json-status-fd', String(FD_JSON_STATUS))
  a.push('--block-fd', String(FD_BLOCK))
  if (input.seccomp) a.push('--seccomp', String(FD_SECCOMP))
  a.push('--', ...input.command)
  return a
}
