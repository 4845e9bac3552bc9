/**
 * Source hygiene (issue 18): a project's `.git` (and other VCS directories,
 * at any depth) is left out of its source by default, as is whatever a
 * `.concurignore` at its root names in gitignore syntax; the rules file
 * itself is kept, so the source CID shows what was left out. The same
 * project with and without a `.git` is one source, hence one buildId.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MemoryBlockstore } from 'blockstore-core'
import { addDirectory } from '../../src/content/add-directory.ts'
import { IGNORE_FILE, sourceFilter } from '../../src/requester/source-filter.ts'
import { BadSourceError } from '../../src/requester/errors.ts'
import { withTempDir, writeTree } from './helpers.ts'

const project = {
  configure: '#!/bin/sh\necho configured\n',
  'src/main.c': 'int main(void) { return 0; }\n',
  'src/main.o': 'object code',
  'src/keep.o': 'a prebuilt object the build needs',
  'build/cache.bin': 'a local build tree',
  'docs/README': 'read me\n'
}

async function cidOf (dir: string, filter?: Awaited<ReturnType<typeof sourceFilter>>): Promise<{ cid: string, excluded: number }> {
  const r = await addDirectory(new MemoryBlockstore(), dir, filter != null ? { exclude: filter.exclude } : {})
  return { cid: r.cid.toString(), excluded: r.excluded }
}

describe('what of a directory becomes its source', () => {
  it('VCS directories are left out at any depth: with and without .git, one source', async () => {
    await withTempDir(async tmp => {
      const plain = join(tmp, 'plain')
      await writeTree(plain, project)
      const withGit = join(tmp, 'with-git')
      await writeTree(withGit, { ...project, '.git/HEAD': 'ref: refs/heads/main\n', '.git/objects/ab/cdef': 'zlib data', 'vendor/lib/.hg/store': 'x', 'vendor/lib/lib.c': '/* vendored */\n' })
      await writeTree(plain, { 'vendor/lib/lib.c': '/* vendored */\n' })
      const a = await cidOf(plain, await sourceFilter(plain))
      const b = await cidOf(withGit, await sourceFilter(withGit))
      expect(b.cid).toBe(a.cid)
      expect(b.excluded).toBe(2)
      // kept on request
      const kept = await cidOf(withGit, await sourceFilter(withGit, { includeVcs: true }))
      expect(kept.cid).not.toBe(a.cid)
      expect(kept.excluded).toBe(0)
    })
  })

  it('.concurignore (gitignore syntax, negation and directory-only patterns) leaves out what it names, and is itself kept', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'p')
      await writeTree(dir, { ...project, [IGNORE_FILE]: '# local things\nbuild/\n*.o\n!keep.o\n' })
      const filter = await sourceFilter(dir)
      expect(filter.rules).toEqual(['build/', '*.o', '!keep.o'])
      const got = await cidOf(dir, filter)
      expect(got.excluded).toBe(2) // build/ and src/main.o

      const expected = join(tmp, 'expected')
      const rest = Object.fromEntries(Object.entries(project).filter(([path]) => path !== 'build/cache.bin' && path !== 'src/main.o'))
      await writeTree(expected, { ...rest, [IGNORE_FILE]: '# local things\nbuild/\n*.o\n!keep.o\n' })
      expect(got.cid).toBe((await cidOf(expected)).cid)
    })
  })

  it('a .concurignore that is a symlink, or too large, is refused with the reason', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'p')
      await mkdir(dir, { recursive: true })
      await writeFile(join(tmp, 'elsewhere'), '*\n')
      await symlink(join(tmp, 'elsewhere'), join(dir, IGNORE_FILE))
      await expect(sourceFilter(dir)).rejects.toThrow(BadSourceError)
      await expect(sourceFilter(dir)).rejects.toThrow(/symlink/)
      const big = join(tmp, 'big')
      await mkdir(big)
      await writeFile(join(big, IGNORE_FILE), 'x\n'.repeat(200_000))
      await expect(sourceFilter(big)).rejects.toThrow(/at most/)
    })
  })
})
