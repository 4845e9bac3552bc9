/**
 * A handle on the sandbox's /build mount, and the end of its processes.
 *
 * The output of a build is copied out of the sandbox and then signed by the
 * worker, so it must be read when nothing of the build can still change it:
 * a helper left running could otherwise swap a directory for a symlink to
 * the host between the check and the copy, and the worker would copy host
 * files into an artifact it signs. So:
 *
 * 1. bwrap is started with --block-fd: it sets up the mounts, then waits
 *    before it runs anything of the job. While it waits, the worker opens
 *    /proc/<init>/root/build. Nothing of the job has run yet, so the handle
 *    is the sandbox's own /build tmpfs and nothing an untrusted process chose.
 * 2. The build runs; when it ends the pid namespace is torn down (its init
 *    gone: the kernel kills and reaps every process in it first) and, with
 *    a cgroup, the cgroup is empty.
 * 3. Only then is the tree read, through the handle (/proc/self/fd/N): the
 *    mount lives on while the handle is open, and no process can reach it.
 */
import { open, readFile, statfs } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { constants } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { SandboxOutputError } from './errors.ts'

/** statfs f_type of tmpfs (linux/magic.h) */
const TMPFS_MAGIC = 0x01021994

/** Identity of a process that survives pid reuse: pid plus its start time (clock ticks since boot). */
export interface ProcessIdentity { pid: number, startTime: string }

/** the fields of /proc/<pid>/stat we need, or null when the process is gone */
async function procStat (pid: number): Promise<{ state: string, startTime: string } | null> {
  let text: string
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so the
  // fields are counted from the last ')'. starttime is field 22 overall.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const state = rest[0]
  const startTime = rest[19]
  if (state == null || startTime == null) return null
  return { state, startTime }
}

export async function processIdentity (pid: number): Promise<ProcessIdentity | null> {
  const s = await procStat(pid)
  return s == null ? null : { pid, startTime: s.startTime }
}

/** true while the process is alive (not gone, not a zombie, not reused by another process) */
export async function isRunning (id: ProcessIdentity): Promise<boolean> {
  const s = await procStat(id.pid)
  return s != null && s.startTime === id.startTime && s.state !== 'Z' && s.state !== 'X'
}

/** SIGKILL the process if it is still the one we started (never a process that reused its pid) */
export async function killIfRunning (id: ProcessIdentity): Promise<void> {
  if (await isRunning(id)) {
    try { process.kill(id.pid, 'SIGKILL') } catch {}
  }
}

/**
 * Waits until the pid namespace whose init is `init` is gone. When a pid
 * namespace's init exits, the kernel kills every other process in it and
 * waits until all are reaped before the init becomes a zombie
 * (zap_pid_ns_processes), so "init is a zombie or gone" means no process of
 * the namespace is left. Polled: no event reports it to a non-parent.
 */
export async function waitForNamespaceEnd (init: ProcessIdentity, options: { timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  for (let i = 0; await isRunning(init); i++) {
    if (Date.now() > deadline) throw new SandboxOutputError(`the sandbox's pid namespace (init ${init.pid}) did not end; its output is not read`)
    await sleep(i < 50 ? 1 : 10)
  }
}

/** "major:minor" of a dev_t, as /proc/self/mountinfo writes it (glibc's encoding) */
function majorMinor (dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn)
  return `${major}:${minor}`
}

/** device numbers of every mount this process can see */
async function ownMountDevices (): Promise<Set<string>> {
  const devs = new Set<string>()
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const dev = line.split(' ')[2]
    if (dev != null) devs.add(dev)
  }
  return devs
}

/**
 * Opens the sandbox's /build while bwrap waits on its block fd (before any of
 * the job runs). bwrap reports its init's pid before it has set the new root
 * up, so until then /proc/<pid>/root/build is the host's /build (usually
 * absent) or absent: the handle is taken only once it is a tmpfs of the
 * build's size that is mounted nowhere in this process's mount namespace,
 * i.e. the sandbox's own.
 */
export async function openBuildMount (init: ProcessIdentity, buildPath: string, diskBytes: number, options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<FileHandle> {
  const path = `/proc/${init.pid}/root${buildPath}`
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let lastWhy = 'not set up yet'
  // this process's mounts, read once: the sandbox's /build is never among them
  const own = await ownMountDevices()
  for (let i = 0; ; i++) {
    options.signal?.throwIfAborted()
    if (!(await isRunning(init))) throw new SandboxOutputError(`the sandbox ended before its ${buildPath} could be opened (${lastWhy})`)
    if (Date.now() > deadline) throw new SandboxOutputError(`the sandbox's ${buildPath} never appeared (${lastWhy})`)
    let fh: FileHandle | undefined
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW)
      const st = await fh.stat({ bigint: true })
      const fs = await statfs(`/proc/self/fd/${fh.fd}`)
      const dev = majorMinor(st.dev)
      const size = fs.blocks * fs.bsize
      if (fs.type === TMPFS_MAGIC && size >= diskBytes && size < diskBytes + fs.bsize && !own.has(dev)) return fh
      lastWhy = `${path} is not the sandbox's tmpfs yet (type ${fs.type.toString(16)}, ${size} bytes, dev ${dev})`
    } catch (err) {
      lastWhy = (err as Error).message
    }
    await fh?.close()
    await sleep(i < 50 ? 1 : 10)
  }
}
