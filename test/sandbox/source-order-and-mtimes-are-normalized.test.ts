import { afterEach, describe, expect, it } from 'vitest'
import { mkdir, writeFile, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { makeBuildDir, removeDir, spec, text } from './helpers.ts'

const NAMES = ['zeta', 'alpha', 'mid', 'beta', 'omega', 'b-1', 'b.2', 'b']

describe('inputs reach /build in a normalized form', () => {
  const dirs: string[] = []
  afterEach(async () => { await Promise.all(dirs.splice(0).map(removeDir)) })

  async function input (order: string[], mtime: number): Promise<string> {
    const dir = await makeBuildDir()
    dirs.push(dir)
    await mkdir(join(dir, 'src'), { mode: 0o755 })
    for (const n of order) {
      await writeFile(join(dir, 'src', n), n, { mode: 0o644 })
      await utimes(join(dir, 'src', n), mtime, mtime)
    }
    return dir
  }

  it('unsorted directory listings and file mtimes are the same whatever order and times the input had', async () => {
    const script = 'ls -f src; stat -c "%n %Y" src/* | sort'
    const env = { SOURCE_DATE_EPOCH: '1234567890' }
    const a = await runSandboxed(await spec({ argv: ['sh', '-c', script], buildDir: await input(NAMES, 1_600_000_000), env }))
    const b = await runSandboxed(await spec({ argv: ['sh', '-c', script], buildDir: await input([...NAMES].reverse(), 1_700_000_000), env }))
    expect(a.exitCode).toBe(0)
    expect(b.exitCode).toBe(0)
    expect(text(a)).toBe(text(b))
    expect(text(a)).toContain('src/alpha 1234567890')
  })
})
