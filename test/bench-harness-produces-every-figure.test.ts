import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const RUN = fileURLToPath(new URL('./bench/run.ts', import.meta.url))
const OUT = fileURLToPath(new URL('../bench-results/quick.json', import.meta.url))
// every row of DESIGN §10
const ROWS = ['import', 'fetch', 'fetch-providers', 'gc', 'submit', 'gossip', 'verify', 'rss', 'sandbox', 'install', 'flood']

describe('npm run bench -- --quick', () => {
  // keeps the harness from rotting: every DESIGN §10 row is measured, with a
  // ratio and a target. It asserts that figures exist, never what they are.
  it('produces every row of DESIGN §10 with a finite ratio and a target', async () => {
    const startedAt = Date.now()
    let stderr = ''
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [RUN, '--quick'], { stdio: ['ignore', 'ignore', 'pipe'] })
      child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
      child.on('exit', resolve)
    })
    expect(code, stderr).toBe(0)
    // the JSON must be this run's, not one left over from an earlier run
    expect((await stat(OUT)).mtimeMs).toBeGreaterThanOrEqual(startedAt - 1000)
    const report = JSON.parse(await readFile(OUT, 'utf8')) as { quick: boolean, rows: Array<{ id: string, ratio: number, target: string, figure: string, pass: unknown }> }
    expect(report.quick).toBe(true)
    expect(report.rows.map(r => r.id).sort(), stderr).toEqual([...ROWS].sort())
    for (const r of report.rows) {
      expect(Number.isFinite(r.ratio), r.id).toBe(true)
      expect(r.target.length, r.id).toBeGreaterThan(0)
      expect(r.figure.length, r.id).toBeGreaterThan(0)
      expect(typeof r.pass, r.id).toBe('boolean')
    }
  }, 420_000) // a guard against a hung harness (the bench stops itself at 5 min), not a measured threshold
})
