import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, processesWithMarker, removeDir, spec } from './helpers.ts'

describe('wall clock', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('a build that ignores SIGTERM and leaves setsid/nohup grandchildren is killed entirely at its limit', async () => {
    const mark = marker('wallclock')
    // every process is a `sh ... <mark>` so /proc/*/cmdline finds it
    const stubborn = 'trap "" TERM HUP INT; while :; do sleep 1; done'
    const script = [
      'trap "" TERM HUP INT',
      `setsid sh -c '${stubborn}' "$0" &`,
      `nohup sh -c '${stubborn}' "$0" >/dev/null 2>&1 &`,
      `(setsid sh -c '${stubborn}' "$0" &) &`,
      'sleep 0.5; echo grandchildren-started',
      stubborn
    ].join('\n')
    let seenWhileRunning = -1
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', script, mark],
      buildDir,
      limits: limits({ wallSeconds: 3 })
    }), {
      onLog: chunk => {
        if (chunk.toString().includes('grandchildren-started')) {
          void processesWithMarker(mark).then(p => { seenWhileRunning = p.length })
        }
      }
    })
    expect(res.reason).toBe('wall-clock')
    expect(res.exitCode).toBe(null)
    // proves the scan can see the build's processes (1 main + 3 grandchildren + sleeps' parents + bwrap chain)
    expect(seenWhileRunning).toBeGreaterThanOrEqual(4)
    await expectNoLeftovers(mark, res)
  })

  it('in the weak (rlimits-only) tier the pid namespace still takes the whole tree down', async () => {
    const mark = marker('wallclock-weak')
    const stubborn = 'trap "" TERM HUP INT; while :; do sleep 1; done'
    const script = `trap "" TERM; setsid sh -c '${stubborn}' "$0" & echo started; ${stubborn}`
    let seenWhileRunning = -1
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', script, mark],
      buildDir,
      tier: 'namespaces',
      limits: limits({ wallSeconds: 2 })
    }), {
      onLog: chunk => {
        if (chunk.toString().includes('started')) void processesWithMarker(mark).then(p => { seenWhileRunning = p.length })
      }
    })
    expect(res.reason).toBe('wall-clock')
    expect(res.cgroupPaths).toEqual([])
    expect(seenWhileRunning).toBeGreaterThanOrEqual(2)
    await expectNoLeftovers(mark, res)
  })
})
