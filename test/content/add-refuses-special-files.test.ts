/**
 * Entries with no UnixFS form are refused with a typed error naming the path
 * (never skipped silently: a CID of a silently different tree would be
 * worse), unless the caller asks to skip them (`specialFiles: 'skip'`, `concur
 * add --skip-special`: a root filesystem's /dev, which the sandbox provides):
 * then they are counted and the first few named. Names that cannot be stored
 * faithfully are refused too.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { UnsupportedFileTypeError, addDirectory, addFile } from '../../src/content/index.ts'
import { MemoryBlockstore, withTempDir } from './helpers.ts'

describe('special files', () => {
  it('a FIFO is refused with ERR_UNSUPPORTED_FILE_TYPE (and the add does not hang on it)', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'in')
      await mkdir(join(dir, 'sub'), { recursive: true })
      await writeFile(join(dir, 'ok'), 'fine')
      execFileSync('mkfifo', [join(dir, 'sub', 'pipe')])
      const err = await addDirectory(new MemoryBlockstore(), dir).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnsupportedFileTypeError)
      expect(err).toMatchObject({ code: 'ERR_UNSUPPORTED_FILE_TYPE', fileType: 'fifo', path: join(dir, 'sub', 'pipe') })
      expect((err as Error).message).toContain(join(dir, 'sub', 'pipe'))
    })
  })

  it('skipped on request: counted and named, and the CID is that of the tree without them', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'rootfs')
      await mkdir(join(dir, 'dev'), { recursive: true })
      await mkdir(join(dir, 'bin'), { recursive: true })
      await writeFile(join(dir, 'bin', 'sh'), 'not really a shell')
      execFileSync('mkfifo', [join(dir, 'dev', 'initctl')])
      execFileSync('mkfifo', [join(dir, 'dev', 'xconsole')])
      const refused = await addDirectory(new MemoryBlockstore(), dir, { specialFilesRemedy: 'use --skip-special' }).catch((e: unknown) => e)
      expect((refused as Error).message).toMatch(/; use --skip-special$/)
      const skipped = await addDirectory(new MemoryBlockstore(), dir, { specialFiles: 'skip' })
      expect(skipped.skippedSpecial).toEqual({ count: 2, paths: ['dev/initctl', 'dev/xconsole'] })
      // the same tree with an empty dev/: one CID
      const clean = join(tmp, 'clean')
      await mkdir(join(clean, 'dev'), { recursive: true })
      await mkdir(join(clean, 'bin'), { recursive: true })
      await writeFile(join(clean, 'bin', 'sh'), 'not really a shell')
      expect(skipped.cid.toString()).toBe((await addDirectory(new MemoryBlockstore(), clean)).cid.toString())
    })
  })

  it('a unix socket is refused', async () => {
    await withTempDir(async tmp => {
      const server = createServer()
      await new Promise<void>(resolve => server.listen(join(tmp, 'sock'), resolve))
      try {
        await expect(addDirectory(new MemoryBlockstore(), tmp)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FILE_TYPE', fileType: 'socket' })
      } finally {
        await new Promise(resolve => server.close(resolve))
      }
    })
  })

  it('addFile refuses a character device, a directory and a symlink', async () => {
    await expect(addFile(new MemoryBlockstore(), '/dev/null')).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FILE_TYPE', fileType: 'character device', path: '/dev/null' })
    await withTempDir(async tmp => {
      await expect(addFile(new MemoryBlockstore(), tmp)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_FILE_TYPE', fileType: 'directory' })
    })
  })

  it('addDirectory on a regular file is refused with ERR_NOT_A_DIRECTORY', async () => {
    await withTempDir(async tmp => {
      await writeFile(join(tmp, 'f'), 'x')
      await expect(addDirectory(new MemoryBlockstore(), join(tmp, 'f'))).rejects.toMatchObject({ code: 'ERR_NOT_A_DIRECTORY' })
    })
  })

  it('a non-UTF-8 file name is refused with ERR_UNSUPPORTED_NAME', async () => {
    await withTempDir(async tmp => {
      await writeFile(Buffer.concat([Buffer.from(`${tmp}/bad-`), Buffer.from([0xff, 0xfe])]), 'x')
      await expect(addDirectory(new MemoryBlockstore(), tmp)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_NAME' })
    })
  })

  it('a directory name ending in a backslash is refused (the importer would misparse its children)', async () => {
    await withTempDir(async tmp => {
      await mkdir(join(tmp, 'dir\\'))
      await writeFile(join(tmp, 'dir\\', 'child'), 'x')
      await expect(addDirectory(new MemoryBlockstore(), tmp)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_NAME' })
    })
  })
})
