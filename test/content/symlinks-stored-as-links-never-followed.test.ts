/**
 * Symlinks are stored as UnixFS symlink nodes with their target text (as
 * kubo stores them), never followed on add, and recreated as symlinks on
 * export; the exporter never writes through a symlink, even one the DAG
 * itself planted.
 */
import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { addDirectory, exportToDirectory, getBlock } from '../../src/content/index.ts'
import { MemoryBlockstore, putDagPb, putRaw, withTempDir } from './helpers.ts'

async function linkOf (bs: MemoryBlockstore, dir: CID, name: string): Promise<CID> {
  const node = dagPb.decode(await getBlock(bs, dir))
  const link = node.Links.find(l => l.Name === name)
  if (link == null) throw new Error(`no link ${name}`)
  return link.Hash
}

describe('symlinks', () => {
  it('a symlink to /etc/passwd is stored as a kubo-style symlink node, not as the file', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'in')
      await mkdir(dir)
      await symlink('/etc/passwd', join(dir, 'passwd'))
      const bs = new MemoryBlockstore()
      const result = await addDirectory(bs, dir)
      expect(result.symlinks).toBe(1)
      expect(result.files).toBe(0)
      expect(result.bytes).toBe(0)

      const cid = await linkOf(bs, result.cid, 'passwd')
      expect(cid.version).toBe(1)
      expect(cid.code).toBe(dagPb.code)
      // exactly go-unixfs's encoding: PBNode{Data: Data{Type: Symlink(4), Data: target}}
      const target = new TextEncoder().encode('/etc/passwd')
      const data = [0x08, 0x04, 0x12, target.length, ...target]
      expect([...await getBlock(bs, cid)]).toEqual([0x0a, data.length, ...data])

      // the target's bytes were never imported
      const passwd = await readFile('/etc/passwd').catch(() => undefined)
      if (passwd != null) {
        const passwdCid = CID.createV1(raw.code, await sha256.digest(passwd))
        expect(bs.blocks.has(passwdCid.toString())).toBe(false)
      }
    })
  })

  it('a symlink to a directory is not descended into', async () => {
    await withTempDir(async tmp => {
      const outside = join(tmp, 'outside')
      await mkdir(outside)
      await writeFile(join(outside, 'secret'), 'secret bytes')
      const dir = join(tmp, 'in')
      await mkdir(dir)
      await symlink(outside, join(dir, 'escape'))
      await symlink('../outside/secret', join(dir, 'relative'))
      const result = await addDirectory(new MemoryBlockstore(), dir)
      expect(result).toMatchObject({ files: 0, directories: 0, symlinks: 2, bytes: 0 })
    })
  })

  it('export recreates symlinks as symlinks with the same target text, without reading the target', async () => {
    await withTempDir(async tmp => {
      const dir = join(tmp, 'in')
      await mkdir(dir)
      await symlink('/etc/passwd', join(dir, 'passwd'))
      await symlink('does/not/exist', join(dir, 'dangling'))
      await mkdir(join(dir, 'sub'))
      await symlink('..', join(dir, 'sub', 'up'))
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, dir)
      const out = join(tmp, 'out')
      const exported = await exportToDirectory(bs, cid, out)
      expect(exported).toMatchObject({ symlinks: 3, files: 0, bytes: 0 })
      for (const [path, target] of [['passwd', '/etc/passwd'], ['dangling', 'does/not/exist'], ['sub/up', '..']] as const) {
        expect((await lstat(join(out, path))).isSymbolicLink()).toBe(true)
        expect(await readlink(join(out, path))).toBe(target)
      }
    })
  })

  it('a DAG with a symlink "a" -> outside dir and a directory "a/" is refused without writing outside', async () => {
    await withTempDir(async tmp => {
      const victim = join(tmp, 'victim')
      await mkdir(victim)
      const bs = new MemoryBlockstore()
      const pwned = await putRaw(bs, new TextEncoder().encode('pwned'))
      const innerDir = await putDagPb(bs, new UnixFS({ type: 'directory' }), [{ name: 'pwned', cid: pwned }])
      const link = await putDagPb(bs, new UnixFS({ type: 'symlink', data: new TextEncoder().encode(victim) }))
      // same name twice: the symlink comes first, then the directory
      const root = await putDagPb(bs, new UnixFS({ type: 'directory' }), [{ name: 'a', cid: link }, { name: 'a', cid: innerDir }])

      const out = join(tmp, 'out')
      await expect(exportToDirectory(bs, root, out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
      expect(await readdir(victim)).toEqual([])
      // partial output is removed
      await expect(lstat(out)).rejects.toMatchObject({ code: 'ENOENT' })
    })
  })

  it('a DAG with a symlink "f" -> outside file and a file "f" does not create the outside file', async () => {
    await withTempDir(async tmp => {
      const victimFile = join(tmp, 'victim-file')
      const bs = new MemoryBlockstore()
      const content = await putRaw(bs, new TextEncoder().encode('pwned'))
      const link = await putDagPb(bs, new UnixFS({ type: 'symlink', data: new TextEncoder().encode(victimFile) }))
      const root = await putDagPb(bs, new UnixFS({ type: 'directory' }), [{ name: 'f', cid: link }, { name: 'f', cid: content }])
      await expect(exportToDirectory(bs, root, join(tmp, 'out'))).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
      await expect(lstat(victimFile)).rejects.toMatchObject({ code: 'ENOENT' })
    })
  })

  it('overwrite removes a symlink already in the target instead of writing through it', async () => {
    await withTempDir(async tmp => {
      const victim = join(tmp, 'victim')
      await mkdir(victim)
      const src = join(tmp, 'in')
      await mkdir(join(src, 'link'), { recursive: true })
      await writeFile(join(src, 'link', 'file'), 'data')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      const out = join(tmp, 'out')
      await mkdir(out)
      await symlink(victim, join(out, 'link'))
      await expect(exportToDirectory(bs, cid, out)).rejects.toMatchObject({ code: 'ERR_TARGET_NOT_EMPTY' })
      await exportToDirectory(bs, cid, out, { overwrite: true })
      expect((await lstat(join(out, 'link'))).isDirectory()).toBe(true)
      expect(await readFile(join(out, 'link', 'file'), 'utf8')).toBe('data')
      expect(await readdir(victim)).toEqual([])
    })
  })

  it('an export target that is itself a symlink is refused', async () => {
    await withTempDir(async tmp => {
      const victim = join(tmp, 'victim')
      await mkdir(victim)
      await symlink(victim, join(tmp, 'out'))
      const src = join(tmp, 'in')
      await mkdir(src)
      await writeFile(join(src, 'f'), 'data')
      const bs = new MemoryBlockstore()
      const { cid } = await addDirectory(bs, src)
      await expect(exportToDirectory(bs, cid, join(tmp, 'out'))).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
      expect(await readdir(victim)).toEqual([])
    })
  })
})
