import { describe, expect, it } from 'vitest'
import { probeSandbox, runSandboxed, validateLimits, SandboxLimitError, buildSeccompFilter, BLOCKED_SYSCALLS_X86_64 } from '../../src/sandbox/index.ts'
import { MiB, limits, makeBuildDir, removeDir, spec } from './helpers.ts'

describe('limits validation', () => {
  it('memory below disk is refused with ERR_BAD_LIMITS (tmpfs pages count against memory)', async () => {
    expect(() => { validateLimits(limits({ memoryBytes: 64 * MiB, diskBytes: 100 * MiB })) }).toThrow(SandboxLimitError)
    const dir = await makeBuildDir()
    try {
      await expect(runSandboxed(await spec({ argv: ['true'], buildDir: dir, limits: limits({ memoryBytes: 64 * MiB, diskBytes: 100 * MiB }) })))
        .rejects.toMatchObject({ code: 'ERR_BAD_LIMITS' })
    } finally {
      await removeDir(dir)
    }
  })

  it('non-positive limits are refused', () => {
    for (const key of ['memoryBytes', 'cpus', 'diskBytes', 'wallSeconds', 'processes'] as const) {
      expect(() => { validateLimits(limits({ [key]: 0 })) }).toThrow(SandboxLimitError)
    }
    expect(() => { validateLimits(limits()) }).not.toThrow()
  })
})

describe('probe', () => {
  it('actually runs every mechanism and reports the tier with details', async () => {
    const p = await probeSandbox()
    console.log('sandbox probe:', JSON.stringify(p, null, 2))
    expect(p.tier).not.toBe(null)
    expect(p.mechanisms.bwrap.ok).toBe(true)
    expect(p.mechanisms.userNamespaces.ok).toBe(true)
    expect(p.mechanisms.networkIsolation.ok).toBe(true)
    expect(p.mechanisms.networkIsolation.detail).toContain('listener saw 0 connections')
    expect(p.mechanisms.uidDrop.ok).toBe(true)
    if (p.tier === 'namespaces+cgroups') expect(p.mechanisms.cgroups.ok).toBe(true)
  })
})

describe('seccomp program', () => {
  it('is one 8-byte instruction per blocked syscall plus the arch/x32 checks and two returns', () => {
    const prog = buildSeccompFilter('x64')
    expect(prog).not.toBe(null)
    const n = new Set(Object.values(BLOCKED_SYSCALLS_X86_64)).size
    expect(prog!.length).toBe((6 + n + 2) * 8)
    // first instruction loads seccomp_data.arch (offset 4), the second compares with AUDIT_ARCH_X86_64
    expect(prog!.readUInt16LE(0)).toBe(0x20)
    expect(prog!.readUInt32LE(4)).toBe(4)
    expect(prog!.readUInt32LE(12)).toBe(0xc000003e)
    expect(buildSeccompFilter('arm64')).toBe(null)
  })
})
