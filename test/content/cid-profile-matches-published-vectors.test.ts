/**
 * The pinned profile reproduces kubo's published unixfs-v1-2025 CIDs
 * (kubo test/cli/cid_profiles_test.go), going through the real file-system
 * code path (addFile / addDirectory on files written to a temp dir).
 */
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { addBytes, addDirectory, addFile, exportToDirectory } from '../../src/content/index.ts'
import { MemoryBlockstore, deterministicNames, keystream, nullBlockstore, withTempDir } from './helpers.ts'

const MiB = 1 << 20

async function writeKeystreamFile (path: string, seed: string, size: number): Promise<void> {
  const next = keystream(seed)
  const out = createWriteStream(path)
  for (let left = size; left > 0;) {
    const n = Math.min(left, 16 * MiB)
    if (!out.write(next(n))) await new Promise<void>(resolve => out.once('drain', () => { resolve() }))
    left -= n
  }
  out.end()
  await finished(out)
}

describe('unixfs-v1-2025 published vectors', () => {
  it('"hello world" (11 bytes) as bytes and as a file', async () => {
    const bs = new MemoryBlockstore()
    const expected = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'
    expect((await addBytes(bs, new TextEncoder().encode('hello world'))).toString()).toBe(expected)
    await withTempDir(async dir => {
      await writeFile(join(dir, 'hello'), 'hello world')
      const result = await addFile(bs, join(dir, 'hello'))
      expect(result.cid.toString()).toBe(expected)
      expect(result.bytes).toBe(11)
    })
  })

  it('an empty file is the raw block of zero bytes (no dag-pb wrapper)', async () => {
    const expected = CID.createV1(raw.code, await sha256.digest(new Uint8Array(0)))
    expect((await addBytes(new MemoryBlockstore(), new Uint8Array(0))).toString()).toBe(expected.toString())
  })

  it('empty directory', async () => {
    await withTempDir(async dir => {
      const result = await addDirectory(new MemoryBlockstore(), dir)
      expect(result.cid.toString()).toBe('bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354')
      expect(result.files).toBe(0)
    })
  })

  it('1 MiB (one chunk, raw leaf) and 1 MiB + 1 (two chunks) with seed chunk-v1-seed', async () => {
    await withTempDir(async dir => {
      await writeKeystreamFile(join(dir, 'one'), 'chunk-v1-seed', MiB)
      await writeKeystreamFile(join(dir, 'over'), 'chunk-v1-seed', MiB + 1)
      const bs = new MemoryBlockstore()
      expect((await addFile(bs, join(dir, 'one'))).cid.toString()).toBe('bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta')
      const over = await addFile(bs, join(dir, 'over'))
      expect(over.cid.toString()).toBe('bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64')
      expect(over.bytes).toBe(MiB + 1)
    })
  })

  // 4765 names of 11 chars + one of 21 → block of exactly 262144 bytes: stays
  // flat; one of 22 → 262145 bytes: sharded
  for (const [lastLen, expected] of [
    [21, 'bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4'],
    [22, 'bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu']
  ] as const) {
    it(`4766 entries, last name ${lastLen} chars (seed hamt-unixfs-v1-2025), and its export`, async () => {
      await withTempDir(async tmp => {
        const dir = join(tmp, 'in')
        await mkdir(dir)
        const names = deterministicNames('hamt-unixfs-v1-2025', 4766, 11, lastLen)
        for (const name of names) await writeFile(join(dir, name), 'x')
        const bs = new MemoryBlockstore()
        const result = await addDirectory(bs, dir)
        expect(result.cid.toString()).toBe(expected)
        expect(result.files).toBe(4766)
        expect(result.bytes).toBe(4766)
        // the sharded variant exercises the exporter's HAMT walk
        const out = join(tmp, 'out')
        const exported = await exportToDirectory(bs, result.cid, out)
        expect(exported.files).toBe(4766)
        expect((await readdir(out)).sort()).toEqual([...names].sort())
      })
    })
  }

  // 1 GiB files: minutes of hashing, so only with CONCUR_SLOW_TESTS=1
  const slow = process.env.CONCUR_SLOW_TESTS != null && process.env.CONCUR_SLOW_TESTS !== '' ? it : it.skip
  for (const [label, size, expected] of [
    // exactly 1024 links in the root
    ['1024 × 1 MiB', 1024 * MiB, 'bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm'],
    // one byte more: the balanced layout adds a level (IPIP-499's vector table)
    ['1024 × 1 MiB + 1', 1024 * MiB + 1, 'bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe']
  ] as const) {
    slow(`${label} with seed v1-2025-seed`, async () => {
      await withTempDir(async dir => {
        await writeKeystreamFile(join(dir, 'big'), 'v1-2025-seed', size)
        const result = await addFile(nullBlockstore(), join(dir, 'big'))
        expect(result.cid.toString()).toBe(expected)
      })
    }, 1_800_000)
  }
})
