import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { makeBuildDir, removeDir, spec } from './helpers.ts'

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

// A measurement, printed, never asserted (timing thresholds make tests flaky).
describe('start overhead (printed, not asserted)', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('median of 10 sandboxed `true` vs 10 bare spawns of `true`', async () => {
    const bare: number[] = []
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      const code = await new Promise<number | null>(resolve => spawn('true', { stdio: 'ignore' }).on('close', resolve))
      bare.push(performance.now() - t)
      expect(code).toBe(0)
    }
    const boxed: number[] = []
    const s = await spec({ argv: ['true'], buildDir })
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      const res = await runSandboxed(s)
      boxed.push(performance.now() - t)
      expect(res.exitCode).toBe(0)
    }
    console.log(`sandbox start overhead: bare spawn median ${median(bare).toFixed(1)} ms, sandboxed (${s.tier}) median ${median(boxed).toFixed(1)} ms`)
  })
})
