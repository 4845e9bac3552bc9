/**
 * add → export reproduces the tree byte for byte (files, empty files, nested
 * and empty directories, hidden files, symlinks); limits, refusals and abort
 * fail with their typed errors.
 */
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UnixFS } from 'ipfs-unixfs'
import { describe, expect, it } from 'vitest'
import { addBytes, addDirectory, dagSize, exportToDirectory, walkDag } from '../../src/content/index.ts'
import { MemoryBlockstore, keystream, putDagPb, putRaw, withTempDir } from './helpers.ts'

type Snapshot = Record<string, string>

/** Every entry under `dir`: kind plus content / link target, keyed by relative path. */
async function snapshot (dir: string, rel = '', out: Snapshot = {}): Promise<Snapshot> {
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = rel === '' ? name : `${rel}/${name}`
    const st = await lstat(join(dir, path))
    if (st.isSymbolicLink()) out[path] = `link:${await readlink(join(dir, path))}`
    else if (st.isDirectory()) { out[path] = 'dir'; await snapshot(dir, path, out) } else out[path] = `file:${(await readFile(join(dir, path))).toString('base64')}`
  }
  return out
}

async function makeTree (dir: string): Promise<void> {
  await mkdir(join(dir, 'nested', 'deeper', 'deepest'), { recursive: true })
  await mkdir(join(dir, 'empty-dir'))
  await mkdir(join(dir, 'nested', 'empty-inner'))
  await writeFile(join(dir, 'empty-file'), '')
  await writeFile(join(dir, '.hidden'), 'hidden content')
  await writeFile(join(dir, 'nested', 'deeper', 'deepest', 'leaf.txt'), 'leaf\n')
  // three chunks plus a bit: a multi-block file
  await writeFile(join(dir, 'nested', 'big.bin'), keystream('round-trip')(3 * (1 << 20) + 12345))
  await writeFile(join(dir, 'unicode-ñame-✓'), 'utf-8 names')
  await symlink('nested/deeper', join(dir, 'to-dir'))
  await symlink('/etc/passwd', join(dir, 'nested', 'abs-link'))
}

