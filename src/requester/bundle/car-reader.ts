/**
 * A strict, synchronous CARv1 reader over bytes in memory. Pure (no fs): the
 * node build of @ipld/car's CarBufferReader imports `fs`, and its lookups are
 * linear per block. Everything here is bounds-checked; malformed input
 * throws CarFormatError, which verifyBundle turns into a reported problem.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID, varint } from 'multiformats'
import { CarFormatError } from './errors.ts'

export interface CarBlock {
  cid: CID
  bytes: Uint8Array
  /** byte offset of the section in the file, for messages */
  offset: number
}

export interface ParsedCar {
  version: number
  roots: CID[]
  blocks: CarBlock[]
}

/** A CARv1 header larger than this is not a header anyone wrote honestly. */
const MAX_HEADER_BYTES = 64 * 1024

function readVarint (bytes: Uint8Array, offset: number, what: string): [number, number] {
  if (offset >= bytes.length) throw new CarFormatError(`unexpected end of data reading ${what} at byte ${offset}`)
  // a varint is at most 9 bytes for values below 2^63; the top bit of the
  // last byte read must be clear, or the varint runs past the data
  let end = offset
  while (end < bytes.length && end - offset < 9 && ((bytes[end] as number) & 0x80) !== 0) end++
  if (end >= bytes.length || ((bytes[end] as number) & 0x80) !== 0) throw new CarFormatError(`bad varint for ${what} at byte ${offset}`)
  const [value, length] = varint.decode(bytes, offset)
  if (!Number.isSafeInteger(value) || value < 0) throw new CarFormatError(`varint out of range for ${what} at byte ${offset}`)
  return [value, length]
}

export function parseCar (bytes: Uint8Array): ParsedCar {
  if (!(bytes instanceof Uint8Array)) throw new CarFormatError('expected bytes')
  const [headerLength, hl] = readVarint(bytes, 0, 'header length')
  if (headerLength === 0) throw new CarFormatError('zero-length header')
  if (headerLength > MAX_HEADER_BYTES) throw new CarFormatError(`header of ${headerLength} bytes is too large`)
  if (hl + headerLength > bytes.length) throw new CarFormatError('header runs past the end of the data')
  let header: unknown
  try {
    header = dagCbor.decode(bytes.subarray(hl, hl + headerLength))
  } catch (err) {
    throw new CarFormatError(`header is not dag-cbor: ${(err as Error).message}`)
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new CarFormatError('header is not a map')
  const h = header as Record<string, unknown>
  if (typeof h.version !== 'number') throw new CarFormatError('header has no version')
  const version = h.version
  if (version !== 1) return { version, roots: [], blocks: [] }
  if (!Array.isArray(h.roots)) throw new CarFormatError('CARv1 header has no roots array')
  const roots = h.roots.map((r, i) => {
    const cid = CID.asCID(r)
    if (cid == null) throw new CarFormatError(`header roots[${i}] is not a CID`)
    return cid
  })
  const blocks: CarBlock[] = []
  let pos = hl + headerLength
  while (pos < bytes.length) {
    const offset = pos
    const [sectionLength, sl] = readVarint(bytes, pos, 'section length')
    if (sectionLength === 0) throw new CarFormatError(`zero-length section at byte ${offset}`)
    pos += sl
    if (pos + sectionLength > bytes.length) throw new CarFormatError(`section at byte ${offset} runs past the end of the data`)
    const section = bytes.subarray(pos, pos + sectionLength)
    let cid: CID
    let rest: Uint8Array
    try {
      [cid, rest] = CID.decodeFirst(section)
    } catch (err) {
      throw new CarFormatError(`bad CID in section at byte ${offset}: ${(err as Error).message}`)
    }
    blocks.push({ cid, bytes: rest, offset })
    pos += sectionLength
  }
  return { version, roots, blocks }
}
