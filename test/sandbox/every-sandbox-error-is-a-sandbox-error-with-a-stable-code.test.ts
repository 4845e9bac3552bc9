/**
 * Every error the sandbox throws is a SandboxError with the code its class
 * names (callers branch on `code`, never on messages), and src/sandbox throws
 * no bare Error of its own.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  CgroupError, isSandboxError, SandboxError, SandboxLimitError, SandboxOutputError, SandboxScratchError,
  SandboxSpecError, SandboxUnavailableError
} from '../../src/sandbox/index.ts'
import type { SandboxErrorCode } from '../../src/sandbox/index.ts'

describe('sandbox errors', () => {
  it('each class extends SandboxError with its own code and name', () => {
    const cause = new Error('EACCES')
    const cases: Array<[SandboxError, SandboxErrorCode, string]> = [
      [new SandboxUnavailableError('no bwrap', 'install it'), 'ERR_NO_SANDBOX', 'SandboxUnavailableError'],
      [new SandboxLimitError('bad limits'), 'ERR_BAD_LIMITS', 'SandboxLimitError'],
      [new SandboxSpecError('bad spec'), 'ERR_BAD_SPEC', 'SandboxSpecError'],
      [new CgroupError('no cgroup', { cause }), 'ERR_CGROUP', 'CgroupError'],
      [new SandboxOutputError('not copied'), 'ERR_SANDBOX_OUTPUT', 'SandboxOutputError'],
      [new SandboxScratchError('squatted', 'set TMPDIR'), 'ERR_SCRATCH_UNSAFE', 'SandboxScratchError']
    ]
    for (const [err, code, name] of cases) {
      expect(err).toBeInstanceOf(SandboxError)
      expect(err).toBeInstanceOf(Error)
      expect(isSandboxError(err)).toBe(true)
      expect(err.code).toBe(code)
      expect(err.name).toBe(name)
    }
    expect(new Set(cases.map(c => c[1])).size).toBe(cases.length)
    expect((cases[3]![0]).cause).toBe(cause)
  })

  it('the errors with a remedy keep it apart and in the message', () => {
    const e = new SandboxUnavailableError('bubblewrap (bwrap) is not installed', 'apt-get install bubblewrap')
    expect(e.remedy).toBe('apt-get install bubblewrap')
    expect(e.message).toBe('bubblewrap (bwrap) is not installed\napt-get install bubblewrap')
    const s = new SandboxScratchError('the scratch directory is a symlink', 'remove it')
    expect(s.remedy).toBe('remove it')
    expect(s.message).toBe('the scratch directory is a symlink\nremove it')
  })

  it('isSandboxError refuses anything else', () => {
    expect(isSandboxError(new Error('x'))).toBe(false)
    expect(isSandboxError({ code: 'ERR_NO_SANDBOX', message: 'look-alike' })).toBe(false)
    expect(isSandboxError(null)).toBe(false)
    expect(isSandboxError('ERR_CGROUP')).toBe(false)
  })

  it('src/sandbox constructs no bare Error, TypeError or RangeError', () => {
    const dir = resolve(fileURLToPath(import.meta.url), '../../../src/sandbox')
    const files = readdirSync(dir).filter(f => f.endsWith('.ts'))
    expect(files).toContain('run.ts')
    for (const f of files) {
      const code = readFileSync(resolve(dir, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
      expect(code, f).not.toMatch(/new (?:Error|TypeError|RangeError|SyntaxError)\(/)
    }
  })
})
