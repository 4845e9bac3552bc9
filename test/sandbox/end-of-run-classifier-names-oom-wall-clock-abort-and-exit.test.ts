/**
 * The end of a run, named from what was observed (pure, no bwrap): the
 * worker's own stop (wall clock, abort, failed set-up) first, then the
 * memory cgroup's OOM kill, then the job's status; a job that ended on its
 * own but whose output or teardown failed is an error, not a result.
 */
import { describe, expect, it } from 'vitest'
import { classifyRun, decodeExitStatus, outputMayBeCopied, SandboxOutputError } from '../../src/sandbox/index.ts'
import type { RunObservation } from '../../src/sandbox/index.ts'

function obs (over: Partial<RunObservation> = {}): RunObservation {
  return {
    exitStatus: 0,
    wallClockFired: false,
    interrupted: null,
    outerSignal: null,
    oomKills: 0,
    pidsLimitHit: false,
    failure: null,
    ...over
  }
}

function status (over: Partial<RunObservation>): unknown {
  const c = classifyRun(obs(over))
  if (!c.ok) throw new Error(`expected a status, got ${String(c.error)}`)
  return c.status
}

describe('the end-of-run classifier', () => {
  it('names a job that exited on its own, with its code', () => {
    expect(status({ exitStatus: 0 })).toEqual({ exitCode: 0, signal: null, reason: 'exited', oomKilled: false, pidsLimitHit: false })
    expect(status({ exitStatus: 2 })).toEqual({ exitCode: 2, signal: null, reason: 'exited', oomKilled: false, pidsLimitHit: false })
    // the wrapper's "cannot copy the source in" is an exit status like any other
    expect(status({ exitStatus: 125 })).toMatchObject({ exitCode: 125, reason: 'exited' })
  })

  it('turns bwrap\'s 128+n into the signal that ended the job', () => {
    expect(status({ exitStatus: 137 })).toEqual({ exitCode: null, signal: 'SIGKILL', reason: 'exited', oomKilled: false, pidsLimitHit: false })
    expect(decodeExitStatus(143)).toEqual({ exitCode: null, signal: 'SIGTERM' })
    expect(decodeExitStatus(139)).toEqual({ exitCode: null, signal: 'SIGSEGV' })
    // a number with no name still says it was a signal
    expect(decodeExitStatus(128 + 40)).toEqual({ exitCode: null, signal: 'SIG40' })
    // 128 itself and anything past 128+64 are plain exit codes
    expect(decodeExitStatus(128)).toEqual({ exitCode: 128, signal: null })
    expect(decodeExitStatus(128 + 65)).toEqual({ exitCode: 193, signal: null })
    expect(decodeExitStatus(null)).toEqual({ exitCode: null, signal: null })
  })

  it('names an OOM kill "memory" unless the job still exited 0', () => {
    expect(status({ exitStatus: 137, oomKills: 1 })).toEqual({ exitCode: null, signal: 'SIGKILL', reason: 'memory', oomKilled: true, pidsLimitHit: false })
    expect(status({ exitStatus: 1, oomKills: 3 })).toMatchObject({ exitCode: 1, reason: 'memory', oomKilled: true })
    // the OOM killer took bwrap itself: no status at all
    expect(status({ exitStatus: null, outerSignal: 'SIGKILL', oomKills: 1 })).toMatchObject({ exitCode: null, signal: null, reason: 'memory' })
    // a child was OOM-killed but the job handled it and succeeded
    expect(status({ exitStatus: 0, oomKills: 1 })).toEqual({ exitCode: 0, signal: null, reason: 'exited', oomKilled: true, pidsLimitHit: false })
  })

  it('names the wall clock first, over an abort, a failed set-up and an OOM kill', () => {
    expect(status({ wallClockFired: true, exitStatus: 137 })).toMatchObject({ reason: 'wall-clock', signal: 'SIGKILL' })
    expect(status({ wallClockFired: true, exitStatus: null, outerSignal: 'SIGKILL' })).toMatchObject({ reason: 'wall-clock', exitCode: null, signal: null })
    expect(status({ wallClockFired: true, interrupted: 'aborted' })).toMatchObject({ reason: 'wall-clock' })
    expect(status({ wallClockFired: true, interrupted: 'setup-failed' })).toMatchObject({ reason: 'wall-clock' })
    expect(status({ wallClockFired: true, oomKills: 1, exitStatus: 137 })).toMatchObject({ reason: 'wall-clock', oomKilled: true })
  })

  it('names an abort and a failed set-up over the job\'s status and an OOM kill', () => {
    expect(status({ interrupted: 'aborted', exitStatus: null, outerSignal: 'SIGKILL' })).toMatchObject({ reason: 'aborted' })
    expect(status({ interrupted: 'aborted', exitStatus: 0 })).toMatchObject({ reason: 'aborted', exitCode: 0 })
    expect(status({ interrupted: 'aborted', oomKills: 1, exitStatus: 137 })).toMatchObject({ reason: 'aborted', oomKilled: true })
    expect(status({ interrupted: 'setup-failed', exitStatus: null, outerSignal: 'SIGKILL' })).toMatchObject({ reason: 'setup-failed' })
  })

  it('tells a bwrap that could not set up from one that was killed', () => {
    // no status and bwrap exited by itself: it could not set the sandbox up
    expect(status({ exitStatus: null, outerSignal: null })).toEqual({ exitCode: null, signal: null, reason: 'setup-failed', oomKilled: false, pidsLimitHit: false })
    expect(status({ exitStatus: null, outerSignal: 'SIGKILL' })).toEqual({ exitCode: null, signal: null, reason: 'killed', oomKilled: false, pidsLimitHit: false })
  })

  it('passes the pids limit through', () => {
    expect(status({ exitStatus: 2, pidsLimitHit: true })).toEqual({ exitCode: 2, signal: null, reason: 'exited', oomKilled: false, pidsLimitHit: true })
  })

  it('makes a failed copy-out or teardown of a job that exited an error, and ignores it for a stopped one', () => {
    const failure = new SandboxOutputError('the build left more than 10 entries in its directory: not copied')
    const c = classifyRun(obs({ exitStatus: 0, failure }))
    expect(c).toEqual({ ok: false, error: failure })
    if (!c.ok) expect(c.error).toBe(failure)
    // a memory kill with a failure is still a result (nothing to copy anyway)
    expect(classifyRun(obs({ exitStatus: 137, oomKills: 1, failure }))).toMatchObject({ ok: true, status: { reason: 'memory' } })
    expect(classifyRun(obs({ wallClockFired: true, failure }))).toMatchObject({ ok: true, status: { reason: 'wall-clock' } })
    expect(classifyRun(obs({ interrupted: 'setup-failed', exitStatus: null, failure }))).toMatchObject({ ok: true, status: { reason: 'setup-failed' } })
  })

  it('lets the output be copied only from a job that reported its status, was not stopped and came down cleanly', () => {
    expect(outputMayBeCopied(obs({ exitStatus: 0 }))).toBe(true)
    // a failing build's output is still its output
    expect(outputMayBeCopied(obs({ exitStatus: 1 }))).toBe(true)
    expect(outputMayBeCopied(obs({ exitStatus: null }))).toBe(false)
    expect(outputMayBeCopied(obs({ wallClockFired: true }))).toBe(false)
    expect(outputMayBeCopied(obs({ interrupted: 'aborted' }))).toBe(false)
    expect(outputMayBeCopied(obs({ interrupted: 'setup-failed' }))).toBe(false)
    expect(outputMayBeCopied(obs({ failure: new SandboxOutputError('the sandbox ended before it started') }))).toBe(false)
  })
})
