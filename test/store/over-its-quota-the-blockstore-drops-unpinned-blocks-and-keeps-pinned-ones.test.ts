/**
 * The blockstore quota (src/store/block-quota.ts): over the quota, unpinned
 * blocks (what was fetched for builds and for others) are collected and what
 * the node pinned stays; under it, or while a build runs, nothing is touched.
 * Without it, fetched blocks were never collected.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHeliaNode } from '../../src/net/helia-node.ts'
import type { HeliaWithLibp2p } from '../../src/net/helia-node.ts'
import { pin } from '../../src/store/pin.ts'
import { BlockQuota, directoryBytes } from '../../src/store/block-quota.ts'

async function block (label: string, size: number): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new Uint8Array(size).fill(label.charCodeAt(0))
  bytes.set(new TextEncoder().encode(label))
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

describe('the blockstore quota', () => {
  let dir = ''
  let helia: HeliaWithLibp2p<Record<string, never>>
  let store: PackBlockstore
  const KiB = 1024

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-quota-'))
    store = new PackBlockstore(join(dir, 'blockstore'))
    await store.open()
    helia = await createHeliaNode({ blockstore: store, datastore: new MemoryDatastore(), libp2p: {} })
  })

  afterAll(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('over the quota collects unpinned blocks and keeps pinned ones; under it, or while busy, touches nothing', async () => {
    const kept = await block('pinned', 64 * KiB)
    await helia.blockstore.put(kept.cid, kept.bytes)
    await pin(helia.pins, kept.cid)
    const loose = await Promise.all(Array.from({ length: 8 }, async (_, i) => await block(`fetched-${i}`, 64 * KiB)))
    for (const b of loose) await helia.blockstore.put(b.cid, b.bytes)
    const total = await directoryBytes(join(dir, 'blockstore'))
    // the store's O(1) count is what is on disk
    expect(store.stats().diskBytes).toBe(total)
    expect(total).toBeGreaterThanOrEqual(9 * 64 * KiB)

    const roomy = new BlockQuota({ quotaBytes: total }, { helia, blockstore: store })
    expect(await roomy.check()).toMatchObject({ collected: false, deferred: false })

    let building = true
    const tight = new BlockQuota({ quotaBytes: 128 * KiB, busy: () => building }, { helia, blockstore: store })
    expect(await tight.check()).toMatchObject({ collected: false, deferred: true })
    expect(await helia.blockstore.has(loose[0]!.cid)).toBe(true)

    building = false
    const r = await tight.check()
    expect(r.collected).toBe(true)
    expect(r.after).toBeLessThanOrEqual(128 * KiB)
    // and the disk was returned, not only the index emptied
    expect(await directoryBytes(join(dir, 'blockstore'))).toBe(r.after)
    expect(await helia.blockstore.has(kept.cid)).toBe(true)
    for (const b of loose) expect(await helia.blockstore.has(b.cid)).toBe(false)
  })
})
