import { mkdtemp, chmod, readdir, readFile, rm, access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { expect } from 'vitest'
import { probeSandbox } from '../../src/sandbox/index.ts'
import type { SandboxLimits, SandboxResult, SandboxSpec, SandboxTier } from '../../src/sandbox/index.ts'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** a string unique to one test, put in the build's argv so its processes can be found in /proc */
export function marker (name: string): string {
  return `concur-mark-${name}-${randomBytes(6).toString('hex')}`
}

export function limits (overrides: Partial<SandboxLimits> = {}): SandboxLimits {
  return { memoryBytes: 256 * MiB, cpus: 1, diskBytes: 64 * MiB, wallSeconds: 30, processes: 128, ...overrides }
}

/** an empty, world-readable input dir (the build runs as an unprivileged host uid) */
export async function makeBuildDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'concur-sbx-test-'))
  await chmod(dir, 0o755)
  return dir
}

export async function removeDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

let tierPromise: Promise<SandboxTier> | undefined

/**
 * The tier these tests run in. No sandbox is a failure, not a skip: a
 * containment test that silently does not run proves nothing.
 */
export function sandboxTier (): Promise<SandboxTier> {
  tierPromise ??= probeSandbox().then(p => {
    if (p.tier == null) throw new Error(`no sandbox on this machine: ${p.remedy ?? JSON.stringify(p.mechanisms)}`)
    return p.tier
  })
  return tierPromise
}

export async function spec (partial: Partial<SandboxSpec> & Pick<SandboxSpec, 'argv' | 'buildDir'>): Promise<SandboxSpec> {
  return {
    env: {},
    environment: { kind: 'host' },
    limits: limits(),
    tier: await sandboxTier(),
    ...partial
  }
}

/** pids whose command line contains `mark` (any process on the host) */
export async function processesWithMarker (mark: string): Promise<number[]> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const cmdline = await readFile(`/proc/${name}/cmdline`)
      if (cmdline.includes(mark)) found.push(Number(name))
    } catch {}
  }
  return found
}

async function exists (p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}

/** the per-test epilogue: nothing of the build runs and its cgroups are gone */
export async function expectNoLeftovers (mark: string, result: SandboxResult): Promise<void> {
  expect(await processesWithMarker(mark)).toEqual([])
  if (result.tier === 'namespaces+cgroups') expect(result.cgroupPaths.length).toBeGreaterThan(0)
  for (const dir of result.cgroupPaths) expect(await exists(dir), `cgroup ${dir} removed`).toBe(false)
}

export function text (result: SandboxResult): string {
  return result.log.toString('utf8')
}

/**
 * One turn of the event loop through its poll phase, in which libuv accepts
 * every connection the kernel has queued on a listening socket: after a
 * connector has exited, its connection (if it made one) has been counted.
 */
export async function acceptQueued (turns = 10): Promise<void> {
  // libuv may accept one queued connection per poll phase: a few turns
  for (let i = 0; i < turns; i++) await new Promise(resolve => setImmediate(resolve))
}

/** Resolves once `count()` reaches `n`, checked at each 'connection' of the server (an event, not a timer). */
export async function connectionsReach (server: import('node:net').Server, count: () => number, n: number): Promise<void> {
  if (count() >= n) return
  await new Promise<void>((resolve) => {
    const check = (): void => {
      // the counting listener was registered first, so it has run
      if (count() >= n) { server.off('connection', check); resolve() }
    }
    server.on('connection', check)
  })
}
