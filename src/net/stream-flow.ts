/**
 * Flow control on libp2p streams, both ways: reading without letting the
 * sender run ahead of us (readBounded), and sending no faster than the reader
 * takes it (send).
 *
 * Reading.
 *
 * A libp2p stream's async iterator queues every chunk that arrives in an
 * unbounded queue, and yamux grants the sender more window as soon as a frame
 * is received, not when it is read. A peer answering a DAG fetch could thus
 * send as fast as its link allows while this node checks and stores blocks
 * at disk speed: the difference piled up in memory, up to the whole fetch's
 * byte cap (1 GiB by default) per answer (issue 14's notes: 512 MiB ahead;
 * test `a-provider-faster-than-the-store-is-held-to-the-read-bound`).
 *
 * readBounded pauses the stream once more than `highWater` bytes wait unread
 * (yamux then stops granting window, so the sender stops within what it was
 * already granted: at most STREAM_WINDOW_MAX) and resumes it once the
 * reader is below `lowWater`. What a paused stream receives is held by the
 * stream itself, whose limit (STREAM_READ_BUFFER_MAX) is at least the window:
 * a sender that keeps within the window it was granted is never cut off for
 * being fast; one that sends past it breaks yamux's rules and its stream ends.
 */
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * yamux's largest receive window per stream (its default is 16 MiB). While a
 * stream is paused, the sender may still send what it was granted: this much.
 * 4 MiB is 20 MB/s per stream at 200 ms round trips, 400 MB/s at 10 ms; the
 * DAG transfer keeps two streams in flight per provider.
 */
export const STREAM_WINDOW_MAX = 4 * 1024 * 1024

/** what a paused stream may hold (libp2p's default, stated: it must not be below the window) */
export const STREAM_READ_BUFFER_MAX = 4 * 1024 * 1024

/** the yamux stream options every concur peer runs with (see above) */
export const YAMUX_STREAM_OPTIONS = Object.freeze({ maxStreamWindowSize: STREAM_WINDOW_MAX, maxReadBufferLength: STREAM_READ_BUFFER_MAX })

/** bytes waiting unread before the stream is paused, and below which it is resumed */
export const READ_HIGH_WATER = 8 * 1024 * 1024
export const READ_LOW_WATER = 2 * 1024 * 1024

export interface ReadBoundedOptions {
  highWater?: number
  /** at most highWater - STREAM_READ_BUFFER_MAX (see below) */
  lowWater?: number
  /** ends the read with its reason: a stream already closed sends no event an abort could wake the reader with */
  signal?: AbortSignal
}

type ReadableStream = Pick<Stream, 'addEventListener' | 'removeEventListener' | 'pause' | 'resume' | 'readStatus' | 'status' | 'readBufferLength' | 'readableEnded'>

