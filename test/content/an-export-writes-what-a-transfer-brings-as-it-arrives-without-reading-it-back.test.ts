/**
 * exportToDirectory with a DAG transfer (transfer-feed.ts): the export runs
 * beside the transfer and is handed each block as it arrives (already
 * checked by the transfer), instead of starting once the transfer has ended
 * and reading every block back from the store. A block the feed no longer
 * holds is read from the store once stored, and one the transfer never
 * brought from the store's network path once the transfer has ended; an
 * export that fails stops the transfer before it returns.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import * as raw from 'multiformats/codecs/raw'
import type { CID } from 'multiformats/cid'
import { afterAll, describe, expect, it } from 'vitest'
import { ContentTooLargeError, addDirectory, exportToDirectory } from '../../src/content/index.ts'
import { TransferFeed } from '../../src/content/transfer-feed.ts'
import { getBlock, walkDagBlocks } from '../../src/content/stores.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'

const MiB = 1024 * 1024

/** the export's store: counts reads of raw leaves (what the feed should spare it) */
class CountingStore extends MemoryBlockstore {
  leafReads = 0
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    if (cid.code === raw.code) this.leafReads++
    yield * super.get(cid, options)
  }
}

async function sourceTree (): Promise<{ source: MemoryBlockstore, root: CID, dir: string, order: Array<{ cid: CID, bytes: Uint8Array }> }> {
  const dir = await tempDir()
  await mkdir(join(dir, 'src'))
  await writeFile(join(dir, 'src', 'a.bin'), randomBytes(3 * MiB + 17))
  await writeFile(join(dir, 'src', 'b.bin'), randomBytes(3 * MiB + 5))
  const source = new MemoryBlockstore()
  const { cid: root } = await addDirectory(source, join(dir, 'src'))
  // depth first, links in order: the order the DAG transfer brings blocks in
  const order: Array<{ cid: CID, bytes: Uint8Array }> = []
  for await (const b of walkDagBlocks(source, root)) order.push(b)
  return { source, root, dir, order }
}

afterAll(async () => { await cleanupAll() })

describe('an export beside a DAG transfer', () => {
  it('creates the first file before the transfer has ended, and reads none of the leaves the transfer handed it back from the store', async () => {
    const { root, dir, order } = await sourceTree()
    const local = new CountingStore()
    let firstFileAt = -1
    let transferEndedAt = -1
    let step = 0
    let sawFirstFile: () => void = () => {}
    const firstFile = new Promise<void>(resolve => { sawFirstFile = resolve })
    const aLeaves = order.filter(b => b.cid.code === raw.code).length / 2
    const r = await exportToDirectory(local, root, join(dir, 'out'), {
      onEntry: (kind) => { if (kind === 'file' && firstFileAt < 0) { firstFileAt = step++; sawFirstFile() } },
      transfer: async (_root, _bounds, options) => {
        let leaves = 0
        for (const { cid, bytes } of order) {
          // half-way (a.bin's leaves delivered), wait for the export to have
          // begun writing: an export that waits for the transfer's end never
          // does, and the bound lets this test fail instead of hanging
          if (cid.code === raw.code && leaves++ === aLeaves) await Promise.race([firstFile, new Promise(resolve => setTimeout(resolve, 10_000))])
          options.onBlock(cid, bytes)
          await local.put(cid, bytes)
          await new Promise(resolve => setImmediate(resolve))
        }
        transferEndedAt = step++
        return { complete: true }
      }
    })
    expect(r.files).toBe(2)
    expect(firstFileAt, 'the first file was created before the transfer ended').toBeGreaterThanOrEqual(0)
    expect(firstFileAt).toBeLessThan(transferEndedAt)
    expect(local.leafReads, 'leaves read back from the store').toBe(0)
    for (const name of ['a.bin', 'b.bin']) {
      expect((await readFile(join(dir, 'out', name))).equals(await readFile(join(dir, 'src', name)))).toBe(true)
    }
  })

  it('a block the feed no longer holds is read from the store once stored; one the transfer never brought, from the store after its end', async () => {
    const store = new MemoryBlockstore()
    const { order } = await sourceTree()
    const leaves = order.filter(b => b.cid.code === raw.code)
    const [a, b, c, missing] = leaves as [typeof order[0], typeof order[0], typeof order[0], typeof order[0]]
    const feed = new TransferFeed(store, store, { maxHeldBytes: MiB + MiB / 2 })
    feed.arrived(a.cid, a.bytes)
    feed.arrived(b.cid, b.bytes) // a is dropped: over the bound, not yet stored
    expect(await getBlock(feed.store, b.cid)).toBe(b.bytes) // the arrival itself, not a copy read back
    let gotA: Uint8Array | undefined
    const readingA = getBlock(feed.store, a.cid).then(x => { gotA = x })
    await new Promise(resolve => setImmediate(resolve))
    expect(gotA, 'a dropped block not yet stored is waited for, not fetched').toBeUndefined()
    await store.put(a.cid, a.bytes)
    feed.arrived(c.cid, c.bytes) // any arrival wakes the reader to look again
    await readingA
    expect(Buffer.from(gotA as Uint8Array).equals(a.bytes)).toBe(true)
    let gotMissing: Uint8Array | undefined
    const readingMissing = getBlock(feed.store, missing.cid).then(x => { gotMissing = x }, () => {})
    await new Promise(resolve => setImmediate(resolve))
    expect(gotMissing).toBeUndefined()
    // the transfer ends without it: the store is asked (its network path, in a daemon)
    await store.put(missing.cid, missing.bytes)
    feed.ended()
    await readingMissing
    expect(Buffer.from(gotMissing as Uint8Array).equals(missing.bytes)).toBe(true)
  })

  it('an export that fails (over its byte cap) stops the transfer, and returns only once the transfer has ended', async () => {
    const { root, dir, order } = await sourceTree()
    const local = new MemoryBlockstore()
    let aborted = false
    let transferDone = false
    const err = await exportToDirectory(local, root, join(dir, 'out2'), {
      maxBytes: 2 * MiB,
      transfer: async (_root, _bounds, options) => {
        const signal = options.signal as AbortSignal
        let leaves = 0
        try {
          for (const { cid, bytes } of order) {
            // after 3 MiB of leaves (over the export's cap), hold on until told to stop (bounded: a failure, not a hang)
            if (cid.code === raw.code && leaves++ === 3) await new Promise(resolve => { signal.addEventListener('abort', resolve, { once: true }); setTimeout(resolve, 10_000) })
            if (signal.aborted) { aborted = true; throw signal.reason }
            options.onBlock(cid, bytes)
            await local.put(cid, bytes)
            await new Promise(resolve => setImmediate(resolve))
          }
          return { complete: true }
        } finally {
          transferDone = true
        }
      }
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ContentTooLargeError)
    expect(aborted, 'the transfer was told to stop').toBe(true)
    expect(transferDone, 'and had ended when the export returned').toBe(true)
  })
})
