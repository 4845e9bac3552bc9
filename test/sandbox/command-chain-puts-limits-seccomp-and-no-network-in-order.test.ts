/**
 * The command line a build is spawned with, built without bwrap (pure):
 * the cgroups are joined before anything runs, the priority and rlimits wrap
 * the uid drop, the uid drop wraps bwrap, and bwrap unshares every namespace
 * (no network) and reads its seccomp filter, its status and its block fd on
 * the fds the worker watches.
 */
import { describe, expect, it } from 'vitest'
import { commandChain, SandboxUnavailableError } from '../../src/sandbox/index.ts'
import type { CommandChainInput, SandboxTools } from '../../src/sandbox/index.ts'
import { HOST_PATH, INNER, OUTER } from '../../src/sandbox/command-chain.ts'
import { MiB, limits } from './helpers.ts'

const TOOLS: SandboxTools = {
  sh: '/bin/sh',
  bwrap: '/usr/bin/bwrap',
  bwrapVersion: 'bubblewrap 0.9.0',
  bwrapFeatures: { disableUserns: true, tmpfsSize: true, seccomp: true, jsonStatusFd: true },
  nice: '/usr/bin/nice',
  ionice: '/usr/bin/ionice',
  prlimit: '/usr/bin/prlimit',
  setpriv: '/usr/bin/setpriv'
}

const PROCS = ['/sys/fs/cgroup/w/concur-build-x/cgroup.procs']

function input (over: Partial<CommandChainInput> = {}): CommandChainInput {
  return {
    tools: TOOLS,
    spec: {
      argv: ['make', '-j2', 'all'],
      buildDir: '/scratch/in',
      env: { PATH: '/evil/bin', FOO: 'bar' },
      environment: { kind: 'host' },
      limits: limits({ memoryBytes: 512 * MiB, diskBytes: 100 * MiB, processes: 77 })
    },
    cgroupProcsFiles: PROCS,
    dropTo: { uid: 0x71234567, gid: 0x71234567 },
    rootEntries: ['--symlink', 'usr/bin', '/bin'],
    etcDir: '/scratch/etc-1',
    seccomp: true,
    ...over
  }
}

/** the value right after `flag` in `args` (the first occurrence) */
function after (args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag)
  return i < 0 ? undefined : args[i + 1]
}

