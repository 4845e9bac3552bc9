/**
 * Reads the bytes of a UnixFS file from an untrusted DAG, one block at a time.
 *
 * Why not the exporter's `content()`: it reads children through a queue whose
 * failures nobody awaits (a child that is not UnixFS, or a missing block,
 * became an unhandled rejection that ended the daemon), it reads ahead, and
 * it follows children whose declared size is zero, so one 1 MiB node linking
 * 100,000 times to an empty block, itself linked 25,000 times from a file
 * that declares two bytes, had a worker visit 2.5 billion blocks. Here:
 * - blocks are read in order, and the signal is checked before each; at
 *   most one sibling is read ahead of the one being yielded, started only
 *   once that one passed its checks and was charged, and cancelled when the
 *   walk ends (so a refused walk reads at most one block past the refusal);
 * - every child must declare a size > 0, the sizes must add up to the
 *   node's, and a leaf must hold exactly what its parent declared: every
 *   visit yields bytes, so visits are bounded by the bytes a reader accepts;
 * - every block read is reported to `onBlock` (the bytes of a node, a floor
 *   for a leaf) so the caller can charge a budget that ends a walk over
 *   shared structure;
 * - depth is capped: importers build a few levels (1 MiB leaves, 1024 links
 *   per node: 3 levels hold 1 TiB).
 */
import { decode as decodePb } from '@ipld/dag-pb'
import type { PBNode } from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { MalformedFileError } from './errors.ts'
import { BLOCK_VISIT_MIN_BYTES } from './limits.ts'
import { getBlock } from './stores.ts'
import type { ReadableBlockstore } from './stores.ts'

const DAG_PB = 0x70
const RAW = 0x55
const IDENTITY = 0x00

/** deeper than any importer builds (1024 links and 1 MiB leaves: 3 levels are 1 TiB) */
export const MAX_FILE_DEPTH = 16

export interface ReadFileOptions extends AbortOptions {
  /** first byte to yield (blocks wholly before it are not read) */
  offset?: number
  /** most bytes to yield */
  length?: number
  /** every block read: a dag-pb node counts its bytes (at least BLOCK_VISIT_MIN_BYTES), a leaf BLOCK_VISIT_MIN_BYTES */
  onBlock?: (bytes: number, kind: 'node' | 'leaf') => void
}

/** a file's root as the exporter resolved it: a dag-pb node with its UnixFS data, or raw bytes */
export type FileRoot =
  | { kind: 'pb', cid: CID, node: PBNode, unixfs: UnixFS }
  | { kind: 'bytes', cid: CID, bytes: Uint8Array }

/** a child's bytes: an identity CID carries them inline, any other is read from the store */
async function readBlock (store: ReadableBlockstore, cid: CID, options: AbortOptions): Promise<Uint8Array> {
  options.signal?.throwIfAborted()
  if (cid.multihash.code === IDENTITY) return cid.multihash.digest
  return await getBlock(store, cid, options)
}

function fileData (cid: CID, node: PBNode): UnixFS {
  if (node.Data == null) throw new MalformedFileError(cid.toString(), 'a dag-pb node without UnixFS data')
  let fs: UnixFS
  try {
    fs = UnixFS.unmarshal(node.Data)
  } catch (err) {
    throw new MalformedFileError(cid.toString(), `bad UnixFS data: ${(err as Error).message}`)
  }
  if (fs.type !== 'file' && fs.type !== 'raw') throw new MalformedFileError(cid.toString(), `a ${fs.type} node inside a file`)
  return fs
}

/** the window [offset, end) of a file, as absolute positions */
interface Window { start: number, end: number }

function clip (bytes: Uint8Array, at: number, w: Window): Uint8Array | null {
  const from = Math.max(w.start - at, 0)
  const to = Math.min(w.end - at, bytes.byteLength)
  return to > from ? bytes.subarray(from, to) : null
}

