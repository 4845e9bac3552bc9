/**
 * One record of a pack file: a header naming the block and how to check it,
 * then the block's bytes. Records are only ever appended; a pack file is a
 * sequence of them and nothing else, so a pack can always be re-read from
 * its start without any other file.
 *
 * Layout (little-endian), HEADER_FIXED_BYTES + cid bytes + body:
 *
 *   0  u32  magic 'CPK1'     a torn or zeroed tail is told from a record at once
 *   4  u8   record type      1 = block (the only one so far; others are refused)
 *   5  u8   check kind       CHECK_CRC32 or CHECK_MULTIHASH (see below)
 *   6  u16  CID length       1 .. MAX_CID_BYTES
 *   8  u32  body length      0 .. MAX_BLOCK_BYTES
 *   12 u32  body crc32       0 when the check kind is CHECK_MULTIHASH
 *   16 u32  header crc32     over bytes 0..15 and the CID bytes: a torn header
 *                            is never read as a (wrong) length
 *   20 ...  CID bytes, then the body
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { CID } from 'multiformats/cid'

export const RECORD_MAGIC = 0x314b5043 // 'CPK1' read as a little-endian u32
export const RECORD_TYPE_BLOCK = 1
export const HEADER_FIXED_BYTES = 20
/** a CIDv1 with a 64-byte digest is ~70 bytes; anything longer is a corrupt header, not a CID */
export const MAX_CID_BYTES = 256
/** the body length is a u32 field; bitswap itself refuses blocks over 4 MiB */
export const MAX_BLOCK_BYTES = 0xffff_ffff

/**
 * How a body is checked. CHECK_MULTIHASH (the default policy): the body must
 * hash (sha2-256) to the CID's own digest, so nothing is computed at write
 * time (the importer and helia already hashed the block to name it) and a
 * served block is checked against its name (0.6-0.9 ms per MiB per read).
 * CHECK_CRC32 (policy 'crc32', and every CID that is not sha2-256): a crc32
 * of the body, computed at write time, cheaper to check. The kind is stored
 * per record, so a store holds both and either policy reads what the other
 * wrote. See PackBlockstoreInit.checksum for the measurements.
 */
export const CHECK_CRC32 = 0
export const CHECK_MULTIHASH = 1
export type CheckKind = typeof CHECK_CRC32 | typeof CHECK_MULTIHASH

const SHA2_256 = 0x12
const SHA256_BYTES = 32

export type ChecksumPolicy = 'multihash' | 'crc32'

/** How a block of this CID is checked under `policy` (multihash only where the CID's hash is sha2-256). */
export function checkKindFor (cid: CID, policy: ChecksumPolicy): CheckKind {
  if (policy === 'multihash' && cid.multihash.code === SHA2_256 && cid.multihash.digest.byteLength <= SHA256_BYTES && cid.multihash.digest.byteLength > 0) return CHECK_MULTIHASH
  return CHECK_CRC32
}

export interface RecordHeader {
  cid: CID
  checkKind: CheckKind
  bodyLength: number
  bodyCrc: number
  /** header bytes including the CID: the body starts this far after the record start */
  headerLength: number
}

/** Encodes the header of a record holding `body` under `cid`. */
export function encodeHeader (cid: CID, checkKind: CheckKind, body: Uint8Array): Buffer {
  const cidBytes = cid.bytes
  const header = Buffer.allocUnsafe(HEADER_FIXED_BYTES + cidBytes.byteLength)
  header.writeUInt32LE(RECORD_MAGIC, 0)
  header.writeUInt8(RECORD_TYPE_BLOCK, 4)
  header.writeUInt8(checkKind, 5)
  header.writeUInt16LE(cidBytes.byteLength, 6)
  header.writeUInt32LE(body.byteLength, 8)
  header.writeUInt32LE(checkKind === CHECK_CRC32 ? crc32(body) : 0, 12)
  header.set(cidBytes, HEADER_FIXED_BYTES)
  header.writeUInt32LE(crc32(cidBytes, crc32(header.subarray(0, 16))), 16)
  return header
}

export type HeaderResult =
  | { ok: true, header: RecordHeader }
  /** `need`: the buffer ends inside the header; read at least this many bytes and try again */
  | { ok: false, need: number }
  | { ok: false, need?: undefined, reason: string }

/** Decodes the header at the start of `buf`; never throws on garbage. */
export function decodeHeader (buf: Uint8Array): HeaderResult {
  if (buf.byteLength < HEADER_FIXED_BYTES) return { ok: false, need: HEADER_FIXED_BYTES }
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.readUInt32LE(0) !== RECORD_MAGIC) return { ok: false, reason: 'no record magic' }
  if (view.readUInt8(4) !== RECORD_TYPE_BLOCK) return { ok: false, reason: 'unknown record type' }
  const checkKind = view.readUInt8(5)
  if (checkKind !== CHECK_CRC32 && checkKind !== CHECK_MULTIHASH) return { ok: false, reason: 'unknown check kind' }
  const cidLength = view.readUInt16LE(6)
  if (cidLength === 0 || cidLength > MAX_CID_BYTES) return { ok: false, reason: 'CID length out of range' }
  const headerLength = HEADER_FIXED_BYTES + cidLength
  if (buf.byteLength < headerLength) return { ok: false, need: headerLength }
  const cidBytes = view.subarray(HEADER_FIXED_BYTES, headerLength)
  if (crc32(cidBytes, crc32(view.subarray(0, 16))) !== view.readUInt32LE(16)) return { ok: false, reason: 'header checksum mismatch' }
  let cid: CID
  try {
    // a copy: the CID outlives the read buffer, which may be a large block
    cid = CID.decode(Uint8Array.from(cidBytes))
  } catch {
    return { ok: false, reason: 'not a CID' }
  }
  return { ok: true, header: { cid, checkKind, bodyLength: view.readUInt32LE(8), bodyCrc: view.readUInt32LE(12), headerLength } }
}

/**
 * Whether `body` is the block the record names: its crc32, or its sha2-256
 * against the CID's digest. Hashed here, on the calling thread: WebCrypto's
 * digest (tried before) first copies its input into a fresh allocation on
 * this thread, then hops to the thread pool; measured on Node 24 (2-core VM,
 * 1 MiB blocks, one after another as a serving peer and an export read
 * them): 0.98-1.03 ms per MiB and 1.04-1.09 ms of CPU, against 0.68-0.71 ms
 * for createHash, and 1 MiB of garbage per read (the fetch's profile had
 * garbage collection at 16 % on both sides).
 */
export async function bodyMatches (cid: CID, checkKind: CheckKind, bodyCrc: number, body: Uint8Array): Promise<boolean> {
  if (checkKind === CHECK_CRC32) return crc32(body) === bodyCrc
  const want = cid.multihash.digest
  const got = createHash('sha256').update(body).digest()
  // a truncated sha2-256 multihash names the first digest bytes
  return Buffer.compare(got.subarray(0, want.byteLength), want) === 0
}
