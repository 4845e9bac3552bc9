import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, removeDir, spec } from './helpers.ts'

describe('process limit', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('a fork bomb hits limits.processes, the run ends and nothing of it survives', async () => {
    const mark = marker('forkbomb')
    // every fork of this sh keeps the marker in its cmdline
    const bomb = 'f() { f | f & }; f; sleep 3; echo main-shell-done'
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', bomb, mark],
      buildDir,
      limits: limits({ processes: 64, wallSeconds: 6 })
    }))
    expect(['exited', 'wall-clock']).toContain(res.reason)
    if (res.tier === 'namespaces+cgroups') expect(res.pidsLimitHit).toBe(true)
    await expectNoLeftovers(mark, res)
  })
})
