/**
 * On-disk stores of a node home, and DAG helpers that need only `get`.
 */
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { logger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { UnsupportedCodecError } from './errors.ts'
import { concatChunks } from './block-writer.ts'
import { PackBlockstore, migrateFromFsBlockstore } from '../store/pack/index.ts'
import type { Blockstore } from 'interface-blockstore'

const log = logger('concur:stores')

export interface Stores {
  blockstore: PackBlockstore
  datastore: LevelDatastore
  close(): Promise<void>
}

/** where a home keeps its blocks: append-only packs (src/store/pack) */
export const BLOCKSTORE_DIR = 'blockstore'
/** where homes made before the pack store kept them (blockstore-fs, one file per block): moved on first open */
export const LEGACY_BLOCKS_DIR = 'blocks'

/**
 * Opens `<home>/datastore` (LevelDB, whose lock keeps other processes off
 * the home) and then `<home>/blockstore` (the pack store). A home made before
 * the pack store has `<home>/blocks`: its blocks are moved over, each checked
 * against its CID, and the old directory is removed once they are durable.
 * A move cut short is done again at the next open (it skips what is there).
 */
export async function openStores (homeDir: string): Promise<Stores> {
  const datastore = new LevelDatastore(join(homeDir, 'datastore'))
  // the datastore first: its lock (LevelDB's LOCK) is what keeps a second
  // process off this home, and it must be held before the blockstore is touched
  await datastore.open()
  const blockstore = new PackBlockstore(join(homeDir, BLOCKSTORE_DIR))
  try {
    await blockstore.open()
    const legacy = join(homeDir, LEGACY_BLOCKS_DIR)
    if (existsSync(legacy)) {
      const moved = await migrateFromFsBlockstore(legacy, blockstore)
      log('moved %d blocks (%d bytes) from %s into the pack store; %d skipped', moved.blocks, moved.bytes, legacy, moved.skipped.length)
      await rm(legacy, { recursive: true, force: true })
    }
  } catch (err) {
    await blockstore.close().catch(() => {})
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
