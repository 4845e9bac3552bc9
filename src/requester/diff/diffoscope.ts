/**
 * Runs diffoscope (https://diffoscope.org) on one pair of files when it is
 * installed. diffoscope unpacks archives, disassembles binaries and names
 * the exact bytes that differ: what a human needs to see why two honest
 * builds disagree. It is optional; without it the caller gets a hint.
 */
import { spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, mkdir, stat } from 'node:fs/promises'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { AbortError, DiffoscopeFailedError, DiffoscopeTimeoutError } from './errors.ts'

export const DIFFOSCOPE_HINT = 'apt-get install --no-install-recommends diffoscope-minimal'
export const DEFAULT_DIFFOSCOPE_TIMEOUT_MS = 5 * 60_000
const MAX_STDERR = 64 * 1024

export interface DiffoscopeOptions {
  signal?: AbortSignal
  /** kill diffoscope after this long (default 5 min) */
  timeoutMs?: number
  /** executable name or path (default "diffoscope", looked up on PATH) */
  command?: string
}

export type DiffoscopeResult =
  | { installed: false, hint: string }
  | {
    installed: true
    /** exit code 1: the files differ; 0: identical */
    differ: boolean
    exitCode: number
    /** the text report (may be absent when the files are identical) */
    text: string
    json: string
    executable: string
  }

/** The executable's absolute path, or undefined. A PATH lookup like `which`, without a shell. */
export async function findExecutable (command: string): Promise<string | undefined> {
  const candidates = command.includes('/')
    ? [resolve(command)]
    : (process.env.PATH ?? '').split(delimiter).filter(d => isAbsolute(d)).map(d => join(d, command))
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK)
      if ((await stat(candidate)).isFile()) return candidate
    } catch {}
  }
  return undefined
}

/**
 * `diffoscope --text <outDir>/diffoscope.txt --json <outDir>/diffoscope.json A B`.
 * Exit 0 (same) and 1 (differ) are results; anything else is a
 * DiffoscopeFailedError. Runs in its own process group so that a timeout or
 * abort kills the helpers it spawned (unzip, objdump...) too.
 */
export async function diffoscopeReport (fileA: string, fileB: string, outDir: string, options: DiffoscopeOptions = {}): Promise<DiffoscopeResult> {
  const { signal } = options
  signal?.throwIfAborted()
  const executable = await findExecutable(options.command ?? 'diffoscope')
  if (executable === undefined) return { installed: false, hint: DIFFOSCOPE_HINT }
  await mkdir(outDir, { recursive: true })
  const text = resolve(outDir, 'diffoscope.txt')
  const json = resolve(outDir, 'diffoscope.json')
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIFFOSCOPE_TIMEOUT_MS
  // absolute paths: a relative name starting with "-" would be read as an option
  const args = ['--text', text, '--json', json, resolve(fileA), resolve(fileB)]

  const exitCode = await new Promise<number>((resolvePromise, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true })
    let stderr = ''
    let settled = false
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.slice(0, MAX_STDERR - stderr.length)
    })
    const killGroup = (): void => {
      if (child.pid === undefined) return
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }
    const finish = (err: Error | null, code?: number): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (err != null) reject(err)
      else resolvePromise(code as number)
    }
    const timer = setTimeout(() => {
      killGroup()
      finish(new DiffoscopeTimeoutError(timeoutMs))
    }, timeoutMs)
    const onAbort = (): void => {
      killGroup()
      finish(signal?.reason instanceof Error ? signal.reason : new AbortError(signal?.reason))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.on('error', err => { finish(err) })
    child.on('close', (code, sig) => {
      if (code === 0 || code === 1) finish(null, code)
      else finish(new DiffoscopeFailedError(code, sig, stderr))
    })
  })
  return { installed: true, differ: exitCode === 1, exitCode, text, json, executable }
}
