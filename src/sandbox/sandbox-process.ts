/**
 * One spawned sandbox: the outer process and its fds (bwrap's json-status,
 * seccomp and block fds), the handle on its /build (build-mount.ts), the
 * kill of its whole tree, the wall clock and the caller's abort signal.
 * It records what it sees (RunObservation, classify-run.ts); it decides nothing.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { FileHandle } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { FD_JSON_STATUS, FD_SECCOMP, FD_BLOCK, BUILD_PATH } from './bwrap-args.ts'
import { killIfRunning, openBuildMount, processIdentity, waitForNamespaceEnd } from './build-mount.ts'
import type { ProcessIdentity } from './build-mount.ts'
import type { BuildCgroup } from './cgroup.ts'
import type { RunObservation, SandboxInterruption } from './classify-run.ts'
import type { CommandChain } from './command-chain.ts'
import { SandboxOutputError } from './errors.ts'
import { TailBuffer } from './tail-buffer.ts'

export interface SandboxProcessOptions {
  /** written to FD_SECCOMP for bwrap's --seccomp; null: none (the fd is closed) */
  seccompFilter: Buffer | null
  /** take a handle on the sandbox's /build before the job runs (there is output to copy) */
  takeBuildMount: boolean
  /** the /build tmpfs size, by which the sandbox's own mount is recognized */
  diskBytes: number
  /** past this the whole tree is killed */
  wallSeconds: number
  /** bytes of log kept (the tail) */
  logCapBytes: number
  /** called with every chunk of output as it arrives (not capped) */
  onLog?: (chunk: Buffer) => void
  /** the build's cgroup: emptied on every kill */
  cgroup?: Pick<BuildCgroup, 'killAll'>
  signal?: AbortSignal
}

/** What the process itself saw: a RunObservation without the cgroup's counters. */
export type ProcessObservation = Omit<RunObservation, 'oomKills' | 'pidsLimitHit'>

/** how long the last output may take once the tree is gone (see close) */
const STDIO_GRACE_MS = 2000

export class SandboxProcess {
  /** the last logCapBytes of stdout and stderr */
  readonly log: TailBuffer
  private readonly proc: ChildProcess
  private readonly options: SandboxProcessOptions
  private readonly outerExited: Promise<void>
  private readonly stdioClosed: Promise<void>
  private readonly blockStream: Duplex | undefined
  private readonly timer: NodeJS.Timeout
  private readonly onAbort: () => void
  /** the pid bwrap reported for its child: the pid namespace's init */
  private childPid: number | undefined
  private init: ProcessIdentity | undefined
  private exitStatus: number | undefined
  private jsonText = ''
  private killing: Promise<void> | undefined
  private wallClockFired = false
  private interrupted: SandboxInterruption | undefined
  private failure: Error | undefined
  private buildMount: Promise<FileHandle | undefined> | undefined
  private handle: FileHandle | undefined

  private constructor (chain: CommandChain, options: SandboxProcessOptions) {
    this.options = options
    this.log = new TailBuffer(options.logCapBytes)
    const proc = spawn(chain.file, chain.args, {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: chain.env,
      // a new process group, so a terminal's ^C reaches the worker, which then kills the tree
      detached: true
    })
    this.proc = proc
    this.outerExited = new Promise<void>(resolve => proc.on('exit', () => { resolve() }))
    this.stdioClosed = new Promise<void>(resolve => proc.on('close', () => { resolve() }))
    proc.on('error', () => {})

    const onData = (chunk: Buffer): void => {
      this.log.push(chunk)
      options.onLog?.(chunk)
    }
    proc.stdout?.on('data', onData)
    proc.stderr?.on('data', onData)

    this.blockStream = this.fdStream(FD_BLOCK)
    this.blockStream?.on('error', () => {})
    this.blockStream?.resume()

    const jsonStream = this.fdStream(FD_JSON_STATUS)
    jsonStream?.on('data', (c: Buffer) => { this.onJsonStatus(c) })
    jsonStream?.on('error', () => {})

    const seccompStream = this.fdStream(FD_SECCOMP)
    seccompStream?.on('error', () => {})
    // drain the read side too, or the socket never reports its end and the
    // child's 'close' never fires
    seccompStream?.resume()
    if (options.seccompFilter != null) seccompStream?.end(options.seccompFilter)
    else seccompStream?.end()

    this.timer = setTimeout(() => {
      this.wallClockFired = true
      void this.kill()
    }, options.wallSeconds * 1000)
    this.onAbort = (): void => {
      this.interrupted ??= 'aborted'
      void this.kill()
    }
    options.signal?.addEventListener('abort', this.onAbort, { once: true })
    // an abort during the set-up above fired no listener
    if (options.signal?.aborted === true) this.onAbort()
  }

  /** Spawns `chain` and starts watching it (the wall clock runs from here). */
  static spawn (chain: CommandChain, options: SandboxProcessOptions): SandboxProcess {
    return new SandboxProcess(chain, options)
  }

