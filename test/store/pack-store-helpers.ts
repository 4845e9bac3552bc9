/**
 * Helpers shared by the pack blockstore tests (and the crash child): blocks
 * named by their hash, reading a block whole, checking that bytes hash to
 * their CID.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import type { PackBlockstore } from '../../src/store/pack/index.ts'

export interface TestBlock { cid: CID, bytes: Uint8Array }

const SHA2_256 = 0x12
const SHA2_512 = 0x13

/** a raw block named by sha2-256 (the CIDs concur makes) or sha2-512 (kept with a crc32) */
export function blockOf (bytes: Uint8Array, hash: 'sha256' | 'sha512' = 'sha256'): TestBlock {
  const digest = createHash(hash).update(bytes).digest()
  return { cid: CID.createV1(raw.code, createDigest(hash === 'sha256' ? SHA2_256 : SHA2_512, digest)), bytes }
}

export function randomBlock (size: number, hash: 'sha256' | 'sha512' = 'sha256'): TestBlock {
  return blockOf(randomBytes(size), hash)
}

/** whether `bytes` hash to `cid` (sha2-256 and sha2-512 CIDs) */
export function hashesTo (cid: CID, bytes: Uint8Array): boolean {
  const algo = cid.multihash.code === SHA2_256 ? 'sha256' : cid.multihash.code === SHA2_512 ? 'sha512' : undefined
  if (algo == null) throw new Error(`test helper cannot hash multihash 0x${cid.multihash.code.toString(16)}`)
  return Buffer.compare(createHash(algo).update(bytes).digest(), cid.multihash.digest) === 0
}

export async function readBlock (store: Pick<PackBlockstore, 'get'>, cid: CID): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of store.get(cid)) parts.push(p)
  return Buffer.concat(parts)
}

/** the pack files of a store directory, oldest first */
export async function packFiles (dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'packs'))).filter(n => n.endsWith('.pack')).sort().map(n => join(dir, 'packs', n))
}
