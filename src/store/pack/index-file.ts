/**
 * The index file (`<dir>/index`): a snapshot of the in-memory index, so that
 * opening a store reads one file instead of every record header of every
 * pack. It is only a cache: the packs and the tombstone log are the truth.
 * For each pack it says up to which offset it was read ("covered"); on open
 * everything after that is scanned (recover.ts), and the tombstone log is
 * applied to all of it. A missing, short or corrupt index file costs a full
 * scan, never a block.
 *
 * Written through a temp file, fsynced, then renamed over the old one, so a
 * crash leaves one or the other, whole.
 *
 * Layout (little-endian): u32 magic 'CPX1', u32 version;
 * u32 pack count, per pack: u32 id, f64 covered length;
 * u32 entry count, per entry: u32 pack, f64 offset, u32 body length,
 * u8 check kind, u32 body crc, u16 CID length, CID bytes;
 * u32 crc32 of all the bytes before it.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { CID } from 'multiformats/cid'
import { fsyncDir, writeAllAt } from './file-io.ts'
import { CHECK_CRC32, CHECK_MULTIHASH, HEADER_FIXED_BYTES, MAX_CID_BYTES } from './record.ts'
import type { BlockEntry } from './entry.ts'
import type { CheckKind } from './record.ts'

export const INDEX_FILE = 'index'
const INDEX_MAGIC = 0x31585043 // 'CPX1'
const INDEX_VERSION = 1
const PACK_ROW_BYTES = 12
const ENTRY_FIXED_BYTES = 4 + 8 + 4 + 1 + 4 + 2

export interface IndexSnapshot {
  /** pack id → bytes of that pack the entries below account for */
  covered: Map<number, number>
  entries: BlockEntry[]
}

export async function saveIndex (dir: string, covered: ReadonlyMap<number, number>, entries: Iterable<BlockEntry>): Promise<number> {
  const parts: Buffer[] = []
  const head = Buffer.allocUnsafe(12 + covered.size * PACK_ROW_BYTES)
  head.writeUInt32LE(INDEX_MAGIC, 0)
  head.writeUInt32LE(INDEX_VERSION, 4)
  head.writeUInt32LE(covered.size, 8)
  let at = 12
  for (const [id, length] of covered) {
    head.writeUInt32LE(id, at)
    head.writeDoubleLE(length, at + 4)
    at += PACK_ROW_BYTES
  }
  parts.push(head)
  const list = [...entries]
  const count = Buffer.allocUnsafe(4)
  count.writeUInt32LE(list.length, 0)
  parts.push(count)
  // entries in chunks: one buffer per entry would be a million small allocations for small blocks
  const CHUNK = 4096
  for (let i = 0; i < list.length; i += CHUNK) {
    const slice = list.slice(i, i + CHUNK)
    const size = slice.reduce((n, e) => n + ENTRY_FIXED_BYTES + e.cid.bytes.byteLength, 0)
    const buf = Buffer.allocUnsafe(size)
    let p = 0
    for (const e of slice) {
      const cidBytes = e.cid.bytes
      buf.writeUInt32LE(e.pack, p)
      buf.writeDoubleLE(e.offset, p + 4)
      buf.writeUInt32LE(e.bodyLength, p + 12)
      buf.writeUInt8(e.checkKind, p + 16)
      buf.writeUInt32LE(e.bodyCrc, p + 17)
      buf.writeUInt16LE(cidBytes.byteLength, p + 21)
      buf.set(cidBytes, p + ENTRY_FIXED_BYTES)
      p += ENTRY_FIXED_BYTES + cidBytes.byteLength
    }
    parts.push(buf)
  }
  let crc = 0
  for (const b of parts) crc = crc32(b, crc)
  const tail = Buffer.allocUnsafe(4)
  tail.writeUInt32LE(crc, 0)
  parts.push(tail)

  const path = join(dir, INDEX_FILE)
  const tmp = `${path}.tmp`
  const h = await open(tmp, 'w')
  let written: number
  try {
    written = await writeAllAt(h, parts, 0)
    await h.datasync()
  } finally {
    await h.close()
  }
  await rename(tmp, path)
  await fsyncDir(dir)
  return written
}

export type LoadedIndex = { ok: true, snapshot: IndexSnapshot, bytes: number } | { ok: false, reason: string }

/** Reads the index file; any defect makes it unusable as a whole (the caller rescans the packs). */
export async function loadIndex (dir: string): Promise<LoadedIndex> {
  let buf: Buffer
  try {
    buf = await readFile(join(dir, INDEX_FILE))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, reason: 'no index file' }
    throw err
  }
  try {
    return { ok: true, snapshot: parse(buf), bytes: buf.byteLength }
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
}

function parse (buf: Buffer): IndexSnapshot {
  if (buf.byteLength < 20) throw new Error('index file too short')
  if (crc32(buf.subarray(0, buf.byteLength - 4)) !== buf.readUInt32LE(buf.byteLength - 4)) throw new Error('index file checksum mismatch')
  if (buf.readUInt32LE(0) !== INDEX_MAGIC) throw new Error('not an index file')
  if (buf.readUInt32LE(4) !== INDEX_VERSION) throw new Error(`index file version ${buf.readUInt32LE(4)} unknown`)
  const end = buf.byteLength - 4
  const packCount = buf.readUInt32LE(8)
  let at = 12
  const covered = new Map<number, number>()
  for (let i = 0; i < packCount; i++) {
    if (at + PACK_ROW_BYTES > end) throw new Error('index file truncated in its pack table')
    covered.set(buf.readUInt32LE(at), buf.readDoubleLE(at + 4))
    at += PACK_ROW_BYTES
  }
  if (at + 4 > end) throw new Error('index file truncated')
  const count = buf.readUInt32LE(at)
  at += 4
  const entries: BlockEntry[] = []
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_FIXED_BYTES > end) throw new Error('index file truncated in its entries')
    const checkKind = buf.readUInt8(at + 16)
    if (checkKind !== CHECK_CRC32 && checkKind !== CHECK_MULTIHASH) throw new Error('index file names an unknown check kind')
    const cidLength = buf.readUInt16LE(at + 21)
    if (cidLength === 0 || cidLength > MAX_CID_BYTES || at + ENTRY_FIXED_BYTES + cidLength > end) throw new Error('index file entry out of bounds')
    const cid = CID.decode(Uint8Array.from(buf.subarray(at + ENTRY_FIXED_BYTES, at + ENTRY_FIXED_BYTES + cidLength)))
    entries.push({
      cid,
      pack: buf.readUInt32LE(at),
      offset: buf.readDoubleLE(at + 4),
      headerLength: HEADER_FIXED_BYTES + cidLength,
      bodyLength: buf.readUInt32LE(at + 12),
      checkKind: checkKind as CheckKind,
      bodyCrc: buf.readUInt32LE(at + 17)
    })
    at += ENTRY_FIXED_BYTES + cidLength
  }
  if (at !== end) throw new Error('index file has trailing bytes')
  return { covered, entries }
}
