import { createCipheriv, createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { UnixFS } from 'ipfs-unixfs'

const IDENTITY_MULTIHASH = 0x00

/**
 * A Map-backed blockstore with the interface-blockstore 7 shapes (`get`
 * yields chunks). Counts calls so tests can see batching.
 */
export class MemoryBlockstore {
  readonly blocks = new Map<string, Uint8Array>()
  puts = 0
  putManyCalls = 0

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<CID> {
    this.puts++
    if (!(bytes instanceof Uint8Array)) throw new Error('test store only takes Uint8Array')
    this.blocks.set(cid.toString(), bytes)
    return cid
  }

  async * putMany (source: Iterable<{ cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> }> | AsyncIterable<{ cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> }>): AsyncGenerator<CID> {
    this.putManyCalls++
    for await (const { cid, bytes } of source) {
      yield await this.put(cid, bytes)
    }
  }

  async has (cid: CID): Promise<boolean> {
    return this.blocks.has(cid.toString())
  }

  async * get (cid: CID): AsyncGenerator<Uint8Array> {
    // an identity CID carries its block inline: answered without a lookup, as helia's blockstore does
    if (cid.multihash.code === IDENTITY_MULTIHASH) {
      yield cid.multihash.digest
      return
    }
    const block = this.blocks.get(cid.toString())
    if (block == null) throw Object.assign(new Error(`not found: ${cid.toString()}`), { name: 'NotFoundError' })
    // yield in two parts: callers must concatenate, as with blockstore-fs
    const half = block.byteLength >> 1
    yield block.subarray(0, half)
    yield block.subarray(half)
  }
}

/** Keeps only CIDs: for hashing-only imports of large vectors. */
export function nullBlockstore (): { put: (cid: CID) => Promise<CID> } {
  return { put: async (cid: CID) => cid }
}

/**
 * The keystream kubo's CID-profile fixtures use: ChaCha20, key =
 * sha256(seed), zero nonce, counter from 0 (node's 16-byte IV = 4-byte
 * counter + 12-byte nonce), encrypting zeros.
 */
export function keystream (seed: string): (n: number) => Buffer {
  const cipher = createCipheriv('chacha20', createHash('sha256').update(seed).digest(), Buffer.alloc(16))
  return (n: number) => cipher.update(Buffer.alloc(n))
}

export const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz01234567890-_'

/** File names as kubo's createDeterministicFiles draws them. */
export function deterministicNames (seed: string, count: number, len: number, lastLen: number): string[] {
  const next = keystream(seed)
  const names: string[] = []
  for (let i = 0; i < count; i++) {
    const bytes = next(i === count - 1 ? lastLen : len)
    let name = ''
    for (const b of bytes) name += NAME_ALPHABET[b % NAME_ALPHABET.length]
    names.push(name)
  }
  return names
}

export async function withTempDir<T> (fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'concur-content-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** A node of a small in-memory tree description used to write test trees. */
export type TreeSpec = { [name: string]: Uint8Array | { link: string } | TreeSpec }

export function isLinkSpec (v: unknown): v is { link: string } {
  return typeof v === 'object' && v != null && !(v instanceof Uint8Array) && typeof (v as { link?: unknown }).link === 'string' && Object.keys(v).length === 1
}

/**
 * Hand-built dag-pb/UnixFS nodes, for DAGs the importer would never produce
 * (duplicate names, "..", names with "/"): what a hostile peer could send.
 */
export async function putDagPb (bs: MemoryBlockstore, unixfs: UnixFS, links: Array<{ name: string, cid: CID }> = []): Promise<CID> {
  // encode() insists on sorted links; duplicates (equal names) are allowed
  const Links = links.map(l => ({ Name: l.name, Hash: l.cid, Tsize: 0 }))
  const bytes = dagPb.encode({ Data: unixfs.marshal(), Links })
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  await bs.put(cid, bytes)
  return cid
}

export async function putRaw (bs: MemoryBlockstore, bytes: Uint8Array): Promise<CID> {
  const cid = CID.createV1(raw.code, await sha256.digest(bytes))
  await bs.put(cid, bytes)
  return cid
}