  private fdStream (fd: number): Duplex | undefined {
    return (this.proc.stdio[fd] ?? undefined) as unknown as Duplex | undefined
  }

  private onJsonStatus (c: Buffer): void {
    // bwrap (host code, outside the sandbox) writes one JSON document per
    // line: its child's pid right after clone, the job's exit status at the
    // end. The job cannot write here. Only whole lines are read, so a pid
    // split across two reads is never taken for a shorter one.
    this.jsonText += c.toString('utf8')
    let nl: number
    while ((nl = this.jsonText.indexOf('\n')) >= 0) {
      const line = this.jsonText.slice(0, nl)
      this.jsonText = this.jsonText.slice(nl + 1)
      let doc: Record<string, unknown>
      try { doc = JSON.parse(line) as Record<string, unknown> } catch { continue }
      const pid = doc['child-pid']
      if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && this.childPid == null) {
        this.childPid = pid
        this.buildMount = this.attach(pid)
      }
      const rc = doc['exit-code']
      if (typeof rc === 'number' && Number.isSafeInteger(rc) && this.exitStatus == null) this.exitStatus = rc
    }
  }

  // bwrap stopped before the job: take the handle on /build (when there is
  // output to copy), then let it go on. A failure here kills the sandbox
  // before any of the job has run.
  private async attach (pid: number): Promise<FileHandle | undefined> {
    const { signal } = this.options
    try {
      this.init ??= await processIdentity(pid) ?? undefined
      if (this.init == null) throw new SandboxOutputError('the sandbox ended before it started')
      const fh = this.options.takeBuildMount ? await openBuildMount(this.init, BUILD_PATH, this.options.diskBytes, signal != null ? { signal } : {}) : undefined
      if (this.killing != null) {
        // killed (wall clock, abort) while we were opening: never let the
        // job start; bwrap's child does not die with its monitor until it
        // execs, so it is killed here
        await killIfRunning(this.init)
        await fh?.close()
        return undefined
      }
      this.blockStream?.end('1')
      return fh
    } catch (err) {
      this.failure = err as Error
      this.interrupted ??= signal?.aborted === true ? 'aborted' : 'setup-failed'
      void this.kill()
      return undefined
    }
  }

  /** Kills the whole tree (once; every call returns the same promise). */
  kill (): Promise<void> {
    this.killing ??= (async () => {
      try { this.proc.kill('SIGKILL') } catch {}
      // the pid namespace's init: the kernel takes every process of the
      // namespace down with it (weak tier: the only way; cgroup tier: faster)
      this.init ??= this.childPid != null ? (await processIdentity(this.childPid) ?? undefined) : undefined
      if (this.init != null) await killIfRunning(this.init)
      await this.options.cgroup?.killAll()
    })()
    return this.killing
  }

  /**
   * Resolves once no process of the sandbox is left; rejects when the tree
   * would not come down (then its /build must not be read).
   */
  async waitForEnd (): Promise<void> {
    await this.outerExited
    clearTimeout(this.timer)
    // bwrap's monitor is gone (the job ended, or was killed): take the
    // whole tree down and wait until no process of it is left
    await this.kill()
    this.handle = await this.buildMount
    if (this.init != null) await waitForNamespaceEnd(this.init)
  }

  /** the handle on the sandbox's /build, once waitForEnd resolved (when one was taken) */
  get buildDir (): FileHandle | undefined {
    return this.handle
  }

  /** Records a failure of the run (the first one wins over later ones). */
  fail (err: Error): void {
    this.failure ??= err
  }

  /**
   * Stops the wall clock and the abort listener, frees /build and collects
   * the last output. Call once, after waitForEnd (also when it threw).
   */
  async close (): Promise<void> {
    clearTimeout(this.timer)
    this.options.signal?.removeEventListener('abort', this.onAbort)
    // closing the last handle frees the tmpfs (also when a kill above threw
    // before the handle was taken over)
    await (this.handle ?? await this.buildMount)?.close()
    // Collect the last output. Only a process that escaped every kill could
    // hold the pipes open; never hang the worker on it.
    const grace = setTimeout(() => { for (const s of this.proc.stdio) s?.destroy() }, STDIO_GRACE_MS)
    await this.stdioClosed
    clearTimeout(grace)
  }

  /** SIGKILLs the outer process if it is still running (a last resort when the run threw). */
  killOuter (): void {
    if (this.proc.exitCode == null && this.proc.signalCode == null) {
      try { this.proc.kill('SIGKILL') } catch {}
    }
  }

  observed (): ProcessObservation {
    return {
      exitStatus: this.exitStatus ?? null,
      wallClockFired: this.wallClockFired,
      interrupted: this.interrupted ?? null,
      outerSignal: this.proc.signalCode,
      failure: this.failure ?? null
    }
  }
}
