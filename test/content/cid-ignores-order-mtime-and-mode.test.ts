/**
 * Directory order, mtimes and modes do not reach the CID (they differ between
 * honest workers), while content and names do.
 */
import { chmod, mkdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
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
const variantArb = fc.record({
  reverse: fc.boolean(),
  fileMode: fc.constantFrom(0o600, 0o644, 0o755, 0o444),
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
  it('same tree written in another order with other mtimes and modes gives the same CID', async () => {
    await fc.assert(fc.asyncProperty(treeArb, variantArb, variantArb, async (tree, a, b) => {
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
    await fc.assert(fc.asyncProperty(treeArb, variantArb, async (tree, v) => {
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
