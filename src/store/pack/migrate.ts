/**
 * Moving an existing blockstore-fs directory (a home's `<home>/blocks`, one
 * file per block, `<shard>/<BASE32 multihash>.data`) into a PackBlockstore.
 * Every block is checked against its multihash on the way: blockstore-fs
 * never fsynced, so a crash may have left a file empty or short, and such a
 * block must not become a record that looks valid. Idempotent: blocks already
 * in the pack store are skipped, so a migration cut short is run again. The
 * old directory is left for the caller to remove once the pack store is
 * closed (everything durable).
 *
 * The directory is walked here rather than through FsBlockstore.getAll: that
 * decodes a file name's multihash as if it were a CID, which throws for any
 * hash but sha2-256 ("Invalid CID version 19" for sha2-512).
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { decode as decodeDigest } from 'multiformats/hashes/digest'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import type { PackBlockstore } from './pack-blockstore.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { MultihashHasher } from 'multiformats/hashes/interface'

/** the hashes a block can be checked with here; a block under another is skipped and named */
const HASHERS: ReadonlyMap<number, MultihashHasher> = new Map<number, MultihashHasher>([[sha256.code, sha256], [sha512.code, sha512]])
/** blocks handed to putMany at once (one write and one fdatasync each) */
const MIGRATE_BATCH_BYTES = 64 * 1024 * 1024
/** blockstore-fs's file extension (its NextToLast sharding default) */
const FS_EXTENSION = '.data'

export interface MigrateOptions extends AbortOptions {
  onProgress?: (done: { blocks: number, bytes: number }) => void
}

export interface MigrateResult {
  /** blocks now in the pack store (copied, or there already) */
  blocks: number
  bytes: number
  /** files not copied: a name that is not a multihash, bytes that do not hash to it, or a hash not checked here */
  skipped: Array<{ file: string, reason: string }>
}

/**
 * Copies every block of the blockstore-fs directory `fsDir` into `store`.
 * Blocks are stored under CIDv1 raw of their multihash (blockstore-fs kept
 * only the multihash; the pack store, helia's pins and bitswap all key blocks
 * by it).
 */
export async function migrateFromFsBlockstore (fsDir: string, store: PackBlockstore, options: MigrateOptions = {}): Promise<MigrateResult> {
  const result: MigrateResult = { blocks: 0, bytes: 0, skipped: [] }
  let batch: Array<{ cid: CID, bytes: Uint8Array }> = []
  let batchBytes = 0
  const flush = async (): Promise<void> => {
    for await (const _ of store.putMany(batch, options)) { /* drain */ }
    batch = []
    batchBytes = 0
    options.onProgress?.({ blocks: result.blocks, bytes: result.bytes })
  }
  const entries = await readdir(fsDir, { recursive: true, withFileTypes: true })
  for (const e of entries) {
    options.signal?.throwIfAborted()
    if (!e.isFile() || !e.name.endsWith(FS_EXTENSION)) continue
    const file = join(e.parentPath, e.name)
    let cid: CID
    try {
      cid = CID.createV1(raw.code, decodeDigest(base32upper.decode(e.name.slice(0, -FS_EXTENSION.length))))
    } catch {
      result.skipped.push({ file, reason: 'its name is not a base32 multihash' })
      continue
    }
    const hasher = HASHERS.get(cid.multihash.code)
    if (hasher == null) {
      result.skipped.push({ file, reason: `multihash 0x${cid.multihash.code.toString(16)} is not checked here` })
      continue
    }
    const body = await readFile(file)
    const digest = await hasher.digest(body)
    if (Buffer.compare(digest.digest.subarray(0, cid.multihash.digest.byteLength), cid.multihash.digest) !== 0) {
      result.skipped.push({ file, reason: `its ${body.byteLength} bytes do not hash to its name` })
      continue
    }
    result.blocks++
    result.bytes += body.byteLength
    if (store.has(cid)) continue
    batch.push({ cid, bytes: body })
    batchBytes += body.byteLength
    if (batchBytes >= MIGRATE_BATCH_BYTES) await flush()
  }
  if (batch.length > 0) await flush()
  return result
}
