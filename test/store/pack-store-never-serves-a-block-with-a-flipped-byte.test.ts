/**
 * A byte flipped on disk (bit rot, a bad sector, a hand edit) inside a
 * stored block is never served as that block: get (and getMany, and the bytes
 * of getAll) throw CorruptBlockError, the block is dropped so has() says
 * false and helia would fetch it again, and a fresh copy put afterwards is
 * served. In a pack tail that open scans (not covered by the index file) the
 * record fails its check and is never indexed. A flipped byte in the index
 * file only costs a rescan. Checked with both check kinds: a crc32 kept per
 * block, and the block's own sha2-256 against its CID.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { HEADER_FIXED_BYTES } from '../../src/store/pack/record.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { blockOf, hashesTo, packFiles, readBlock } from './pack-store-helpers.ts'
import type { TestBlock } from './pack-store-helpers.ts'
import type { ChecksumPolicy } from '../../src/store/pack/index.ts'

/** flips one bit of the byte at `offset` in `file` */
async function flipByte (file: string, offset: number): Promise<void> {
  const h = await open(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    await h.read(b, 0, 1, offset)
    b[0] = (b[0] as number) ^ 0x10
    await h.write(b, 0, 1, offset)
  } finally {
    await h.close()
  }
}

/** the offset in its pack of the body of the block whose bytes are `bytes` (found by content) */
async function bodyOffset (file: string, bytes: Uint8Array): Promise<number> {
  const at = (await readFile(file)).indexOf(bytes)
  if (at < HEADER_FIXED_BYTES) throw new Error('block not found in pack')
  return at
}

async function fill (dir: string, checksum: ChecksumPolicy): Promise<{ store: PackBlockstore, blocks: TestBlock[] }> {
  const store = new PackBlockstore(dir, { checksum })
  await store.open()
  const blocks = [blockOf(randomBytes(1 << 20)), blockOf(randomBytes(5000)), blockOf(randomBytes(1 << 20)), blockOf(randomBytes(70_000))]
  for await (const _ of store.putMany(blocks)) { /* drain */ }
  return { store, blocks }
}

describe('a flipped byte inside a stored block', () => {
  afterAll(async () => { await cleanupAll() })

  for (const checksum of ['crc32', 'multihash'] as const) {
    it(`is never served; the block is dropped and can be stored again (${checksum} checks)`, async () => {
      const dir = join(await tempDir('concur-pack-flip-'), 'blocks')
      const { store, blocks } = await fill(dir, checksum)
      await store.close()
      const [big, small] = blocks as [TestBlock, TestBlock, TestBlock, TestBlock]
      const pack = (await packFiles(dir))[0] as string
      await flipByte(pack, await bodyOffset(pack, big.bytes) + 123_456)
      await flipByte(pack, await bodyOffset(pack, small.bytes) + 4999)

      const reopened = new PackBlockstore(dir, { checksum })
      await reopened.open()
      // the index file covers the pack: nothing is re-read on open, so the index still lists them
      expect(reopened.has(big.cid)).toBe(true)
      await expect(readBlock(reopened, big.cid)).rejects.toMatchObject({ name: 'CorruptBlockError', code: 'ERR_CORRUPT_BLOCK' })
      // dropped: from now on helia would fetch it from a peer
      expect(reopened.has(big.cid)).toBe(false)
      await expect(readBlock(reopened, big.cid)).rejects.toMatchObject({ name: 'NotFoundError' })
      // getMany and getAll refuse it too
      await expect((async () => { for await (const _ of reopened.getMany([small.cid])) { /* drain */ } })()).rejects.toMatchObject({ name: 'CorruptBlockError' })
      let served = 0
      for await (const { cid, bytes } of reopened.getAll()) {
        const parts: Uint8Array[] = []
        for await (const p of bytes) parts.push(p)
        expect(hashesTo(cid, Buffer.concat(parts))).toBe(true)
        served++
      }
      expect(served).toBe(2)
      // stored again (as after a fetch from a peer): served, and still after a reopen
      await reopened.put(big.cid, big.bytes)
      expect(Buffer.compare(await readBlock(reopened, big.cid), big.bytes)).toBe(0)
      await reopened.close()
      const third = new PackBlockstore(dir, { checksum })
      await third.open()
      expect(Buffer.compare(await readBlock(third, big.cid), big.bytes)).toBe(0)
      expect(third.has(small.cid)).toBe(false)
      expect(third.stats().blocks).toBe(3)
      await third.close()
    })

    it(`in a pack tail scanned on open is found and never indexed (${checksum} checks)`, async () => {
      const dir = join(await tempDir('concur-pack-flip-tail-'), 'blocks')
      const { store, blocks } = await fill(dir, checksum)
      await store.close()
      const [big, , other] = blocks as [TestBlock, TestBlock, TestBlock, TestBlock]
      const pack = (await packFiles(dir))[0] as string
      await flipByte(pack, await bodyOffset(pack, big.bytes) + 7)
      // no index file: every record is read and checked, as after a crash before the index was saved
      await rm(join(dir, 'index'))
      const reopened = new PackBlockstore(dir, { checksum })
      await reopened.open()
      expect(reopened.recovery?.corrupt).toHaveLength(1)
      expect(reopened.has(big.cid)).toBe(false)
      await expect(readBlock(reopened, big.cid)).rejects.toMatchObject({ name: 'NotFoundError' })
      // the records after it are kept
      expect(Buffer.compare(await readBlock(reopened, other.cid), other.bytes)).toBe(0)
      expect(reopened.stats().blocks).toBe(3)
      await reopened.close()
    })
  }

  it('in the index file costs a rescan, never a block', async () => {
    const dir = join(await tempDir('concur-pack-flip-index-'), 'blocks')
    const { store, blocks } = await fill(dir, 'crc32')
    await store.delete((blocks[1] as TestBlock).cid)
    await store.close()
    const index = await readFile(join(dir, 'index'))
    const mid = Math.floor(index.byteLength / 2)
    index[mid] = (index[mid] as number) ^ 0x01
    await writeFile(join(dir, 'index'), index)
    const reopened = new PackBlockstore(dir)
    await reopened.open()
    expect(reopened.recovery?.indexUnusable).toBe('index file checksum mismatch')
    expect(reopened.stats().blocks).toBe(3)
    expect(reopened.has((blocks[1] as TestBlock).cid)).toBe(false)
    for (const b of [blocks[0], blocks[2], blocks[3]] as TestBlock[]) expect(Buffer.compare(await readBlock(reopened, b.cid), b.bytes)).toBe(0)
    await reopened.close()
  })
})
