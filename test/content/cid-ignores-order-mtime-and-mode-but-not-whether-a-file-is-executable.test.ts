/**
 * Directory order, mtimes and modes do not reach the CID (they differ between
 * honest workers), while content and names do, and so does one bit of mode:
 * whether a file is executable (issue 18). Two trees that differ only in it
 * get two CIDs, and an export gives the executable back its bit, so a
 * fetched program runs.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, mkdir, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { addDirectory, exportToDirectory } from '../../src/content/index.ts'
import { MemoryBlockstore, withTempDir } from './helpers.ts'

type Tree = { [name: string]: Uint8Array | Tree }

interface Variant {
  reverse: boolean
  fileMode: number
  dirMode: number
  time: Date
}

async function writeTree (dir: string, tree: Tree, v: Variant): Promise<void> {
  const entries = Object.entries(tree)
  if (v.reverse) entries.reverse()
  for (const [name, value] of entries) {
    const path = join(dir, name)
    if (value instanceof Uint8Array) {
      await writeFile(path, value)
      await chmod(path, v.fileMode)
      await utimes(path, v.time, v.time)
    } else {
      await mkdir(path)
      await writeTree(path, value, v)
      await chmod(path, v.dirMode)
      await utimes(path, v.time, v.time)
    }
  }
}

const nameArb = fc.stringMatching(/^[a-z.][a-z0-9._-]{0,6}$/).filter(n => n !== '.' && n !== '..')
const treeArb = fc.letrec<{ tree: Tree }>(tie => ({
  tree: fc.dictionary(nameArb, fc.oneof({ depthSize: 'small' }, fc.uint8Array({ maxLength: 48 }), tie('tree')), { maxKeys: 4 })
})).tree
// modes without any execute bit, and modes with one: within a family, the CID is the same
const PLAIN_MODES = [0o600, 0o644, 0o444, 0o664]
const EXECUTABLE_MODES = [0o755, 0o700, 0o775, 0o744]
const variantArb = (modes: number[]) => fc.record({
  reverse: fc.boolean(),
  fileMode: fc.constantFrom(...modes),
  dirMode: fc.constantFrom(0o700, 0o755, 0o775),
  time: fc.date({ min: new Date(0), max: new Date(4102444800000), noInvalidDate: true })
})

function firstFile (tree: Tree): string[] | undefined {
  for (const [name, value] of Object.entries(tree)) {
    if (value instanceof Uint8Array) return [name]
    const inner = firstFile(value)
    if (inner != null) return [name, ...inner]
  }
  return undefined
}

describe('CID independence from order, mtime and mode', () => {
  it('same tree written in another order with other mtimes and modes (executable or not alike) gives the same CID', async () => {
    const pair = fc.boolean().chain(executable => { const m = executable ? EXECUTABLE_MODES : PLAIN_MODES; return fc.tuple(variantArb(m), variantArb(m)) })
    await fc.assert(fc.asyncProperty(treeArb, pair, async (tree, [a, b]) => {
      await withTempDir(async tmp => {
        await mkdir(join(tmp, 'a'))
        await mkdir(join(tmp, 'b'))
        await writeTree(join(tmp, 'a'), tree, a)
        await writeTree(join(tmp, 'b'), tree, b)
        const ca = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
        const cb = await addDirectory(new MemoryBlockstore(), join(tmp, 'b'))
        expect(cb.cid.toString()).toBe(ca.cid.toString())
        expect(cb.files).toBe(ca.files)
      })
    }), { numRuns: 30 })
  })

  it('changing one byte of one file changes the CID', async () => {
    await fc.assert(fc.asyncProperty(treeArb, variantArb(PLAIN_MODES), async (tree, v) => {
      const path = firstFile(tree)
      fc.pre(path != null)
      await withTempDir(async tmp => {
        await mkdir(join(tmp, 'a'))
        await writeTree(join(tmp, 'a'), tree, v)
        const before = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
        await chmod(join(tmp, 'a', ...(path as string[])), 0o644)
        await writeFile(join(tmp, 'a', ...(path as string[])), 'changed-content-that-no-generated-file-has-because-it-is-long-enough')
        const after = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
        expect(after.cid.toString()).not.toBe(before.cid.toString())
      })
    }), { numRuns: 15 })
  })

  it('two trees that differ only in whether one file is executable get two CIDs', async () => {
    await fc.assert(fc.asyncProperty(treeArb, fc.constantFrom(...PLAIN_MODES), fc.constantFrom(...EXECUTABLE_MODES), async (tree, plain, executable) => {
      const path = firstFile(tree)
      fc.pre(path != null)
      await withTempDir(async tmp => {
        await mkdir(join(tmp, 'a'))
        await writeTree(join(tmp, 'a'), tree, { reverse: false, fileMode: plain, dirMode: 0o755, time: new Date(0) })
        const before = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
        await chmod(join(tmp, 'a', ...(path as string[])), executable)
        const after = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
        expect(after.cid.toString()).not.toBe(before.cid.toString())
      })
    }), { numRuns: 15 })
  })

  it('an exported executable keeps its bit and runs; a plain file does not get one', async () => {
    await withTempDir(async tmp => {
      await mkdir(join(tmp, 'src', 'bin'), { recursive: true })
      await writeFile(join(tmp, 'src', 'configure'), '#!/bin/sh\necho configured\n')
      await chmod(join(tmp, 'src', 'configure'), 0o700)
      await writeFile(join(tmp, 'src', 'bin', 'hello'), '#!/bin/sh\necho hello\n')
      await chmod(join(tmp, 'src', 'bin', 'hello'), 0o755)
      await writeFile(join(tmp, 'src', 'README'), 'read me\n')
      await chmod(join(tmp, 'src', 'README'), 0o600)
      const bs = new MemoryBlockstore()
      const added = await addDirectory(bs, join(tmp, 'src'))
      await exportToDirectory(bs, added.cid, join(tmp, 'out'))
      expect((await stat(join(tmp, 'out', 'configure'))).mode & 0o777).toBe(0o755)
      expect((await stat(join(tmp, 'out', 'bin', 'hello'))).mode & 0o777).toBe(0o755)
      expect((await stat(join(tmp, 'out', 'README'))).mode & 0o777).toBe(0o644)
      const run = await promisify(execFile)(join(tmp, 'out', 'bin', 'hello'))
      expect(run.stdout).toBe('hello\n')
      // and the exported tree adds back to the same CID
      expect((await addDirectory(new MemoryBlockstore(), join(tmp, 'out'))).cid.toString()).toBe(added.cid.toString())
    })
  })

  it('renaming an entry changes the CID', async () => {
    await withTempDir(async tmp => {
      await mkdir(join(tmp, 'a'))
      await writeFile(join(tmp, 'a', 'one'), 'x')
      const before = await addDirectory(new MemoryBlockstore(), join(tmp, 'a'))
      await mkdir(join(tmp, 'b'))
      await writeFile(join(tmp, 'b', 'two'), 'x')
      const after = await addDirectory(new MemoryBlockstore(), join(tmp, 'b'))
      expect(after.cid.toString()).not.toBe(before.cid.toString())
    })
  })
})
