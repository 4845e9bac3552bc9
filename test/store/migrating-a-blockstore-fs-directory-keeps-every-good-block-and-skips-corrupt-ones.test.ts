/**
 * Migration of an existing home's `<home>/blocks` (blockstore-fs, one file
 * per block, never fsynced) into a PackBlockstore: every block whose bytes
 * hash to its CID is copied and served; a file a crash left short is not
 * (it would otherwise become a record that passes its own check); running it
 * again copies nothing twice; a block is found under any CID of its
 * multihash (helia's pins and bitswap key by it too), and a sha2-512 block,
 * which blockstore-fs's own getAll cannot even list, is moved as well.
 */
import { randomBytes } from 'node:crypto'
import { readdir, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FsBlockstore } from 'blockstore-fs'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { PackBlockstore, migrateFromFsBlockstore } from '../../src/store/pack/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { blockOf, readBlock } from './pack-store-helpers.ts'

describe('migrating a blockstore-fs directory', () => {
  afterAll(async () => { await cleanupAll() })

  it('keeps every good block, skips a corrupt one, and is idempotent', async () => {
    const home = await tempDir('concur-pack-migrate-')
    const fs = new FsBlockstore(join(home, 'blocks'))
    await fs.open()
    const blocks = [blockOf(randomBytes(1 << 20)), blockOf(randomBytes(300)), blockOf(randomBytes(70_000), 'sha512'), blockOf(randomBytes(5000))]
    for (const b of blocks) await fs.put(b.cid, b.bytes)
    await fs.close()
    // the last block's file, cut short as a crash could leave it
    const shard = (await readdir(join(home, 'blocks'), { recursive: true, withFileTypes: true }))
      .filter(e => e.isFile())
      .map(e => join(e.parentPath, e.name))
    const victim = blocks[3] as typeof blocks[number]
    const victimName = shard.find(f => f.endsWith(`${base32upper.encode(victim.cid.multihash.bytes)}.data`)) as string
    await truncate(victimName, 100)

    const store = new PackBlockstore(join(home, 'blocks-pack'))
    await store.open()
    const r = await migrateFromFsBlockstore(join(home, 'blocks'), store)
    expect(r.blocks).toBe(3)
    expect(r.skipped).toHaveLength(1)
    expect(r.skipped[0]?.reason).toMatch(/do not hash to its name/)
    for (const b of blocks.slice(0, 3)) {
      expect(store.has(b.cid)).toBe(true)
      expect(Buffer.compare(await readBlock(store, b.cid), b.bytes)).toBe(0)
    }
    // a CIDv0 of the same multihash (what blockstore-fs's names decode to) is the same block
    const v0 = CID.createV0((blocks[0] as typeof blocks[number]).cid.multihash as Parameters<typeof CID.createV0>[0])
    expect(store.has(v0)).toBe(true)
    expect(store.has(victim.cid)).toBe(false)
    const disk = store.stats().diskBytes
    // again: nothing new written
    const again = await migrateFromFsBlockstore(join(home, 'blocks'), store)
    expect(again.blocks).toBe(3)
    expect(store.stats().diskBytes).toBe(disk)
    await store.close()
  })
})
