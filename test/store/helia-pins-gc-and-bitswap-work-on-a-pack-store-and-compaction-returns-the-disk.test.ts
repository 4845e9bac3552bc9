/**
 * helia on a PackBlockstore: a file added with @helia/unixfs and pinned,
 * unpinned blocks beside it; a second peer (also on a pack store) fetches the
 * file over bitswap; helia.gc() deletes the unpinned blocks through the
 * store's deleteMany while it iterates getAll; compact() then gives their disk
 * space back. The pinned file stays whole, the unpinned blocks are gone, the
 * store's O(1) disk counter equals what is on disk, and what the fetcher
 * stored survives its restart.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { unixfs } from '@helia/unixfs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryDatastore } from 'datastore-core/memory'
import { createConcurPeer } from '../../src/net/peer.ts'
import { directoryBytes } from '../../src/store/block-quota.ts'
import { pin } from '../../src/store/pin.ts'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { randomBlock, readBlock } from './pack-store-helpers.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'

const MiB = 1024 * 1024

async function cat (peer: ConcurPeer, cid: Parameters<ReturnType<typeof unixfs>['cat']>[0]): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of unixfs(peer.helia).cat(cid, { signal: AbortSignal.timeout(60_000) })) parts.push(p)
  return Buffer.concat(parts)
}

describe('helia on a pack blockstore', () => {
  const peers: ConcurPeer[] = []
  const stores: PackBlockstore[] = []
  afterAll(async () => {
    await Promise.allSettled(peers.map(async p => { await p.stop() }))
    await Promise.allSettled(stores.map(async s => { await s.close() }))
    await cleanupAll()
  })

  it('pins, collects, serves over bitswap, and compaction returns the space of what gc deleted', async () => {
    const home = await tempDir('concur-pack-helia-')
    const dirA = join(home, 'a')
    const storeA = new PackBlockstore(dirA, { maxPackBytes: 4 * MiB })
    await storeA.open()
    stores.push(storeA)
    const a = await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: storeA, datastore: new MemoryDatastore(), bootstrap: [], discovery: false })
    peers.push(a)

    // pinned: a 3 MiB file through @helia/unixfs (1 MiB leaves: the store's block size)
    const file = randomBytes(3 * MiB + 4321)
    const fileCid = await unixfs(a.helia).addBytes(file, { chunker: (await import('ipfs-unixfs-importer/chunker')).fixedSize({ chunkSize: MiB }), rawLeaves: true, cidVersion: 1 })
    await pin(a.helia.pins, fileCid)
    // unpinned: 12 MiB of blocks, as fetched for builds and for others
    const loose = Array.from({ length: 12 }, () => randomBlock(MiB))
    for (const b of loose) await a.helia.blockstore.put(b.cid, b.bytes)
    expect(storeA.stats().blocks).toBeGreaterThanOrEqual(16)

    // bitswap: another peer on a pack store fetches the file
    const dirB = join(home, 'b')
    const storeB = new PackBlockstore(dirB)
    await storeB.open()
    stores.push(storeB)
    const b = await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: storeB, datastore: new MemoryDatastore(), bootstrap: [], discovery: false })
    peers.push(b)
    await b.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    expect(Buffer.compare(await cat(b, fileCid), file)).toBe(0)
    const fetched = storeB.stats().blocks
    expect(fetched).toBeGreaterThanOrEqual(4)

    // gc: unpinned blocks deleted, the pinned file intact
    const before = storeA.stats()
    await a.helia.gc()
    for (const l of loose) expect(storeA.has(l.cid)).toBe(false)
    expect(Buffer.compare(await cat(a, fileCid), file)).toBe(0)
    const afterGc = storeA.stats()
    expect(afterGc.blocks).toBe(before.blocks - loose.length)
    expect(afterGc.liveBytes).toBe(before.liveBytes - loose.length * MiB)
    // deleting marks records dead; the disk is returned by compaction
    expect(afterGc.reclaimableBytes).toBeGreaterThanOrEqual(loose.length * MiB)

    const result = await storeA.compact()
    const after = storeA.stats()
    expect(result.diskBytesBefore - result.diskBytesAfter).toBeGreaterThanOrEqual(10 * MiB)
    expect(before.diskBytes - after.diskBytes).toBeGreaterThanOrEqual(10 * MiB)
    // the O(1) counter is what is on disk
    expect(after.diskBytes).toBe(await directoryBytes(dirA))
    expect(Buffer.compare(await cat(a, fileCid), file)).toBe(0)
    for (const l of loose) expect(storeA.has(l.cid)).toBe(false)

    // and the fetcher's blocks survive its restart
    await b.stop()
    await storeB.close()
    const reopened = new PackBlockstore(dirB)
    await reopened.open()
    stores.push(reopened)
    expect(reopened.stats().blocks).toBe(fetched)
    for await (const { cid } of reopened.getAll()) expect((await readBlock(reopened, cid)).byteLength).toBeGreaterThan(0)
  })
})
