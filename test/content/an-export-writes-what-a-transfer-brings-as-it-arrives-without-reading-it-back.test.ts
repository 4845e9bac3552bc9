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
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID as CIDClass } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import * as raw from 'multiformats/codecs/raw'
import type { CID } from 'multiformats/cid'
import { afterAll, describe, expect, it } from 'vitest'
import { ContentTooLargeError, FeedClosedError, addDirectory, exportToDirectory } from '../../src/content/index.ts'
import { TransferFeed } from '../../src/content/transfer-feed.ts'
import { readFile as readFileBlocks } from '../../src/content/read-file.ts'
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

  it('a block the feed could not hold is read from the store once stored; one the transfer never brought, from the store after its end', async () => {
    const store = new MemoryBlockstore()
    const { order } = await sourceTree()
    const leaves = order.filter(b => b.cid.code === raw.code)
    const [a, b, c, missing] = leaves as [typeof order[0], typeof order[0], typeof order[0], typeof order[0]]
    const feed = new TransferFeed(store, store, { maxHeldBytes: MiB + MiB / 2 })
    feed.arrived(a.cid, a.bytes)
    feed.arrived(b.cid, b.bytes) // not held: over the bound (a, older, is what a reader wants first), and not yet stored
    expect(await getBlock(feed.store, a.cid)).toBe(a.bytes) // the arrival itself, not a copy read back
    let gotB: Uint8Array | undefined
    const readingB = getBlock(feed.store, b.cid).then(x => { gotB = x })
    await new Promise(resolve => setImmediate(resolve))
    expect(gotB, 'a block not held and not yet stored is waited for, not fetched').toBeUndefined()
    await store.put(b.cid, b.bytes)
    feed.arrived(c.cid, c.bytes) // any arrival wakes the reader to look again
    await readingB
    expect(Buffer.from(gotB as Uint8Array).equals(b.bytes)).toBe(true)
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

/** a store whose get of a block it lacks waits, as the network would, until its signal is aborted */
class NetStore extends MemoryBlockstore {
  readonly netReads: string[] = []
  pending = 0
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    if (!(await this.has(cid))) {
      this.netReads.push(cid.toString())
      this.pending++
      try {
        await new Promise((_resolve, reject) => { options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason as Error) }, { once: true }) })
      } finally { this.pending-- }
    }
    yield * super.get(cid, options)
  }
}

async function block (codec: number, bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CIDClass.createV1(codec, await sha256.digest(bytes)), bytes }
}

/** a directory with file f: its first leaf holds 5 bytes but is declared 10, its second exists nowhere (review finding 1) */
async function hostileTree (): Promise<Record<'l1' | 'l2' | 'file' | 'root', { cid: CID, bytes: Uint8Array }>> {
  const l1 = await block(raw.code, new Uint8Array(5).fill(1))
  const l2 = await block(raw.code, new Uint8Array(10).fill(2))
  const file = await block(dagPb.code, dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'file', blockSizes: [10n, 10n] }).marshal(), Links: [{ Hash: l1.cid, Tsize: 10 }, { Hash: l2.cid, Tsize: 10 }] })))
  const root = await block(dagPb.code, dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'f', Hash: file.cid, Tsize: 100 }] })))
  return { l1, l2, file, root }
}

describe('what a failed export leaves behind (review of the overlap)', () => {
  it('a walk refused at a leaf never starts reading the next one: no network read outlives the export, with or without a transfer', async () => {
    for (const withTransfer of [true, false]) {
      const t = await hostileTree()
      const store = new NetStore()
      if (!withTransfer) for (const b of [t.root, t.file, t.l1]) await store.put(b.cid, b.bytes)
      const err = await exportToDirectory(store, t.root.cid, join(await tempDir(), 'out'), {
        ...(withTransfer
          ? {
              transfer: async (_r: CID, _b: unknown, o: { onBlock: (cid: CID, bytes: Uint8Array) => void }) => {
                for (const b of [t.root, t.file, t.l1]) { o.onBlock(b.cid, b.bytes); await store.put(b.cid, b.bytes) }
                return { complete: false }
              }
            }
          : {})
      }).catch((e: unknown) => e)
      expect((err as Error).name).toBe('MalformedFileError')
      expect(store.netReads, `withTransfer=${String(withTransfer)}`).toEqual([])
      expect(store.pending).toBe(0)
    }
  })

  it('a read-ahead still running when the walk is left is cancelled', async () => {
    const { order } = await sourceTree()
    const store = new NetStore()
    for (const b of order) await store.put(b.cid, b.bytes)
    // a.bin: its node, then its leaves; the second leaf is not held, so reading it waits on "the network"
    const fileNode = order[1] as { cid: CID, bytes: Uint8Array }
    const node = dagPb.decode(fileNode.bytes)
    const second = (node.Links[1] as { Hash: CID }).Hash
    await store.delete(second)
    const chunks = readFileBlocks(store, { kind: 'pb', cid: fileNode.cid, node, unixfs: UnixFS.unmarshal(node.Data as Uint8Array) })
    const first = await chunks.next()
    expect(first.done).toBe(false)
    // the read of the second leaf began ahead, while the first was handed over
    expect(store.netReads).toEqual([second.toString()])
    expect(store.pending).toBe(1)
    // the reader stops: the walk ends and takes its read-ahead with it
    await chunks.return(undefined)
    await new Promise(resolve => setImmediate(resolve))
    expect(store.pending).toBe(0)
  })

  it('once the export has ended the feed holds nothing, and a read through it fails instead of waiting', async () => {
    const { order } = await sourceTree()
    const store = new MemoryBlockstore()
    const feed = new TransferFeed(store, store)
    const [a, b] = order.filter(x => x.cid.code === raw.code) as [typeof order[0], typeof order[0]]
    feed.arrived(a.cid, a.bytes)
    const waiting = getBlock(feed.store, b.cid).catch((e: unknown) => e)
    feed.close()
    expect(await waiting).toBeInstanceOf(FeedClosedError)
    expect(await getBlock(feed.store, a.cid).catch((e: unknown) => e)).toBeInstanceOf(FeedClosedError)
  })

  it('a read whose signal is aborted while the store is asked what it holds ends at once', async () => {
    const { order } = await sourceTree()
    const ac = new AbortController()
    const feed = new TransferFeed(new MemoryBlockstore(), { has: async () => { ac.abort(new Error('stop')); return false } })
    const err = await getBlock(feed.store, (order[0] as { cid: CID }).cid, { signal: ac.signal }).catch((e: unknown) => e)
    expect((err as Error).message).toBe('stop')
  })
})
