import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { MiB, expectNoLeftovers, limits, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

describe('disk limit', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('a 1 GiB file under a 100 MiB disk limit fails', async () => {
    const mark = marker('disk')
    const script = [
      'if head -c 1073741824 /dev/zero > big; then echo big=written; else echo big=failed; fi',
      'echo "big-size=$(wc -c < big)"',
      'if head -c 1073741824 /dev/zero > /tmp/big; then echo tmpbig=written; else echo tmpbig=failed; fi',
      'rm -f big /tmp/big',
      // many files each under RLIMIT_FSIZE: only the tmpfs size stops these
      'i=0; ok=0; while [ $i -lt 4 ]; do if head -c 41943040 /dev/zero > part$i; then ok=$((ok+1)); fi; i=$((i+1)); done',
      'echo "parts-written=$ok"',
      'echo "total=$(cat part* | wc -c)"',
      'test "$ok" -lt 4'
    ].join('\n')
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', script, mark],
      buildDir,
      limits: limits({ diskBytes: 100 * MiB, memoryBytes: 512 * MiB })
    }))
    const log = text(res)
    expect(res.reason).toBe('exited')
    expect(log).toContain('big=failed')
    expect(log).toContain('tmpbig=failed')
    const size = Number(/big-size=(\d+)/.exec(log)?.[1])
    expect(size).toBeLessThanOrEqual(100 * MiB)
    const total = Number(/total=(\d+)/.exec(log)?.[1])
    expect(total).toBeLessThanOrEqual(100 * MiB)
    expect(res.exitCode).toBe(0) // `test "$ok" -lt 4`: not all 160 MiB of parts fit
    await expectNoLeftovers(mark, res)
  })
})
