/**
 * Answering a DAG transfer request from the blocks this node holds. Only
 * from the local store: a request must never make this node fetch anything
 * for the asker (that would make every node a free proxy, and a DAG it does
 * not hold a way to keep it busy).
 */
import { send as sendPaced } from '../stream-flow.ts'
import type { WritableStream } from '../stream-flow.ts'
import { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { AnswerOrder, FRAME, MAX_BLOCK_BYTES, MAX_REQUEST_BYTES, decodeRequest, frameHeader, transferable } from './wire.ts'
import { MalformedRequestError, RequestTooLargeError } from '../errors.ts'

/** what the answerer reads blocks from: its own store, never the network */
export interface LocalBlocks {
  /** the block, or undefined when this node does not hold it */
  get: (cid: CID, options?: AbortOptions) => Promise<Uint8Array | undefined>
}

export interface ServeStats { blocks: number, bytes: number, missing: number }

/** reads the asker's request: its length prefix and that many bytes (at most MAX_REQUEST_BYTES); returns the payload */
export async function readRequest (stream: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions = {}): Promise<Uint8Array> {
  const buf = new Uint8ArrayList()
  for await (const chunk of stream) {
    options.signal?.throwIfAborted()
    buf.append(chunk)
    if (buf.byteLength < 4) continue
    const length = buf.getUint32(0)
    if (length > MAX_REQUEST_BYTES) throw new RequestTooLargeError(length, MAX_REQUEST_BYTES)
    if (buf.byteLength > 4 + length) throw new MalformedRequestError('bytes after the request')
    // the request is complete: the answer does not wait for the asker's close
    if (buf.byteLength === 4 + length) return buf.subarray(4)
  }
  throw new MalformedRequestError(`the request ended after ${buf.byteLength} bytes`)
}

/** a request's payload from its bytes on the wire (tests, and answers from a buffer) */
export function requestPayload (wire: Uint8Array): Uint8Array {
  return wire.subarray(4)
}

/** Answers one request on `stream` (already read: `request`), then ends the answer. */
export async function answerRequest (stream: WritableStream, request: Uint8Array, blocks: LocalBlocks, options: AbortOptions = {}): Promise<ServeStats> {
  const { mode, cids } = decodeRequest(request)
  const order = new AnswerOrder(mode, cids)
  const stats: ServeStats = { blocks: 0, bytes: 0, missing: 0 }
  // the asker reads at its own pace: wait for the muxer's window instead of buffering the DAG in memory (stream-flow.ts)
  const send = async (data: Uint8ArrayList | Uint8Array): Promise<void> => { await sendPaced(stream, data, options) }
  const read = async (cid: CID): Promise<Uint8Array | undefined> => transferable(cid) === 'send' ? await blocks.get(cid, options) : undefined
  // one block read ahead: the next block's read (and its check against its
  // CID) runs while this one is sent, instead of after the muxer drained it;
  // the order is known before the block is sent (it was visited). An answer
  // thus holds two blocks at most (4 MiB) while it waits on the asker's window
  let ahead: { cid: CID, bytes: Promise<Uint8Array | undefined> } | undefined
  for (let cid = order.next(); cid != null; cid = order.next()) {
    options.signal?.throwIfAborted()
    const bytes = ahead?.cid === cid ? await ahead.bytes : await read(cid)
    ahead = undefined
    if (bytes == null || bytes.byteLength > MAX_BLOCK_BYTES) {
      stats.missing++
      order.visit(cid, undefined)
      await send(frameHeader(FRAME.missing, 0))
      continue
    }
    order.visit(cid, bytes)
    stats.blocks++
    stats.bytes += bytes.byteLength
    const next = order.next()
    if (next != null) {
      ahead = { cid: next, bytes: read(next) }
      // awaited when its turn comes; never an unhandled rejection if the answer stops first
      ahead.bytes.catch(() => {})
    }
    await send(new Uint8ArrayList(frameHeader(FRAME.block, bytes.byteLength), bytes))
  }
  await send(frameHeader(FRAME.end, 0))
  return stats
}
