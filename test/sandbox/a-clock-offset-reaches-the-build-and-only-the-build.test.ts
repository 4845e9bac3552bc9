/**
 * Replicas that start within milliseconds of each other hide a build that
 * records the time (issue 19): a job may ask replicas to vary the clock, and
 * each worker then runs the build with a clock offset. This proves the offset
 * reaches the build's clock reads, and nothing else: not the worker, not the
 * inputs' normalized mtimes, not a build run without one.
 */
import { existsSync } from 'node:fs'
import { utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { commandChain, probeSandbox, runSandboxed, SandboxUnavailableError } from '../../src/sandbox/index.ts'
import { detectHostTools } from '../../src/sandbox/host-tools.ts'
import type { SandboxResult } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

const tools = await detectHostTools()
const NO_FAKETIME = tools.libfaketime == null
  ? 'libfaketime is not installed (apt-get install faketime): the clock offset cannot be tested here'
  : ''
const SDE = 1_700_000_000
/** well inside the +1 h..+72 h a worker derives, and far beyond the seconds a run takes */
const OFFSET = 100_000
const BUSYBOX = '/bin/busybox'

/** SDE as GNU tar lists it (TZ=UTC in the sandbox) */
const SDE_LISTED = new Date(SDE * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')

/** `key=<integer>` lines of the log */
function reads (res: SandboxResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of text(res).matchAll(/^(\w+)=(-?\d+)$/gm)) out[m[1]!] = Number(m[2])
  return out
}

/** runs `script` and returns its reads with the real time (whole seconds) read before and after */
async function run (buildDir: string, script: string, clockOffsetSeconds?: number): Promise<{ res: SandboxResult, seen: Record<string, number>, before: number, after: number }> {
  const mark = marker('clock')
  const before = Math.floor(Date.now() / 1000)
  const res = await runSandboxed(await spec({
    argv: ['/bin/sh', '-c', script, mark],
    buildDir,
    env: { SOURCE_DATE_EPOCH: String(SDE) },
    ...(clockOffsetSeconds != null ? { clockOffsetSeconds } : {})
  }))
  const after = Math.ceil(Date.now() / 1000)
  expect(res.reason, text(res)).toBe('exited')
  expect(res.exitCode, text(res)).toBe(0)
  await expectNoLeftovers(mark, res)
  return { res, seen: reads(res), before, after }
}

const SCRIPT = [
  'echo "date=$(date +%s)"',
  'echo "input=$(stat -c %Y input.txt)"',
  // what tar records (it reads mtimes with fstat, which libfaketime would offset)
  'tar cf /tmp/in.tar input.txt && echo "tarred $(tar tvf /tmp/in.tar --full-time)"',
  `if [ -x ${BUSYBOX} ]; then echo "static=$(${BUSYBOX} date +%s)"; fi`
].join('\n')

describe('a clock offset reaches the build and only the build', () => {
  let buildDir = ''
  beforeAll(async () => {
    buildDir = await makeBuildDir()
    await writeFile(join(buildDir, 'input.txt'), 'input\n')
    await utimes(join(buildDir, 'input.txt'), 1_600_000_000, 1_600_000_000)
  })
  afterAll(async () => { await removeDir(buildDir) })

  it.skipIf(NO_FAKETIME !== '')(`a dynamically linked date in the build reads the real time plus the offset (${NO_FAKETIME || 'libfaketime found'})`, async () => {
    const { seen, before, after, res } = await run(buildDir, SCRIPT, OFFSET)
    expect(seen.date).toBeGreaterThanOrEqual(before + OFFSET)
    expect(seen.date).toBeLessThanOrEqual(after + OFFSET)
    // the inputs keep their normalized mtime: a reproducible build that records
    // them (tar, zip) records the same ones whatever the offset
    expect(seen.input).toBe(SDE)
    expect(text(res)).toMatch(new RegExp(`^tarred .* ${SDE_LISTED} input\\.txt$`, 'm'))
  })

  it.skipIf(NO_FAKETIME !== '')('a negative offset moves the clock back as well', async () => {
    const { seen, before, after } = await run(buildDir, SCRIPT, -OFFSET)
    expect(seen.date).toBeGreaterThanOrEqual(before - OFFSET)
    expect(seen.date).toBeLessThanOrEqual(after - OFFSET)
  })

  it.skipIf(NO_FAKETIME !== '' || !existsSync(BUSYBOX))('a statically linked date (busybox-static) does not see it: LD_PRELOAD needs the dynamic loader (the documented limit)', async () => {
    const { seen, before, after } = await run(buildDir, SCRIPT, OFFSET)
    expect(seen.static).toBeGreaterThanOrEqual(before)
    expect(seen.static).toBeLessThanOrEqual(after)
  })

  it('without an offset the build reads the real time', async () => {
    const { seen, before, after, res } = await run(buildDir, `${SCRIPT}\necho "preload=\${LD_PRELOAD-unset}"; echo "faketime=\${FAKETIME-unset}"`)
    expect(seen.date).toBeGreaterThanOrEqual(before)
    expect(seen.date).toBeLessThanOrEqual(after)
    expect(seen.input).toBe(SDE)
    expect(text(res)).toMatch(new RegExp(`^tarred .* ${SDE_LISTED} input\\.txt$`, 'm'))
    expect(text(res)).toContain('preload=unset\nfaketime=unset\n')
  })

  it.skipIf(NO_FAKETIME !== '')('the probe exercises it and reports it usable', async () => {
    const probe = await probeSandbox()
    expect(probe.mechanisms.clockOffset.ok, probe.mechanisms.clockOffset.detail).toBe(true)
  })

  it('a host without libfaketime refuses a build with an offset, naming the remedy (apt-get install faketime)', () => {
    const input = {
      tools: { ...tools, bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit', libfaketime: undefined },
      spec: { argv: ['date'], buildDir, env: {}, environment: { kind: 'host' as const }, limits: limits(), clockOffsetSeconds: OFFSET },
      cgroupProcsFiles: null,
      dropTo: null,
      rootEntries: [],
      seccomp: false
    }
    let caught: unknown
    try { commandChain(input) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(SandboxUnavailableError)
    expect((caught as SandboxUnavailableError).remedy).toContain('apt-get install faketime')
    // without an offset the same host builds
    expect(() => commandChain({ ...input, spec: { ...input.spec, clockOffsetSeconds: undefined } })).not.toThrow()
  })
})
