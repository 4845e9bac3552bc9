/**
 * On-disk stores of a node home, and DAG helpers that need only `get`.
 */
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { FsBlockstore } from 'blockstore-fs'
import { LevelDatastore } from 'datastore-level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { UnsupportedCodecError } from './errors.ts'
import { concatChunks } from './block-writer.ts'
import type { Blockstore } from 'interface-blockstore'

export interface Stores {
  blockstore: FsBlockstore
  datastore: LevelDatastore
  close(): Promise<void>
}

/**
 * Opens `<home>/datastore` (LevelDB, whose lock keeps other processes off
 * the home) and then `<home>/blocks` (blockstore-fs).
 * Both must be `open()`ed before helia or the importer touch them.
 */
export async function openStores (homeDir: string): Promise<Stores> {
  const blockstore = new FsBlockstore(join(homeDir, 'blocks'))
  const datastore = new LevelDatastore(join(homeDir, 'datastore'))
  // the datastore first: its lock (LevelDB's LOCK) is what keeps a second
  // process off this home, and it must be held before the blockstore is touched
  await datastore.open()
  try {
    await blockstore.open()
  } catch (err) {
    await datastore.close()
    throw err
  }
  let closed = false
  return {
    blockstore,
    datastore,
    async close () {
      if (closed) return
      closed = true
      // LevelDB holds a lock file: it must be closed for the home to be reopened
      await Promise.allSettled([datastore.close(), blockstore.close()]).then(results => {
        const failed = results.find(r => r.status === 'rejected')
        if (failed != null) throw (failed as PromiseRejectedResult).reason
      })
    }
  }
}

export type ReadableBlockstore = Pick<Blockstore, 'get'>

/**
 * One block's bytes. `Blockstore.get` returns a (async) generator of chunks in
 * interface-blockstore 7; older stores returned a Uint8Array. Accept both.
 */
export async function getBlock (blockstore: ReadableBlockstore, cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
  const result: unknown = await blockstore.get(cid, options)
  if (result instanceof Uint8Array) return result
  return concatChunks(result as Iterable<Uint8Array> | AsyncIterable<Uint8Array>)
}

const IDENTITY_MULTIHASH = 0x00

export interface DagBlock {
  cid: CID
  bytes: Uint8Array
}

export interface WalkDagOptions {
  signal?: AbortSignal
}

/**
 * Every block of a dag-pb/raw DAG, each once, depth-first in link order
 * (root first: the order a CAR export wants). Identity CIDs carry their data
 * inline and have no stored block, so they are not yielded. Any other codec
 * is refused: a UnixFS DAG never contains one, and a crafted DAG pointing at
 * one would otherwise be silently truncated.
 */
export async function * walkDagBlocks (blockstore: ReadableBlockstore, root: CID, options: WalkDagOptions = {}): AsyncGenerator<DagBlock, void, undefined> {
  const seen = new Set<string>()
  // explicit stack: deep DAGs must not exhaust the call stack
  const stack: CID[] = [root]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const cid = stack.pop() as CID
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    if (cid.multihash.code === IDENTITY_MULTIHASH) continue
    if (cid.code !== dagPb.code && cid.code !== raw.code) {
      throw new UnsupportedCodecError(key, cid.code)
    }
    const bytes = await getBlock(blockstore, cid, options)
    yield { cid, bytes }
    if (cid.code === dagPb.code) {
      const links = dagPb.decode(bytes).Links
      for (let i = links.length - 1; i >= 0; i--) {
        const link = links[i]
        if (link != null) stack.push(CID.asCID(link.Hash) ?? CID.decode(link.Hash.bytes))
      }
    }
  }
}

/** Every block CID of a dag-pb/raw DAG, each once (see {@link walkDagBlocks}). */
export async function * walkDag (blockstore: ReadableBlockstore, root: CID, options: WalkDagOptions = {}): AsyncGenerator<CID, void, undefined> {
  for await (const { cid } of walkDagBlocks(blockstore, root, options)) yield cid
}

export interface DagSize {
  /** distinct stored blocks */
  blocks: number
  /** sum of their byte lengths: what a pin or a CAR of this DAG holds */
  bytes: number
}

/** Sizes every distinct block of the DAG (reads them all; fails if one is missing). */
export async function dagSize (blockstore: ReadableBlockstore, root: CID, options: WalkDagOptions = {}): Promise<DagSize> {
  let blocks = 0
  let bytes = 0
  for await (const block of walkDagBlocks(blockstore, root, options)) {
    blocks++
    bytes += block.bytes.byteLength
  }
  return { blocks, bytes }
}
