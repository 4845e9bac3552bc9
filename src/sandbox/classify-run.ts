/**
 * How a run ended, from what the worker saw of it. Pure: the observations are
 * gathered by SandboxProcess (sandbox-process.ts) and the build's cgroup.
 */
import { constants as osConstants } from 'node:os'
import type { SandboxEndReason, SandboxResult } from './types.ts'

/** Why the worker itself stopped the run before it ended (besides the wall clock). */
export type SandboxInterruption = 'aborted' | 'setup-failed'

/** What was seen of one run once every process of it is gone. */
export interface RunObservation {
  /**
   * the job's exit status as bwrap reported it on its json-status fd (host
   * code: the job cannot write there); null when it reported none
   */
  exitStatus: number | null
  /** limits.wallSeconds ran out and the worker killed the tree */
  wallClockFired: boolean
  /**
   * the first of: the caller's signal aborted the run, the set-up failed
   * (the sandbox's /build could not be taken before the job ran); null: neither
   */
  interrupted: SandboxInterruption | null
  /** the signal that ended the outer process (bwrap's monitor); null when it exited */
  outerSignal: string | null
  /** processes the build's memory cgroup OOM-killed (0 without a cgroup) */
  oomKills: number
  /** a fork/clone failed at the cgroup's pids limit (false without a cgroup) */
  pidsLimitHit: boolean
  /** taking /build, tearing the tree down or copying the output out failed */
  failure: Error | null
}

/** The part of a SandboxResult that says how the run ended. */
export type RunStatus = Pick<SandboxResult, 'exitCode' | 'signal' | 'reason' | 'oomKilled' | 'pidsLimitHit'>

/** A run either has a status, or failed in a way runSandboxed rejects with. */
export type RunClassification =
  | { ok: true, status: RunStatus }
  | { ok: false, error: Error }

/**
 * The output is copied only from a job that reported its exit status, that
 * the worker did not stop, and whose tree came down cleanly: anything else
 * is not a build result to sign.
 */
export function outputMayBeCopied (o: Pick<RunObservation, 'exitStatus' | 'wallClockFired' | 'interrupted' | 'failure'>): boolean {
  return o.exitStatus != null && !o.wallClockFired && o.interrupted == null && o.failure == null
}

function signalName (n: number): string | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name
  return null
}

/** bwrap's exit status as the command's exit code, or the signal that ended it */
export function decodeExitStatus (status: number | null): { exitCode: number | null, signal: string | null } {
  if (status == null) return { exitCode: null, signal: null }
  // bwrap reports "killed by signal n" as 128+n
  if (status > 128 && status < 128 + 65) return { exitCode: null, signal: signalName(status - 128) ?? `SIG${status - 128}` }
  return { exitCode: status, signal: null }
}

/** The end reason: the worker's own stop first, then the kernel's, then the job's. */
export function runEndReason (o: Omit<RunObservation, 'pidsLimitHit' | 'failure'>): SandboxEndReason {
  if (o.wallClockFired) return 'wall-clock'
  if (o.interrupted != null) return o.interrupted
  if (o.oomKills > 0 && o.exitStatus !== 0) return 'memory'
  if (o.exitStatus != null) return 'exited'
  // bwrap exits on its own without a status when it cannot set up; a
  // signal means it was killed (the OOM killer, or the worker)
  if (o.outerSignal == null) return 'setup-failed'
  return 'killed'
}

export function classifyRun (o: RunObservation): RunClassification {
  const reason = runEndReason(o)
  // a job that ended on its own but whose output could not be taken (or
  // whose tree would not come down) has no result: the caller gets the error
  if (o.failure != null && reason === 'exited') return { ok: false, error: o.failure }
  return {
    ok: true,
    status: { ...decodeExitStatus(o.exitStatus), reason, oomKilled: o.oomKills > 0, pidsLimitHit: o.pidsLimitHit }
  }
}
