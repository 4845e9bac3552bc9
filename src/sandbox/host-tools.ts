/**
 * Locates the host programs the sandbox is assembled from. Looking a binary
 * up is not a probe: probe.ts actually runs them.
 */
import { access, constants } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { join } from 'node:path'

export interface BwrapFeatures {
  /** `--disable-userns` (bwrap >= 0.8): no nested user namespaces inside */
  disableUserns: boolean
  /** `--size` for tmpfs (bwrap >= 0.6): the disk limit */
  tmpfsSize: boolean
  seccomp: boolean
  jsonStatusFd: boolean
}

export interface HostTools {
  sh: string
  bwrap?: string
  bwrapVersion?: string
  bwrapFeatures: BwrapFeatures
  nice?: string
  ionice?: string
  prlimit?: string
  setpriv?: string
  /**
   * util-linux taskset: pins a build to fewer CPUs (SandboxSpec.cpus).
   * Absent: this host cannot vary the CPUs a build sees.
   */
  taskset?: string
  /**
   * libfaketime (Debian/Ubuntu package `faketime`): preloaded into a build
   * that runs with a clock offset (SandboxSpec.clockOffsetSeconds). Absent:
   * this host cannot vary a build's clock.
   */
  libfaketime?: string
}

/** how to get libfaketime, named wherever a clock offset is refused for want of it */
export const INSTALL_FAKETIME = 'Install libfaketime: apt-get install faketime (Debian/Ubuntu), dnf install libfaketime (Fedora)'

/** how to get taskset, named wherever a CPU count is refused for want of it */
export const INSTALL_TASKSET = 'Install util-linux (apt-get install util-linux)'

const MULTIARCH: Partial<Record<NodeJS.Architecture, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }

// Where distributions put the library (fixed paths, like SEARCH): Debian's
// multiarch directory, Fedora's lib64, Arch's lib, `make install`'s /usr/local.
function libfaketimeCandidates (): string[] {
  const triplet = MULTIARCH[process.arch]
  return [
    ...(triplet != null ? [`/usr/lib/${triplet}/faketime/libfaketime.so.1`] : []),
    '/usr/lib64/faketime/libfaketime.so.1',
    '/usr/lib/faketime/libfaketime.so.1',
    '/usr/local/lib/faketime/libfaketime.so.1'
  ]
}

// Fixed system directories, not the caller's PATH: a worker must not pick up
// a `bwrap` from a project's node_modules/.bin or a user-writable directory.
const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

async function which (name: string): Promise<string | undefined> {
  for (const dir of SEARCH) {
    const p = join(dir, name)
    try {
      await access(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}

function run (file: string, args: string[]): Promise<string> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: 10_000, env: { PATH: SEARCH.join(':') } }, (_err, stdout, stderr) => {
      resolve(`${stdout}${stderr}`)
    })
  })
}

let cached: Promise<HostTools> | undefined

export function detectHostTools (opts: { refresh?: boolean } = {}): Promise<HostTools> {
  if (cached == null || opts.refresh === true) {
    cached = (async () => {
      const tools: HostTools = {
        sh: (await which('sh')) ?? '/bin/sh',
        bwrapFeatures: { disableUserns: false, tmpfsSize: false, seccomp: false, jsonStatusFd: false }
      }
      const bwrap = await which('bwrap')
      if (bwrap != null) {
        tools.bwrap = bwrap
        tools.bwrapVersion = (await run(bwrap, ['--version'])).trim()
        const help = await run(bwrap, ['--help'])
        tools.bwrapFeatures = {
          disableUserns: help.includes('--disable-userns'),
          tmpfsSize: /--size\b/.test(help),
          seccomp: help.includes('--seccomp'),
          jsonStatusFd: help.includes('--json-status-fd')
        }
      }
      for (const name of ['nice', 'ionice', 'prlimit', 'setpriv', 'taskset'] as const) {
        const p = await which(name)
        if (p != null) tools[name] = p
      }
      for (const p of libfaketimeCandidates()) {
        try {
          await access(p, constants.R_OK)
          tools.libfaketime = p
          break
        } catch {}
      }
      return tools
    })()
  }
  return cached
}
