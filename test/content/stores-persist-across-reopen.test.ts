/**
 * Content added to a node home's stores survives closing and reopening them,
 * and exports identically afterwards.
 */
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Key } from 'interface-datastore'
import { describe, expect, it } from 'vitest'
import { addBytes, addDirectory, dagSize, exportToDirectory, getBlock, openStores, walkDag } from '../../src/content/index.ts'
import { keystream, withTempDir } from './helpers.ts'

describe('openStores', () => {
  it('add, close, reopen, export gives the identical tree', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(join(src, 'sub', 'empty'), { recursive: true })
      const big = keystream('persist')(2 * (1 << 20) + 7)
      await writeFile(join(src, 'sub', 'big.bin'), big)
      await writeFile(join(src, 'small.txt'), 'small')
      await symlink('sub/big.bin', join(src, 'link'))
      const home = join(tmp, 'home')

      const first = await openStores(home)
      const added = await addDirectory(first.blockstore, src)
      const log = await addBytes(first.blockstore, new TextEncoder().encode('build log\n'))
      await first.datastore.put(new Key('/pins/test'), added.cid.bytes)
      const sizeBefore = await dagSize(first.blockstore, added.cid)
      await first.close()

      const second = await openStores(home)
      try {
        expect([...await second.datastore.get(new Key('/pins/test'))]).toEqual([...added.cid.bytes])
        expect(new TextDecoder().decode(await getBlock(second.blockstore, log))).toBe('build log\n')
        expect(await dagSize(second.blockstore, added.cid)).toEqual(sizeBefore)
        let blocks = 0
        for await (const cid of walkDag(second.blockstore, added.cid)) {
          expect(await second.blockstore.has(cid)).toBe(true)
          blocks++
        }
        expect(blocks).toBe(sizeBefore.blocks)

        const out = join(tmp, 'out')
        await exportToDirectory(second.blockstore, added.cid, out)
        expect((await readdir(out)).sort()).toEqual(['link', 'small.txt', 'sub'])
        expect(Buffer.compare(await readFile(join(out, 'sub', 'big.bin')), big)).toBe(0)
        expect(await readFile(join(out, 'small.txt'), 'utf8')).toBe('small')
        expect(await readlink(join(out, 'link'))).toBe('sub/big.bin')
        expect((await lstat(join(out, 'sub', 'empty'))).isDirectory()).toBe(true)
        expect((await addDirectory(second.blockstore, out)).cid.toString()).toBe(added.cid.toString())
      } finally {
        await second.close()
      }
    })
  })
})