describe('export', () => {
  it('round trip is byte-identical and re-adding the export gives the same CID', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      await makeTree(src)
      const bs = new MemoryBlockstore()
      const added = await addDirectory(bs, src)
      expect(added).toMatchObject({ files: 5, symlinks: 2, directories: 5, bytes: 14 + 5 + 3 * (1 << 20) + 12345 + 'utf-8 names'.length })
      // blocks went through putMany batches
      expect(bs.putManyCalls).toBeGreaterThan(0)

      const out = join(tmp, 'out')
      const exported = await exportToDirectory(bs, added.cid, out)
      expect(exported).toMatchObject({ files: 5, symlinks: 2, directories: 5, bytes: added.bytes })
      expect(await snapshot(out)).toEqual(await snapshot(src))

      const again = await addDirectory(new MemoryBlockstore(), out)
      expect(again.cid.toString()).toBe(added.cid.toString())
    })
  })

  it('walkDag yields exactly the blocks an add stored, and re-adding stores nothing new', async () => {
    await withTempDir(async tmp => {
      await makeTree(tmp)
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, tmp)
      const walked: string[] = []
      for await (const c of walkDag(bs, cid)) walked.push(c.toString())
      expect(walked[0]).toBe(cid.toString())
      expect(new Set(walked).size).toBe(walked.length)
      expect(new Set(walked)).toEqual(new Set(bs.blocks.keys()))
      const size = await dagSize(bs, cid)
      expect(size.blocks).toBe(bs.blocks.size)
      expect(size.bytes).toBe([...bs.blocks.values()].reduce((n, b) => n + b.byteLength, 0))

      const puts = bs.puts
      await addDirectory(bs, tmp)
      expect(bs.puts).toBe(puts)
    })
  })

  it('maxBytes on export fails with ERR_CONTENT_TOO_LARGE and leaves no partial output', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      await makeTree(src)
      const bs = new MemoryBlockstore()
      const { cid, bytes } = await addDirectory(bs, src)
      const out = join(tmp, 'out')
      await expect(exportToDirectory(bs, cid, out, { maxBytes: bytes - 1 })).rejects.toMatchObject({ name: 'ContentTooLargeError', code: 'ERR_CONTENT_TOO_LARGE', unit: 'bytes' })
      await expect(lstat(out)).rejects.toMatchObject({ code: 'ENOENT' })
      // exactly at the cap is fine
      await exportToDirectory(bs, cid, out, { maxBytes: bytes })
    })
  })

  it('a file node that under-declares its size is refused as malformed, and nothing is written', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const chunk = await putRaw(bs, new Uint8Array(1000).fill(7))
      // declares 10 bytes but links a 1000-byte leaf: the declared size is
      // what the size pre-check sees, so the lie is refused (read-file.ts)
      const file = await putDagPb(bs, new UnixFS({ type: 'file', blockSizes: [10n] }), [{ name: '', cid: chunk }])
      const root = await putDagPb(bs, new UnixFS({ type: 'directory' }), [{ name: 'f', cid: file }])
      await expect(exportToDirectory(bs, root, join(tmp, 'out'), { maxBytes: 100 })).rejects.toMatchObject({ code: 'ERR_MALFORMED_FILE' })
      await expect(lstat(join(tmp, 'out'))).rejects.toThrow()
    })
  })

  it('an existing empty target directory is filled in place (same inode and mode: a mount point or a directory in a parent only root may write works)', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      await writeFile(join(src, 'a'), 'x')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      const target = join(tmp, 'target')
      await mkdir(target, { mode: 0o700 })
      const before = await lstat(target)
      await exportToDirectory(bs, cid, target)
      const after = await lstat(target)
      expect(after.ino).toBe(before.ino)
      expect(after.mode & 0o777).toBe(0o700)
      expect((await readdir(target)).sort()).toEqual(['a'])
    })
  })

  it('maxEntries caps the number of entries', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      for (let i = 0; i < 10; i++) await writeFile(join(src, `f${i}`), '')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      await expect(exportToDirectory(bs, cid, join(tmp, 'out'), { maxEntries: 9 })).rejects.toMatchObject({ code: 'ERR_CONTENT_TOO_LARGE', unit: 'entries' })
      expect((await exportToDirectory(bs, cid, join(tmp, 'out'), { maxEntries: 10 })).files).toBe(10)
    })
  })

  it('maxBytes on add fails with ERR_CONTENT_TOO_LARGE', async () => {
    await withTempDir(async tmp => {
      await writeFile(join(tmp, 'a'), 'x'.repeat(100))
      await writeFile(join(tmp, 'b'), 'y'.repeat(100))
      await expect(addDirectory(new MemoryBlockstore(), tmp, { maxBytes: 199 })).rejects.toMatchObject({ code: 'ERR_CONTENT_TOO_LARGE' })
      expect((await addDirectory(new MemoryBlockstore(), tmp, { maxBytes: 200 })).bytes).toBe(200)
    })
  })

  it('refuses a non-empty target unless overwrite, and a non-directory root', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      await writeFile(join(src, 'new'), 'new')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      const out = join(tmp, 'out')
      await mkdir(out)
      await writeFile(join(out, 'old'), 'old')
      await expect(exportToDirectory(bs, cid, out)).rejects.toMatchObject({ code: 'ERR_TARGET_NOT_EMPTY' })
      expect(await readdir(out)).toEqual(['old'])
      await exportToDirectory(bs, cid, out, { overwrite: true })
      expect(await readdir(out)).toEqual(['new'])

      const fileCid = await addBytes(bs, new TextEncoder().encode('just a file'))
      await expect(exportToDirectory(bs, fileCid, join(tmp, 'out2'))).rejects.toMatchObject({ code: 'ERR_NOT_A_DIRECTORY' })
    })
  })

  for (const name of ['..', '.', 'a/b', '../escape', 'nul\0byte']) {
    it(`refuses an entry named ${JSON.stringify(name)} from a crafted DAG`, async () => {
      await withTempDir(async tmp => {
        const bs = new MemoryBlockstore()
        const content = await putRaw(bs, new TextEncoder().encode('escaped'))
        const root = await putDagPb(bs, new UnixFS({ type: 'directory' }), [{ name, cid: content }])
        await mkdir(join(tmp, 'a'))
        const out = join(tmp, 'deep', 'out')
        await expect(exportToDirectory(bs, root, out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
        expect((await readdir(tmp)).sort()).toEqual(['a', 'deep'])
        expect(await readdir(join(tmp, 'a'))).toEqual([])
        expect(await readdir(join(tmp, 'deep'))).toEqual([])
      })
    })
  }

  it('an aborted signal stops add and export', async () => {
    await withTempDir(async tmp => {
      const src = join(tmp, 'src')
      await mkdir(src)
      await makeTree(src)
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      const controller = new AbortController()
      controller.abort()
      await expect(addDirectory(new MemoryBlockstore(), src, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' })
      await expect(exportToDirectory(bs, cid, join(tmp, 'out'), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' })
    })
  })
})
