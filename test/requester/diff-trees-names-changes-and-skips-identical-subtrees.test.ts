/**
 * diffTrees names every differing path (modified, added, removed, type
 * changes, symlink retargets, nested) with sizes and CIDs, and never reads a
 * block of a subtree whose CID is the same on both sides: a counting
 * blockstore wrapper records every read.
 */
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { exporter } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { addBytes, addDirectory, walkDag } from '../../src/content/index.ts'
import { diffTrees } from '../../src/requester/diff/index.ts'
import { noise, withTempDir, writeTree } from './helpers.ts'

/** Records the CID of every block read through it. */
class CountingBlockstore {
  readonly reads: string[] = []
  readonly inner: MemoryBlockstore

  constructor (inner: MemoryBlockstore) {
    this.inner = inner
  }

  get (cid: CID, options?: { signal?: AbortSignal }): ReturnType<MemoryBlockstore['get']> {
    this.reads.push(cid.toString())
    return this.inner.get(cid, options)
  }
}

const MiB = 1 << 20

async function buildTrees (tmp: string, bs: MemoryBlockstore): Promise<{ a: CID, b: CID }> {
  const shared = {
    README: 'same in both\n',
    'big/one.bin': noise('big one', 2 * MiB + 100),
    'big/two.bin': noise('big two', 2 * MiB + 200),
    'big/nested/three.bin': noise('big three', 3 * MiB + 300),
    'big/nested/small.txt': 'small\n'
  }
  const A = join(tmp, 'A')
  const B = join(tmp, 'B')
  await writeTree(A, {
    ...shared,
    'src/lib/util.c': 'int x = 1;\n',
    'src/old.txt': 'going away\n',
    'docs/guide.md': '# guide\n',
    'docs/api/index.md': '# api\n',
    thing: 'a file here\n'
  })
  await writeTree(B, {
    ...shared,
    'src/lib/util.c': 'int x = 2; /* changed */\n',
    'src/lib/new.h': '#define NEW 1\n',
    'thing/inside': 'now a directory\n'
  })
  await symlink('README', join(A, 'link'))
  await symlink('big', join(B, 'link'))
  await mkdir(join(B, 'empty-new-dir'))
  const a = (await addDirectory(bs, A)).cid
  const b = (await addDirectory(bs, B)).cid
  return { a, b }
}

describe('diffTrees', () => {
  it('names the differing paths with sizes and never reads a block of the identical big subtree', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const { a, b } = await buildTrees(tmp, bs)
      const counting = new CountingBlockstore(bs)
      const { entries, blocksRead, truncated } = await diffTrees(counting, a, b)
      expect(truncated).toBe(false)

      const summary = entries.map(e => [e.path, e.change, e.kindA ?? null, e.kindB ?? null, e.sizeA ?? null, e.sizeB ?? null])
      expect(summary).toEqual([
        ['docs', 'removed', 'directory', null, null, null],
        ['empty-new-dir', 'added', null, 'directory', null, null],
        ['link', 'modified', 'symlink', 'symlink', 'README'.length, 'big'.length],
        ['src/lib/new.h', 'added', null, 'file', null, '#define NEW 1\n'.length],
        ['src/lib/util.c', 'modified', 'file', 'file', 'int x = 1;\n'.length, 'int x = 2; /* changed */\n'.length],
        ['src/old.txt', 'removed', 'file', null, 'going away\n'.length, null],
        ['thing', 'type-changed', 'file', 'directory', 'a file here\n'.length, null]
      ])
      // CIDs name exactly the content on each side
      const util = entries.find(e => e.path === 'src/lib/util.c')
      const utilA = await exporter(`${a.toString()}/src/lib/util.c`, bs)
      const utilB = await exporter(`${b.toString()}/src/lib/util.c`, bs)
      expect(util?.cidA).toBe(utilA.cid.toString())
      expect(util?.cidB).toBe(utilB.cid.toString())
      expect(entries.find(e => e.path === 'src/old.txt')?.cidB).toBeUndefined()

      // the reads the function reports are the reads the store saw
      expect(blocksRead).toBe(counting.reads.length)

      // the identical subtrees: not one of their blocks was read, not even their roots
      const big = (await exporter(`${a.toString()}/big`, bs)).cid
      expect(big.toString()).toBe((await exporter(`${b.toString()}/big`, bs)).cid.toString())
      const bigBlocks = new Set<string>()
      for await (const c of walkDag(bs, big)) bigBlocks.add(c.toString())
      expect(bigBlocks.size).toBeGreaterThan(8)
      const readme = (await exporter(`${a.toString()}/README`, bs)).cid.toString()
      const read = new Set(counting.reads)
      expect([...bigBlocks].filter(c => read.has(c))).toEqual([])
      expect(read.has(readme)).toBe(false)
      // ... while the differing file was read, on both sides
      expect(read.has(utilA.cid.toString()) && read.has(utilB.cid.toString())).toBe(true)
    })
  })

  it('equal roots read nothing; two files compare at "."; maxEntries truncates', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const { a, b } = await buildTrees(tmp, bs)
      const counting = new CountingBlockstore(bs)
      expect(await diffTrees(counting, a, a)).toEqual({ entries: [], blocksRead: 0, truncated: false })
      expect(counting.reads).toEqual([])

      const f1 = await addBytes(bs, new TextEncoder().encode('one\n'))
      const f2 = await addBytes(bs, new TextEncoder().encode('three\n'))
      const files = await diffTrees(bs, f1, f2)
      expect(files.entries).toEqual([{ path: '.', change: 'modified', kindA: 'file', kindB: 'file', sizeA: 4, sizeB: 6, cidA: f1.toString(), cidB: f2.toString() }])

      const capped = await diffTrees(bs, a, b, { maxEntries: 3 })
      expect(capped.truncated).toBe(true)
      expect(capped.entries.map(e => e.path)).toEqual(['docs', 'empty-new-dir', 'link'])
    })
  })
})
