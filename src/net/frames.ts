import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { MalformedRequestError, RequestTooLargeError } from './errors.ts'

/**
 * Pieces shared by concur's request/response protocols (attestation catch-up,
 * job catch-up, peer exchange): which peers to ask, and how an answer section
 * is read (length-prefixed frames ended by an empty frame).
 */

/** The distinct peers we hold a connection to; shuffled when asked, so load spreads. */
export function connectedPeers (libp2p: Pick<Libp2p, 'getConnections'>, options: { shuffle?: boolean, except?: PeerId } = {}): PeerId[] {
  const peers = [...new Map(libp2p.getConnections().map(c => [c.remotePeer.toString(), c.remotePeer])).values()]
    .filter(p => options.except == null || !p.equals(options.except))
  if (options.shuffle === true) {
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [peers[i], peers[j]] = [peers[j]!, peers[i]!]
    }
  }
  return peers
}

interface FrameReader { read (options?: AbortOptions): Promise<{ subarray (): Uint8Array, byteLength: number }> }

/** Reads frames until an empty one or `max` of them, handing each over; returns how many came. */
export async function readSection (lp: FrameReader, max: number, onFrame: (bytes: Uint8Array) => void, options: AbortOptions): Promise<number> {
  let n = 0
  while (n < max) {
    const frame = await lp.read(options)
    if (frame.byteLength === 0) break
    n++
    onFrame(frame.subarray())
  }
  return n
}

export type FrameStream = ReturnType<typeof lpStream>

/** One request/response exchange with `peer` on `protocol`: the stream is closed when done, aborted on failure. */
export async function exchangeWith<T> (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, protocol: string, opts: { maxFrame: number, signal: AbortSignal }, exchange: (lp: FrameStream, signal: AbortSignal) => Promise<T>): Promise<T> {
  // relayed (limited) connections too: a peer behind NAT may have no other
  const stream = await libp2p.dialProtocol(peer, protocol, { signal: opts.signal, runOnLimitedConnection: true })
  const lp = lpStream(stream, { maxDataLength: opts.maxFrame })
  try {
    const result = await exchange(lp, opts.signal)
    await stream.close({ signal: opts.signal })
    return result
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

function parseRequest (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new MalformedRequestError('the request is not UTF-8 JSON', { cause: err })
  }
}

/**
 * Serves one request/response exchange: reads the asker's JSON request (at
 * most `maxRequest` bytes), lets `answer` write its frames, closes the stream;
 * on any failure the stream is aborted and the failure only logged, since a
 * bad asker must not hurt the answering node.
 */
export function answerRequests (opts: { maxFrame: number, maxRequest: number, timeoutMs: number, log: (fmt: string, ...args: unknown[]) => void }, answer: (request: unknown, lp: FrameStream, signal: AbortSignal) => Promise<void>) {
  return async (stream: Stream): Promise<void> => {
    const lp = lpStream(stream, { maxDataLength: opts.maxFrame })
    const signal = AbortSignal.timeout(opts.timeoutMs)
    try {
      const req = await lp.read({ signal })
      if (req.byteLength > opts.maxRequest) throw new RequestTooLargeError(req.byteLength, opts.maxRequest)
      await answer(parseRequest(req.subarray()), lp, signal)
      await stream.close({ signal })
    } catch (err) {
      opts.log('request failed: %s', (err as Error).message)
      stream.abort(err as Error)
    }
  }
}
