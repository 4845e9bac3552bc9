import { access, lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed, SandboxOutputError } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, MiB, processesWithMarker, removeDir, spec } from './helpers.ts'

/**
 * What a build leaves in /build is copied to the worker's disk. A small
 * tmpfs can stand for far more than its size: millions of empty files, hard
 * links to one big file, sparse files. The copy-out stops at its caps (entries;
 * bytes = the job's disk limit, counted per name) and leaves nothing behind;
 * and what it copies is private to the worker, whatever modes the build chose
 * (only whether a file is executable is kept: owner-only, 0700).
 */
describe('copy-out of a hostile output', () => {
  let buildDir = ''
  let outParent = ''
  beforeAll(async () => {
    buildDir = await makeBuildDir()
    outParent = await makeBuildDir()
  })
  afterAll(async () => {
    await removeDir(buildDir)
    await removeDir(outParent)
  })

  it('many empty files: stops at the entry cap with a typed error, and no partial output is left', async () => {
    const mark = marker('entries')
    const outputDir = join(outParent, 'entries')
    const script = 'mkdir d && cd d && i=0; while [ $i -lt 3000 ]; do : > f$i; i=$((i+1)); done'
    const err = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir }), { maxOutputEntries: 1000 })
      .then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(SandboxOutputError)
    expect(err?.message).toContain('more than 1000 entries')
    await expect(access(outputDir)).rejects.toThrow()
    expect(await processesWithMarker(mark)).toEqual([])

    // control: the same build under a cap it fits copies every file
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir }), { maxOutputEntries: 5000 })
    expect(res.exitCode).toBe(0)
    await access(join(outputDir, 'd', 'f2999'))
    await expectNoLeftovers(mark, res)
    await removeDir(outputDir)
  })

  it('hard links and sparse files: a 16 MiB disk cannot become hundreds of MiB on the host', async () => {
    const mark = marker('amplify')
    const outputDir = join(outParent, 'amplify')
    const script = [
      'head -c 4194304 /dev/zero > big',
      'i=0; while [ $i -lt 100 ]; do ln big link$i; i=$((i+1)); done',
      'i=0; while [ $i -lt 20 ]; do truncate -s 15M sparse$i; i=$((i+1)); done'
    ].join('\n')
    const err = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir, limits: limits({ diskBytes: 16 * MiB }) }))
      .then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(SandboxOutputError)
    expect(err?.message).toMatch(/more than \d+ bytes/)
    await expect(access(outputDir)).rejects.toThrow()
    expect(await processesWithMarker(mark)).toEqual([])
  })

  it('directories nested 300 deep: stops at the depth cap (one open directory per level), nothing left', async () => {
    const mark = marker('deep')
    const outputDir = join(outParent, 'deep')
    const script = 'i=0; while [ $i -lt 300 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; echo bottom > f'
    const err = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir }))
      .then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(SandboxOutputError)
    expect(err?.message).toContain('levels deep')
    await expect(access(outputDir)).rejects.toThrow()
  })

  it('copies are private to the worker: no mode the build chose (0777, 0500) survives the copy but whether a file is executable', async () => {
    const mark = marker('modes')
    const outputDir = join(outParent, 'modes')
    const script = 'mkdir open locked && echo x > open/f && echo y > locked/g && chmod 0777 open open/f && chmod 0500 locked && chmod 0444 locked/g'
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir }))
    expect(res.exitCode).toBe(0)
    const modes: Record<string, number> = {}
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const name of await readdir(dir)) {
        const st = await lstat(join(dir, name))
        modes[`${rel}${name}`] = st.mode & 0o777
        if (st.isDirectory()) await walk(join(dir, name), `${rel}${name}/`)
      }
    }
    await walk(outputDir, '')
    // open/f was 0777: executable, so 0700 (the bit is part of the artifact's identity); locked/g 0444: 0600
    expect(modes).toEqual({ open: 0o700, 'open/f': 0o700, locked: 0o700, 'locked/g': 0o600 })
    await expectNoLeftovers(mark, res)
  })
})
