import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed, SandboxOutputError } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, makeBuildDir, marker, processesWithMarker, removeDir, spec } from './helpers.ts'

/**
 * A few MiB of tmpfs hold millions of empty files: copied out one by one they
 * would become millions of files on the worker's disk. The copy-out stops at
 * its entry cap and leaves nothing behind.
 */
describe('an output made of many empty files', () => {
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

  it('stops the copy-out at the entry cap with a typed error, and no partial output is left', async () => {
    const mark = marker('entries')
    const outputDir = join(outParent, 'out')
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
  })
})
