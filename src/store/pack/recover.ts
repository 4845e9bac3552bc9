/**
 * Recovery: reading the records of a pack that the index file does not
 * cover (everything written after the last index save, or a whole pack when
 * there is no usable index file), checking each one, and cutting off a torn
 * tail.
 *
 * What a crash can leave at the end of the pack being written: nothing, a
 * header cut short, a header whose body runs past the end of the file, or a
 * whole-length record whose body pages never reached the disk (zeros, or
 * stale bytes). None of these was acknowledged (putMany resolves only after
 * the fdatasync that follows the write), so each is truncated away: left in
 * place, the next append would land behind it and every later scan would stop
 * there, losing acknowledged blocks.
 *
 * A complete record whose body fails its check but is followed by more
 * records is skipped, not truncated: later, valid records are kept, and the
 * bad one is never indexed, so never served; compaction drops its bytes.
 */
import { bodyMatches, decodeHeader } from './record.ts'
import type { BlockEntry } from './entry.ts'
import type { PackFile } from './pack-file.ts'
import type { AbortOptions } from '@libp2p/interface'

/** one read covers any header (HEADER_FIXED_BYTES + MAX_CID_BYTES) and a small block's body with it */
const HEAD_READ_BYTES = 4096

export interface ScanOptions extends AbortOptions {
  /** whether the record at this offset is named by a tombstone (dead: not read, not checked) */
  isDead: (offset: number) => boolean
}

export interface ScanResult {
  /** the valid, live records found, in file order */
  records: BlockEntry[]
  /** complete records whose body failed its check (skipped) */
  corrupt: Array<{ offset: number, reason: string }>
  /** bytes cut off the end of the file (a torn tail) */
  truncatedBytes: number
  /** why the tail was cut, when it was */
  truncatedReason?: string
}

export async function scanPack (pack: PackFile, from: number, options: ScanOptions): Promise<ScanResult> {
  const records: BlockEntry[] = []
  const corrupt: Array<{ offset: number, reason: string }> = []
  const size = pack.size
  let at = from
  let reason: string | undefined
  while (at < size) {
    options.signal?.throwIfAborted()
    const head = await pack.read(at, Math.min(HEAD_READ_BYTES, size - at))
    const decoded = decodeHeader(head)
    if (!decoded.ok) {
      reason = decoded.need != null ? 'header cut short by the end of the file' : decoded.reason
      break
    }
    const h = decoded.header
    const length = h.headerLength + h.bodyLength
    if (at + length > size) {
      reason = 'body cut short by the end of the file'
      break
    }
    if (options.isDead(at)) {
      at += length
      continue
    }
    const body = h.headerLength + h.bodyLength <= head.byteLength
      ? head.subarray(h.headerLength, h.headerLength + h.bodyLength)
      : await pack.read(at + h.headerLength, h.bodyLength)
    if (body.byteLength !== h.bodyLength || !(await bodyMatches(h.cid, h.checkKind, h.bodyCrc, body))) {
      if (at + length === size) {
        // the last record: its pages did not all reach the disk before the crash
        reason = 'last record fails its check'
        break
      }
      corrupt.push({ offset: at, reason: `block ${h.cid.toString()} fails its ${h.checkKind === 0 ? 'crc32' : 'multihash'} check` })
      at += length
      continue
    }
    records.push({ cid: h.cid, pack: pack.id, offset: at, headerLength: h.headerLength, bodyLength: h.bodyLength, checkKind: h.checkKind, bodyCrc: h.bodyCrc })
    at += length
  }
  let truncatedBytes = 0
  if (at < size) {
    truncatedBytes = size - at
    await pack.handle.truncate(at)
    await pack.handle.datasync()
    pack.size = at
  }
  return { records, corrupt, truncatedBytes, ...(reason != null && truncatedBytes > 0 ? { truncatedReason: reason } : {}) }
}
