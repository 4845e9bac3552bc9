import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { GiB, MiB, expectNoLeftovers, limits, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

// python3 `b'x' * n` writes every page (a bytearray could stay lazily zero-mapped);
// without python3, awk doubling a string does the same.
const HOG = existsSync('/usr/bin/python3')
  ? ['/usr/bin/python3', '-c', `b = b"x" * ${2 * GiB}; print("allocated", len(b))`]
  : ['/bin/sh', '-c', 'awk \'BEGIN { s = "x"; while (length(s) < 2147483648) s = s s; print "allocated", length(s) }\'']

describe('memory limit', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('a 2 GiB allocation under a 256 MiB limit is OOM-killed and the worker carries on', async () => {
    const mark = marker('oom')
    const res = await runSandboxed(await spec({
      argv: [...HOG, mark],
      buildDir,
      limits: limits({ memoryBytes: 256 * MiB, diskBytes: 16 * MiB, wallSeconds: 60 })
    }))
    expect(text(res)).not.toContain('allocated')
    expect(res.exitCode).not.toBe(0)
    if (res.tier === 'namespaces+cgroups') {
      expect(res.oomKilled).toBe(true)
      expect(res.reason).toBe('memory')
    }
    await expectNoLeftovers(mark, res)

    // the worker (this process) is fine and can run the next build
    const next = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'echo next-build-ok'], buildDir }))
    expect(next.reason).toBe('exited')
    expect(next.exitCode).toBe(0)
    expect(text(next)).toContain('next-build-ok')
  })
})
