/**
 * SandboxProcess, driven by a shell that plays bwrap (no bwrap needed): it
 * reads the child pid and exit status from the json-status fd whole lines
 * only, releases the block fd once it has the child, writes the seccomp
 * filter to its fd, and records the wall clock and an abort as what ended
 * the run.
 */
import { describe, expect, it } from 'vitest'
import { classifyRun, SandboxProcess } from '../../src/sandbox/index.ts'
import type { CommandChain, SandboxProcessOptions } from '../../src/sandbox/index.ts'

function fakeBwrap (script: string): CommandChain {
  return { file: '/bin/sh', args: ['-c', script], env: { PATH: '/usr/bin:/bin' } }
}

function options (over: Partial<SandboxProcessOptions> = {}): SandboxProcessOptions {
  return { seccompFilter: null, takeBuildMount: false, diskBytes: 1024 * 1024, wallSeconds: 30, logCapBytes: 1 << 20, ...over }
}

async function run (p: SandboxProcess): Promise<void> {
  try {
    await p.waitForEnd()
  } finally {
    await p.close()
  }
}

describe('SandboxProcess', () => {
  it('takes the pid and status from split json lines, releases the block fd and keeps the log', async () => {
    const chunks: string[] = []
    // the pid is written in two pieces: a reader that took partial lines would see "{"child-p"
    // and nothing, or a shorter pid; the job waits on fd 5 until the pid was taken
    const p = SandboxProcess.spawn(fakeBwrap([
      'printf \'{"child-p\' >&3',
      'sleep 0.1',
      'printf \'id": %d}\\n\' $$ >&3',
      'released=$(head -c 1 <&5)',
      'echo "released=$released"',
      'echo to-stderr >&2',
      'printf \'{"exit-code": 3}\\n{"exit-code": 9}\\n\' >&3',
      'exit 0'
    ].join('\n')), options({ onLog: c => { chunks.push(c.toString('utf8')) } }))
    await run(p)
    const o = p.observed()
    expect(o).toEqual({ exitStatus: 3, wallClockFired: false, interrupted: null, outerSignal: null, failure: null })
    const log = p.log.toBuffer().toString('utf8')
    expect(log).toContain('released=1')
    expect(log).toContain('to-stderr')
    expect(chunks.join('')).toBe(log)
    expect(classifyRun({ ...o, oomKills: 0, pidsLimitHit: false })).toEqual({
      ok: true, status: { exitCode: 3, signal: null, reason: 'exited', oomKilled: false, pidsLimitHit: false }
    })
  })

  it('writes the seccomp filter to fd 4', async () => {
    const p = SandboxProcess.spawn(fakeBwrap('cat <&4'), options({ seccompFilter: Buffer.from('BPF-PROGRAM-BYTES') }))
    await run(p)
    expect(p.log.toBuffer().toString('utf8')).toBe('BPF-PROGRAM-BYTES')
    // bwrap exited by itself without a status: it could not set up
    expect(classifyRun({ ...p.observed(), oomKills: 0, pidsLimitHit: false })).toMatchObject({ ok: true, status: { reason: 'setup-failed' } })
  })

  it('kills the tree when the wall clock runs out', async () => {
    const started = Date.now()
    const p = SandboxProcess.spawn(fakeBwrap('echo started; exec sleep 30'), options({ wallSeconds: 0.3 }))
    await run(p)
    expect(Date.now() - started).toBeLessThan(10_000)
    const o = p.observed()
    expect(o).toMatchObject({ exitStatus: null, wallClockFired: true, interrupted: null, outerSignal: 'SIGKILL' })
    expect(p.log.toBuffer().toString('utf8')).toBe('started\n')
    expect(classifyRun({ ...o, oomKills: 0, pidsLimitHit: false })).toMatchObject({ ok: true, status: { reason: 'wall-clock' } })
  })

  it('kills the tree on abort, also when the signal was aborted before the spawn', async () => {
    const ac = new AbortController()
    const p = SandboxProcess.spawn(fakeBwrap('exec sleep 30'), options({ signal: ac.signal }))
    setTimeout(() => { ac.abort() }, 100)
    await run(p)
    expect(p.observed()).toMatchObject({ exitStatus: null, wallClockFired: false, interrupted: 'aborted', outerSignal: 'SIGKILL' })

    const early = SandboxProcess.spawn(fakeBwrap('exec sleep 30'), options({ signal: AbortSignal.abort() }))
    await run(early)
    expect(early.observed()).toMatchObject({ interrupted: 'aborted', outerSignal: 'SIGKILL' })
  })
})
