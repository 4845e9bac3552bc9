import { describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { makeBuildDir, marker, processesWithMarker, removeDir, spec } from './helpers.ts'

/**
 * An abort (or the wall clock) can land while the sandbox is still being set
 * up: after bwrap reported its child, before the build was let go. bwrap's
 * child does not die with its parent until it runs the job, so a kill that
 * only reaches bwrap's monitor would leave it behind, or worse, let the job
 * start with no monitor and no wall clock. Aborts at many moments of the
 * set-up must all leave nothing running.
 */
describe('a sandbox killed while it is being set up', () => {
  it('leaves no process behind, whatever the moment (40 aborts from 0 to ~40 ms)', async () => {
    const buildDir = await makeBuildDir()
    const left: string[] = []
    try {
      for (let i = 0; i < 40; i++) {
        const mark = marker(`setup${i}`)
        const ac = new AbortController()
        const running = runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'sleep 60', mark], buildDir, outputDir: `${buildDir}-out${i}` }), { signal: ac.signal })
        // spread the abort over the set-up: immediately, then every ~1 ms
        if (i === 0) ac.abort()
        else setTimeout(() => { ac.abort() }, i)
        const res = await running.catch((err: Error) => err)
        if (!(res instanceof Error)) expect(res.reason).toBe('aborted')
        const pids = await processesWithMarker(mark)
        if (pids.length > 0) left.push(`abort after ${i} ms: ${pids.join(' ')}`)
        for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch {} }
        await removeDir(`${buildDir}-out${i}`)
      }
    } finally {
      await removeDir(buildDir)
    }
    expect(left).toEqual([])
  })
})
