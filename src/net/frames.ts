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

/**
 * A stream to `peer` on `protocol`, on a connection we hold when there is one
 * (direct first, then an unlimited one, then a relayed one); a dial only when
 * there is none, or the one chosen closed meanwhile.
 *
 * Why not libp2p's dialProtocol alone: its dial reuses unlimited connections
 * only, so to a peer behind NAT, reachable through a relay alone, every
 * stream dialled a new relayed connection, however many were open. Streams
 * opened at once (a DAG fetch, its retries, catch-up) then raced: a new
 * circuit with the same address as an open one is aborted as a duplicate,
 * under the callers that had joined its dial ("Remote closed connection during
 * opening"). Seen: `concur get` of a NAT'd worker's DAG from behind another
 * NAT failing 2 of 6 runs, the worker dropped as a provider on every retry.
 */
export async function openStream (libp2p: Pick<Libp2p, 'dialProtocol' | 'getConnections'>, peer: PeerId, protocol: string, options: AbortOptions = {}): Promise<Stream> {
  // relayed (limited) connections too: a peer behind NAT may have no other
  const opts = { ...options, runOnLimitedConnection: true }
  const open = libp2p.getConnections(peer).filter(c => c.status === 'open')
  const conn = open.find(c => c.direct) ?? open.find(c => c.limits == null) ?? open[0]
  if (conn != null) {
    try {
      return await conn.newStream(protocol, opts)
    } catch (err) {
      // the connection went (a relay's limit, DCUtR replacing it): dial; any other failure is the peer's answer
      if (conn.status === 'open' || options.signal?.aborted === true) throw err
    }
  }
  return await libp2p.dialProtocol(peer, protocol, opts)
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
export async function exchangeWith<T> (libp2p: Pick<Libp2p, 'dialProtocol' | 'getConnections'>, peer: PeerId, protocol: string, opts: { maxFrame: number, signal: AbortSignal }, exchange: (lp: FrameStream, signal: AbortSignal) => Promise<T>): Promise<T> {
  const stream = await openStream(libp2p, peer, protocol, { signal: opts.signal })
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