async function * walkNode (store: ReadableBlockstore, cid: CID, node: PBNode, fs: UnixFS, at: number, w: Window, depth: number, options: ReadFileOptions): AsyncGenerator<Uint8Array> {
  if (depth > MAX_FILE_DEPTH) throw new MalformedFileError(cid.toString(), `deeper than ${MAX_FILE_DEPTH} levels`)
  const sizes = fs.blockSizes
  if (node.Links.length !== sizes.length) throw new MalformedFileError(cid.toString(), `${node.Links.length} links but ${sizes.length} block sizes`)
  const data = fs.data ?? new Uint8Array(0)
  let total = data.byteLength
  for (const s of sizes) {
    // a child of size 0 yields nothing: only a walk that costs without end would link one
    if (s <= 0n) throw new MalformedFileError(cid.toString(), 'a child of declared size 0')
    total += Number(s)
  }
  if (fs.fileSize() !== BigInt(total)) throw new MalformedFileError(cid.toString(), `declared size ${fs.fileSize()} but data and children hold ${total}`)
  const own = clip(data, at, w)
  if (own != null) yield own
  let pos = at + data.byteLength
  // one child read ahead: the next block is read (and checked against its
  // CID by the store) while the caller writes this one out, instead of after
  // (an export of 64 MiB was idle 30 % of its time waiting on reads). Only
  // once this block passed every check and was charged (so a walk refused at
  // block i never reads past i + 1), and cancelled when the walk ends any
  // other way than by reading it (a failed walk leaves no read running, over
  // the network or not)
  const local = new AbortController()
  const readOptions: AbortOptions = { signal: options.signal != null ? AbortSignal.any([options.signal, local.signal]) : local.signal }
  let ahead: { index: number, block: Promise<Uint8Array> } | undefined
  const readAhead = (i: number, from: number): void => {
    const next = node.Links[i]
    if (next == null || from >= w.end || from + Number(sizes[i]) <= w.start) return
    ahead = { index: i, block: readBlock(store, next.Hash, readOptions) }
    // awaited on its turn; a walk stopped before then must not leave it unhandled
    ahead.block.catch(() => {})
  }
  try {
    for (let i = 0; i < node.Links.length; i++) {
      const size = Number(sizes[i])
      const link = node.Links[i]
      if (link == null) break
      const childAt = pos
      pos += size
      if (childAt + size <= w.start) continue // wholly before the window: not read
      if (childAt >= w.end) return
      const block = ahead?.index === i ? await ahead.block : await readBlock(store, link.Hash, readOptions)
      ahead = undefined
      const code = link.Hash.code
      if (code === RAW) {
        options.onBlock?.(BLOCK_VISIT_MIN_BYTES, 'leaf')
        if (block.byteLength !== size) throw new MalformedFileError(link.Hash.toString(), `holds ${block.byteLength} bytes, its parent declared ${size}`)
        readAhead(i + 1, pos)
        const part = clip(block, childAt, w)
        if (part != null) yield part
      } else if (code === DAG_PB) {
        options.onBlock?.(Math.max(block.byteLength, BLOCK_VISIT_MIN_BYTES), 'node')
        let child: PBNode
        try {
          child = decodePb(block)
        } catch (err) {
          throw new MalformedFileError(link.Hash.toString(), `not dag-pb: ${(err as Error).message}`)
        }
        const childFs = fileData(link.Hash, child)
        if (childFs.fileSize() !== BigInt(size)) throw new MalformedFileError(link.Hash.toString(), `holds ${childFs.fileSize()} bytes, its parent declared ${size}`)
        readAhead(i + 1, pos)
        yield * walkNode(store, link.Hash, child, childFs, childAt, w, depth + 1, options)
      } else {
        throw new MalformedFileError(link.Hash.toString(), `codec 0x${code.toString(16)} inside a file`)
      }
    }
  } finally {
    local.abort()
  }
}

/** The file's declared size (what a well-formed file holds). */
export function fileSize (root: FileRoot): number {
  return root.kind === 'bytes' ? root.bytes.byteLength : Number(root.unixfs.fileSize())
}

/**
 * The bytes of the file `root`, in order, from `offset` for `length` bytes.
 * The root block itself is the caller's to count (it resolved it).
 */
export async function * readFile (store: ReadableBlockstore, root: FileRoot, options: ReadFileOptions = {}): AsyncGenerator<Uint8Array> {
  const start = Math.max(0, options.offset ?? 0)
  const w: Window = { start, end: options.length != null ? start + Math.max(0, options.length) : Number.POSITIVE_INFINITY }
  if (root.kind === 'bytes') {
    const part = clip(root.bytes, 0, w)
    if (part != null) yield part
    return
  }
  if (root.unixfs.type !== 'file' && root.unixfs.type !== 'raw') throw new MalformedFileError(root.cid.toString(), `a ${root.unixfs.type}, not a file`)
  yield * walkNode(store, root.cid, root.node, root.unixfs, 0, w, 0, options)
}

/** an exporter entry as a FileRoot, or null when it is not a file's bytes (a directory, a symlink…) */
export function fileRootOf (entry: { type: string, cid: CID, node: unknown, unixfs?: UnixFS }): FileRoot | null {
  if (entry.type === 'raw' || entry.type === 'identity') return { kind: 'bytes', cid: entry.cid, bytes: entry.node as Uint8Array }
  if (entry.type === 'file' && entry.unixfs != null && (entry.unixfs.type === 'file' || entry.unixfs.type === 'raw')) {
    return { kind: 'pb', cid: entry.cid, node: entry.node as PBNode, unixfs: entry.unixfs }
  }
  return null
}

/**
 * A budget for `onBlock`: throws `error()` once more than `max` bytes of
 * blocks were read. For readers of one file (a log tail, a dispute's files).
 */
export function blockBudget (max: number, error: () => Error): (bytes: number) => void {
  let used = 0
  return (bytes) => {
    used += bytes
    if (used > max) throw error()
  }
}
