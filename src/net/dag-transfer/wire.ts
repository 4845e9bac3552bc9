/**
 * The wire of the DAG transfer (`/concur/dag/1.0.0`, PROTOCOL.md §17): one
 * request, then the blocks of the DAGs asked for in an order both sides
 * derive from the DAG itself, so no CID travels with a block and the asker
 * checks each block against the one CID it expects next.
 *
 * Request: u32be length, then that many bytes: u8 mode, then
 *   1..MAX_REQUEST_CIDS CIDs back to back (self-delimiting). Length-prefixed,
 *   not "until the asker closes": a libp2p stream whose reader starts after
 *   the remote's close has arrived never sees its end (test/bench/
 *   stream-late-reader.ts), so a busy answerer would wait for ever.
 * Answer: frames `u8 kind, u32be length, payload`, one per block the asker
 * expects, then the end frame.
 */
import { CID } from 'multiformats/cid'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { MalformedRequestError, RequestTooLargeError } from '../errors.ts'

export const DAG_TRANSFER_PROTOCOL = '/concur/dag/1.0.0'

/** what a request asks for */
export const MODE = {
  /** every block of each DAG, depth-first, links in order */
  subtrees: 0,
  /** only the named blocks (the asker learns a DAG's shape before it splits it between peers) */
  blocks: 1
} as const
export type TransferMode = typeof MODE[keyof typeof MODE]

/** what an answer frame carries */
export const FRAME = {
  block: 0,
  /** the answerer does not hold the block the asker expects next (or will not send it): its subtree is not walked */
  missing: 1,
  /** the answer is complete */
  end: 2
} as const

export const FRAME_HEADER_BYTES = 5
/** a request names at most this many CIDs: a request is cheap to send and every CID costs the answerer a walk */
export const MAX_REQUEST_CIDS = 1024
/** bytes of a request (1024 CIDs of ~36 bytes) */
export const MAX_REQUEST_BYTES = 64 * 1024
/** the largest block either side handles (bitswap's limit too): a frame over it ends the transfer */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024

const SHA2_256 = 0x12
const IDENTITY = 0x00

/**
 * Whether the transfer carries the block of `cid`: dag-pb or raw, named by
 * sha2-256. Identity CIDs carry their bytes inline (nothing to send); any
 * other codec or hash is answered `missing`, and left to bitswap and the
 * export, which judge it as they always did. Both sides apply this rule.
 */
export function transferable (cid: CID): 'send' | 'inline' | 'refuse' {
  if (cid.multihash.code === IDENTITY) return 'inline'
  if (cid.multihash.code !== SHA2_256) return 'refuse'
  return cid.code === dagPb.code || cid.code === raw.code ? 'send' : 'refuse'
}

/** the children of a block, in link order (none for raw) */
export function linksOf (cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code !== dagPb.code) return []
  return dagPb.decode(bytes).Links.map(l => CID.asCID(l.Hash) ?? CID.decode(l.Hash.bytes))
}

/** the request's bytes on the wire: length prefix included */
export function encodeRequest (mode: TransferMode, cids: CID[]): Uint8Array {
  if (cids.length === 0 || cids.length > MAX_REQUEST_CIDS) throw new RequestTooLargeError(cids.length, MAX_REQUEST_CIDS)
  const parts = cids.map(c => c.bytes)
  const length = 1 + parts.reduce((n, p) => n + p.byteLength, 0)
  const out = new Uint8Array(4 + length)
  new DataView(out.buffer).setUint32(0, length)
  out[4] = mode
  let at = 5
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

/** decodes a request's payload (after its length prefix) */
export function decodeRequest (bytes: Uint8Array): { mode: TransferMode, cids: CID[] } {
  if (bytes.byteLength > MAX_REQUEST_BYTES) throw new RequestTooLargeError(bytes.byteLength, MAX_REQUEST_BYTES)
  const mode = bytes[0]
  if (mode !== MODE.subtrees && mode !== MODE.blocks) throw new MalformedRequestError(`unknown transfer mode ${String(mode)}`)
  const cids: CID[] = []
  let rest = bytes.subarray(1)
  while (rest.byteLength > 0) {
    if (cids.length === MAX_REQUEST_CIDS) throw new RequestTooLargeError(cids.length + 1, MAX_REQUEST_CIDS)
    try {
      const [cid, remainder] = CID.decodeFirst(rest)
      cids.push(cid)
      rest = remainder
    } catch (err) {
      throw new MalformedRequestError('the request holds a malformed CID', { cause: err })
    }
  }
  if (cids.length === 0) throw new MalformedRequestError('the request names no CID')
  return { mode, cids }
}

export function frameHeader (kind: number, length: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER_BYTES)
  h[0] = kind
  new DataView(h.buffer).setUint32(1, length)
  return h
}

/**
 * The order of an answer, which both sides compute: for each CID asked, in
 * order, depth-first with links in order (subtrees mode; blocks mode: the CID
 * alone), skipping inline CIDs and any CID already visited in this answer.
 * The answerer walks it over the blocks it holds; the asker over the blocks
 * it has verified. `next()` gives the CID whose frame comes next, `visit()`
 * takes that block's bytes (or none: missing) and queues its children.
 */
export class AnswerOrder {
  private readonly stack: CID[]
  private readonly seen = new Set<string>()
  private readonly descend: boolean

  constructor (mode: TransferMode, cids: CID[]) {
    this.descend = mode === MODE.subtrees
    this.stack = [...cids].reverse()
  }

  get visited (): number {
    return this.seen.size
  }

  next (): CID | undefined {
    while (this.stack.length > 0) {
      const cid = this.stack[this.stack.length - 1] as CID
      if (transferable(cid) === 'inline' || this.seen.has(keyOf(cid))) { this.stack.pop(); continue }
      return cid
    }
    return undefined
  }

  /** the block `next()` named arrived (`bytes`) or was missing (undefined) */
  visit (cid: CID, bytes: Uint8Array | undefined): void {
    let links: CID[] = []
    if (bytes != null && this.descend) {
      // a block that matches its hash but does not decode was made that way:
      // both sides walk no children of it (the export judges it later)
      try { links = linksOf(cid, bytes) } catch { links = [] }
    }
    this.stack.pop()
    this.seen.add(keyOf(cid))
    for (let i = links.length - 1; i >= 0; i--) this.stack.push(links[i] as CID)
  }
}

/** a CID's identity for de-duplication */
export function keyOf (cid: CID): string {
  return Buffer.from(cid.bytes).toString('latin1')
}
