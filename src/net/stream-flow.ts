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
  lowWater?: number
}

type ReadableStream = Pick<Stream, 'addEventListener' | 'removeEventListener' | 'pause' | 'resume' | 'readStatus'>

/** The chunks of `stream`, as its async iterator gives them, with at most about highWater bytes queued unread. */
export async function * readBounded (stream: ReadableStream, options: ReadBoundedOptions = {}): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  const high = options.highWater ?? READ_HIGH_WATER
  const low = Math.min(options.lowWater ?? READ_LOW_WATER, high)
  if (stream.readStatus !== 'readable' && stream.readStatus !== 'paused') return
  const queue: Array<Uint8Array | Uint8ArrayList> = []
  let queued = 0
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { const w = wake; wake = undefined; w?.() }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    queue.push(evt.data)
    queued += evt.data.byteLength
    if (queued > high && stream.readStatus === 'readable') stream.pause()
    notify()
  }
  const onClose = (evt: Event): void => {
    ended = true
    failure = (evt as Event & { error?: Error }).error
    notify()
  }
  const onRemoteCloseWrite = (): void => { ended = true; notify() }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  // a paused stream (a reader before us) holds what it has: let it come
  if (stream.readStatus === 'paused') stream.resume()
  try {
    while (true) {
      const chunk = queue.shift()
      if (chunk != null) {
        queued -= chunk.byteLength
        if (queued < low && stream.readStatus === 'paused') stream.resume()
        yield chunk
        continue
      }
      if (failure != null) throw failure
      if (ended) return
      await new Promise<void>(resolve => { wake = resolve })
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('close', onClose)
    stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
  }
}

type WritableStream = Pick<Stream, 'send' | 'addEventListener' | 'removeEventListener'>

/**
 * Sends `data`, then, if the stream's buffer is full, waits for it to drain.
 *
 * Not `stream.onDrain()`: in @libp2p/utils 7.4 its promise is made once and
 * never replaced, so after the first drain every later call returns at once,
 * and a sender that waited on it queued everything it had in the stream's
 * write buffer (unbounded). A peer that asked this node for a DAG and read
 * nothing made it hold the whole answer in memory: 64 MiB per answer of the
 * test `an-asker-that-does-not-read-cannot-make-the-answerer-buffer-its-answer`,
 * the DAG's size in general, eight answers per connection. A fresh listener
 * for each wait sees the next 'drain'.
 */
export async function send (stream: WritableStream, data: Uint8Array | Uint8ArrayList, options: { signal?: AbortSignal } = {}): Promise<void> {
  if (stream.send(data)) return
  options.signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { done(); resolve() }
    const onClose = (evt: Event): void => { done(); reject((evt as Event & { error?: Error }).error ?? new Error('the stream closed while a send waited for it to drain')) }
    const onAbort = (): void => { done(); reject(options.signal?.reason as Error) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    options.signal?.addEventListener('abort', onAbort)
  })
}
