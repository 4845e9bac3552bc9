/**
 * Reading one DAG transfer answer: every block is checked against the one CID
 * the asker expects next (the answer's order is derived from blocks already
 * checked, wire.ts AnswerOrder), before anything is stored or walked.
 */
import { createHash } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { AnswerOrder, FRAME, FRAME_HEADER_BYTES, MAX_BLOCK_BYTES } from './wire.ts'
import type { TransferMode } from './wire.ts'
import { TransferMismatchError, TransferProtocolError } from '../errors.ts'

/** what one transfer may still take: shared by every answer of one fetch (the fetch's caps) */
export interface TransferBudget { blocks: number, bytes: number }

export interface AnswerResult {
  blocks: number
  bytes: number
  /** CIDs the answerer said it does not hold (their subtrees were not walked) */
  missing: CID[]
  /** the budget ran out before the answer ended: the rest was not read */
  overBudget: boolean
}

export interface ReadAnswerOptions extends AbortOptions {
  budget: TransferBudget
  /** a checked block: store it (awaited: the store's pace bounds what is held in memory) */
  onBlock: (cid: CID, bytes: Uint8Array) => Promise<void> | void
}

/** reads the answer to (mode, cids) from `source` */
export async function readAnswer (source: AsyncIterable<Uint8Array | Uint8ArrayList>, mode: TransferMode, cids: CID[], options: ReadAnswerOptions): Promise<AnswerResult> {
  const order = new AnswerOrder(mode, cids)
  const result: AnswerResult = { blocks: 0, bytes: 0, missing: [], overBudget: false }
  const buf = new Uint8ArrayList()
  let ended = false
  for await (const chunk of source) {
    options.signal?.throwIfAborted()
    buf.append(chunk)
    while (!ended && buf.byteLength >= FRAME_HEADER_BYTES) {
      const kind = buf.get(0)
      const length = buf.getUint32(1)
      // checked before waiting for the payload: a peer must not make us buffer more than one block
      if (length > MAX_BLOCK_BYTES) throw new TransferProtocolError(`a frame of ${length} bytes (at most ${MAX_BLOCK_BYTES})`)
      if (buf.byteLength < FRAME_HEADER_BYTES + length) break
      const expected = order.next()
      if (kind === FRAME.end) {
        if (length !== 0) throw new TransferProtocolError('an end frame with a payload')
        if (expected != null) throw new TransferProtocolError(`the answer ended before ${expected.toString()}`)
        buf.consume(FRAME_HEADER_BYTES)
        // done: the stream's own end is not awaited (a reader that starts after
        // the remote's close never sees it, see wire.ts), bytes already here after the end are wrong
        if (buf.byteLength > 0) throw new TransferProtocolError('bytes after the end of the answer')
        ended = true
        break
      }
      if (expected == null) throw new TransferProtocolError('a frame after the last expected block')
      if (kind === FRAME.missing) {
        if (length !== 0) throw new TransferProtocolError('a missing frame with a payload')
        buf.consume(FRAME_HEADER_BYTES)
        result.missing.push(expected)
        order.visit(expected, undefined)
        continue
      }
      if (kind !== FRAME.block) throw new TransferProtocolError(`unknown frame kind ${kind}`)
      if (options.budget.blocks <= 0 || options.budget.bytes < length) {
        result.overBudget = true
        return result
      }
      const bytes = buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)
      buf.consume(FRAME_HEADER_BYTES + length)
      // wire.ts transferable(): every CID the answer walks is sha2-256
      const digest = createHash('sha256').update(bytes).digest()
      if (!digest.equals(expected.multihash.digest)) throw new TransferMismatchError(expected.toString())
      options.budget.blocks--
      options.budget.bytes -= length
      order.visit(expected, bytes)
      result.blocks++
      result.bytes += length
      await options.onBlock(expected, bytes)
    }
    if (ended) return result
  }
  if (!ended) throw new TransferProtocolError(`the answer stopped without its end frame after ${result.blocks} block(s)`)
  return result
}
