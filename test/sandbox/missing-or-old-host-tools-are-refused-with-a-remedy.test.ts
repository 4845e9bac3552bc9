/**
 * The sandbox is assembled from host tools; a missing or too old one is a
 * refusal with a remedy (checked on a described host, no bwrap needed).
 */
import { describe, expect, it } from 'vitest'
import { requireSandboxTools, SandboxUnavailableError } from '../../src/sandbox/index.ts'
import type { SandboxTools } from '../../src/sandbox/index.ts'

type Tools = Parameters<typeof requireSandboxTools>[0]

const FULL: Tools = {
  sh: '/bin/sh',
  bwrap: '/usr/bin/bwrap',
  bwrapVersion: 'bubblewrap 0.5.0',
  bwrapFeatures: { disableUserns: false, tmpfsSize: true, seccomp: true, jsonStatusFd: true },
  prlimit: '/usr/bin/prlimit',
  setpriv: '/usr/bin/setpriv'
}

function refusal (tools: Tools, isRoot: boolean): SandboxUnavailableError {
  try {
    requireSandboxTools(tools, isRoot)
  } catch (err) {
    expect(err).toBeInstanceOf(SandboxUnavailableError)
    return err as SandboxUnavailableError
  }
  throw new Error('expected a refusal')
}

describe('host tools', () => {
  it('a complete host passes, as the same tools', () => {
    const t: SandboxTools = requireSandboxTools(FULL, true)
    expect(t).toEqual(FULL)
    expect(requireSandboxTools({ ...FULL, setpriv: undefined }, false).bwrap).toBe('/usr/bin/bwrap')
  })

  it('no bwrap: install bubblewrap', () => {
    const e = refusal({ ...FULL, bwrap: undefined }, false)
    expect(e.code).toBe('ERR_NO_SANDBOX')
    expect(e.message).toContain('bubblewrap (bwrap) is not installed')
    expect(e.remedy).toContain('apt-get install bubblewrap')
  })

  it('a bwrap without --size or --json-status-fd: install >= 0.6, naming the version found', () => {
    for (const missing of ['tmpfsSize', 'jsonStatusFd'] as const) {
      const e = refusal({ ...FULL, bwrapFeatures: { ...FULL.bwrapFeatures, [missing]: false } }, false)
      expect(e.message).toContain('bubblewrap 0.5.0 lacks --size / --json-status-fd')
      expect(e.remedy).toBe('Install bubblewrap >= 0.6')
    }
  })

  it('no prlimit: install util-linux', () => {
    const e = refusal({ ...FULL, prlimit: undefined }, false)
    expect(e.message).toContain('prlimit is not installed')
    expect(e.remedy).toContain('util-linux')
  })

  it('root without setpriv is refused (bwrap would run as root); not root, it is not needed', () => {
    const e = refusal({ ...FULL, setpriv: undefined }, true)
    expect(e.message).toContain('setpriv is needed to drop root before bwrap')
    expect(() => requireSandboxTools({ ...FULL, setpriv: undefined }, false)).not.toThrow()
  })
})
