/**
 * What the in-memory index holds per block: where its record is and how to
 * check its bytes. Keyed by the multihash, not the whole CID: a block is its
 * bytes, and the same bytes under another codec or CID version (a CIDv0 and
 * its CIDv1 dag-pb twin) are one block, as in blockstore-fs and helia's pins.
 */
import type { CheckKind } from './record.ts'
import type { CID } from 'multiformats/cid'

export interface BlockEntry {
  /** the CID the block was first stored under (what getAll yields) */
  readonly cid: CID
  readonly pack: number
  /** where the record starts in its pack */
  readonly offset: number
  /** record header bytes (fixed part + CID): the body starts at offset + headerLength */
  readonly headerLength: number
  readonly bodyLength: number
  readonly checkKind: CheckKind
  readonly bodyCrc: number
}

export function recordLength (e: BlockEntry): number {
  return e.headerLength + e.bodyLength
}

/** the index key of a CID: its multihash bytes as a latin1 string (compact, and fast to build) */
export function blockKey (cid: CID): string {
  const mh = cid.multihash.bytes
  return Buffer.from(mh.buffer, mh.byteOffset, mh.byteLength).toString('latin1')
}