/** The chunks of `stream`, as its async iterator gives them, with at most about highWater bytes queued unread. */
export async function * readBounded (stream: ReadableStream, options: ReadBoundedOptions = {}): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  const high = options.highWater ?? READ_HIGH_WATER
  // resume() hands us the stream's read buffer (up to STREAM_READ_BUFFER_MAX)
  // at once; were that to cross highWater, a pause inside resume() would be
  // undone by it (the muxer is told to resume after the dispatch), and an
  // honest fast sender would then overflow the read buffer and be cut off
  const low = Math.min(options.lowWater ?? READ_LOW_WATER, Math.max(0, high - STREAM_READ_BUFFER_MAX))
  if (stream.readStatus !== 'readable' && stream.readStatus !== 'paused') return
  const queue: Array<Uint8Array | Uint8ArrayList> = []
  let queued = 0
  let ended = false
  let failure: Error | undefined
  let resuming = false
  let wake: (() => void) | undefined
  const notify = (): void => { const w = wake; wake = undefined; w?.() }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    queue.push(evt.data)
    queued += evt.data.byteLength
    if (!resuming && queued > high && stream.readStatus === 'readable') stream.pause()
    notify()
  }
  const onClose = (evt: Event): void => {
    ended = true
    failure = (evt as Event & { error?: Error }).error
    notify()
  }
  const onEnd = (): void => { ended = true; notify() }
  const onAbort = (): void => { failure = options.signal?.reason as Error ?? new Error('aborted'); notify() }
  const resume = (): void => {
    resuming = true
    try { stream.resume() } finally { resuming = false }
    if (queued > high && stream.readStatus === 'readable') stream.pause()
  }
  // what the stream says when an event passed before we listened: data and
  // the remote's close can both arrive before a reader attaches
  const finished = (): boolean => ended || stream.readableEnded === true || (stream.status != null && stream.status !== 'open' && (stream.readBufferLength ?? 0) === 0)
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onEnd)
  stream.addEventListener('end', onEnd)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted === true) onAbort()
  // what the stream already holds (a reader before us paused it, or it came
  // before we listened) is handed over by a resume
  if (stream.readStatus === 'paused') resume()
  else if (stream.readStatus === 'readable' && (stream.readBufferLength ?? 0) > 0) { stream.pause(); resume() }
  try {
    while (true) {
      const chunk = queue.shift()
      if (chunk != null) {
        queued -= chunk.byteLength
        if (queued <= low && stream.readStatus === 'paused') resume()
        yield chunk
        continue
      }
      if (failure != null) throw failure
      if (finished()) {
        if (stream.status === 'aborted' || stream.status === 'reset') throw new Error(`the stream was ${stream.status}`)
        return
      }
      await new Promise<void>(resolve => { wake = resolve })
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('close', onClose)
    stream.removeEventListener('remoteCloseWrite', onEnd)
    stream.removeEventListener('end', onEnd)
    options.signal?.removeEventListener('abort', onAbort)
  }
}

/** a stream to send on; without writeBufferLength (a stream that buffers nothing), a send never waits */
export type WritableStream = Pick<Stream, 'send' | 'addEventListener' | 'removeEventListener'> & Partial<Pick<Stream, 'writeBufferLength'>>

/**
 * Sends `data`, then waits until the stream's write buffer is empty: the
 * next block is read from the store only once this one is in the muxer's
 * hands, within the window the reader granted.
 *
 * Not `stream.onDrain()`: in @libp2p/utils 7.4 its promise is made once and
 * never replaced, so after the first drain every later call returns at once,
 * and a sender that waited on it queued everything it had in the stream's
 * write buffer (unbounded). A peer that asked this node for a DAG and read
 * nothing made it hold the whole answer in memory: 128 MiB of the test
 * `an-asker-that-stops-reading-cannot-make-the-answerer-buffer-its-answer`,
 * the DAG's size in general, eight answers per connection. Nor any one
 * 'drain' event: yamux sends one for every window update that leaves a byte
 * of room, and the muxer one to every stream whenever the socket drains; an
 * asker granting 13 bytes at a time got a whole block queued per update (41
 * MiB for 40 updates in the review's test). The write buffer's own length
 * is what bounds memory, so that is what is waited on ('idle': it emptied).
 */
export async function send (stream: WritableStream, data: Uint8Array | Uint8ArrayList, options: { signal?: AbortSignal } = {}): Promise<void> {
  stream.send(data)
  if ((stream.writeBufferLength ?? 0) === 0) return
  options.signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('idle', onIdle)
      stream.removeEventListener('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const onIdle = (): void => { done(); resolve() }
    const onClose = (evt: Event): void => { done(); reject((evt as Event & { error?: Error }).error ?? new Error('the stream closed while a send waited for it to drain')) }
    const onAbort = (): void => { done(); reject(options.signal?.reason as Error) }
    stream.addEventListener('idle', onIdle)
    stream.addEventListener('close', onClose)
    options.signal?.addEventListener('abort', onAbort)
  })
}