describe('the spawned command chain', () => {
  it('is sh joining the cgroups, then nice, ionice, prlimit, setpriv and bwrap, in that order', () => {
    const c = commandChain(input())
    expect(c.file).toBe('/bin/sh')
    expect(c.env).toEqual({ PATH: HOST_PATH })
    const bwrapAt = c.args.indexOf('/usr/bin/bwrap')
    // everything up to bwrap, exactly
    expect(c.args.slice(0, bwrapAt + 1)).toEqual([
      '-c', OUTER, 'concur-sandbox',
      ...PROCS, '--',
      '/usr/bin/nice', '-n', '19',
      '/usr/bin/ionice', '-c', '3', '-t',
      '/usr/bin/prlimit', `--fsize=${100 * MiB}`, '--nofile=4096', '--core=0', '--',
      '/usr/bin/setpriv', '--reuid', String(0x71234567), '--regid', String(0x71234567),
      '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--',
      '/usr/bin/bwrap'
    ])
    // the outer shell joins every file it is given before it execs the rest
    expect(OUTER).toContain('echo $$ > "$1"')
    expect(OUTER.indexOf('echo $$')).toBeLessThan(OUTER.indexOf('exec "$@"'))
  })

  it('in the cgroup tier leaves memory and processes to the cgroup; in the weak tier puts them in rlimits', () => {
    const strong = commandChain(input()).args
    expect(strong.some(a => a.startsWith('--as='))).toBe(false)
    expect(strong.some(a => a.startsWith('--nproc='))).toBe(false)

    const weak = commandChain(input({ cgroupProcsFiles: null })).args
    // no cgroup file before the first '--'
    expect(weak.slice(0, weak.indexOf('--'))).toEqual(['-c', OUTER, 'concur-sandbox'])
    const prlimitAt = weak.indexOf('/usr/bin/prlimit')
    expect(weak.slice(prlimitAt, prlimitAt + 7)).toEqual([
      '/usr/bin/prlimit', `--fsize=${100 * MiB}`, '--nofile=4096', '--core=0', `--as=${512 * MiB}`, '--nproc=77', '--'
    ])
  })

  it('drops to no uid when the worker is not root, and refuses a drop without setpriv', () => {
    const args = commandChain(input({ dropTo: null, maxOpenFiles: 99 })).args
    expect(args).not.toContain('/usr/bin/setpriv')
    expect(args).toContain('--nofile=99')
    // bwrap directly follows prlimit's '--'
    expect(args[args.indexOf('/usr/bin/bwrap') - 1]).toBe('--')
    expect(args[args.indexOf('/usr/bin/bwrap') - 2]).toBe('--core=0')

    const noSetpriv: SandboxTools = { ...TOOLS }
    delete noSetpriv.setpriv
    expect(() => commandChain(input({ tools: noSetpriv }))).toThrow(SandboxUnavailableError)
  })

  it('without nice and ionice starts at prlimit', () => {
    const bare: SandboxTools = { ...TOOLS }
    delete bare.nice
    delete bare.ionice
    const args = commandChain(input({ tools: bare })).args
    expect(args[args.indexOf('--') + 1]).toBe('/usr/bin/prlimit')
  })

  it('runs bwrap with every namespace unshared (no network), the seccomp filter and the status and block fds', () => {
    const args = commandChain(input()).args
    const b = args.slice(args.indexOf('/usr/bin/bwrap') + 1)
    expect(b.slice(0, 3)).toEqual(['--unshare-all', '--unshare-user', '--die-with-parent'])
    expect(b).toContain('--disable-userns')
    expect(b).not.toContain('--share-net')
    expect(after(b, '--json-status-fd')).toBe('3')
    expect(after(b, '--seccomp')).toBe('4')
    expect(after(b, '--block-fd')).toBe('5')
    // both writable places are sized tmpfs of the disk limit
    expect(b.join(' ')).toContain(`--size ${100 * MiB} --tmpfs /tmp`)
    expect(b.join(' ')).toContain(`--size ${100 * MiB} --tmpfs /build`)
    expect(b.join(' ')).toContain('--ro-bind /scratch/in /.concur/in')
    expect(b.join(' ')).toContain('--remount-ro /')
    // the root entries follow /usr, the generated /etc files are bound
    expect(b.join(' ')).toContain('--ro-bind /usr /usr --symlink usr/bin /bin --dir /etc')
    expect(b.join(' ')).toContain('--ro-bind /scratch/etc-1/passwd /etc/passwd')
    // the job's command comes last, after every option
    const cmdAt = b.lastIndexOf('--')
    expect(b.slice(cmdAt)).toEqual(['--', '/bin/sh', '-c', INNER, 'concur-build', 'make', '-j2', 'all'])
    expect(b.indexOf('--seccomp')).toBeLessThan(cmdAt)
    expect(b.indexOf('--block-fd')).toBeLessThan(cmdAt)
  })

  it('clears the environment and the normalized variables win over the job\'s', () => {
    const args = commandChain(input()).args
    const b = args.slice(args.indexOf('/usr/bin/bwrap') + 1)
    const clear = b.indexOf('--clearenv')
    expect(clear).toBeGreaterThan(0)
    const setenv: Record<string, string> = {}
    b.forEach((a, i) => { if (a === '--setenv' && i > clear) setenv[b[i + 1]!] = b[i + 2]! })
    expect(setenv.PATH).toBe('/usr/local/bin:/usr/bin:/bin')
    expect(setenv.FOO).toBe('bar')
    expect(setenv.TZ).toBe('UTC')
    expect(setenv.HOME).toBe('/tmp/home')
  })

  it('without the filter passes no --seccomp; a rootfs gets its own entries and no host /usr', () => {
    const args = commandChain(input({
      seccomp: false,
      spec: { ...input().spec, environment: { kind: 'rootfs', root: '/images/busybox' } },
      rootEntries: ['--ro-bind', '/images/busybox/bin', '/bin']
    })).args
    const b = args.slice(args.indexOf('/usr/bin/bwrap') + 1)
    expect(b).not.toContain('--seccomp')
    expect(b.join(' ')).not.toContain('--ro-bind /usr /usr')
    expect(b.join(' ')).toContain('--ro-bind /images/busybox/bin /bin --proc /proc')
    expect(after(b, '--json-status-fd')).toBe('3')
  })
})
