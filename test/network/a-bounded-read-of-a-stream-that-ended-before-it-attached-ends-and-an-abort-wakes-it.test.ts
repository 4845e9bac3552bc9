/**
 * readBounded used to learn that a stream ended
 * only from 'close' / 'remoteCloseWrite' events. If the remote's data and its
 * close arrive before the reader attaches (fetch-dag.ts `ask` attaches it
 * after `await stream.close()`, which can wait on 'idle'/'drain'), those
 * events are gone: the buffered bytes are delivered, then readBounded waits
 * forever. fetch-dag's stall guard and abort signal both call stream.abort(),
 * which is a no-op on a stream whose status is already 'closed': no event,
 * no wake-up. An answer that stops short of its end frame (a hostile
 * provider) then holds the fetch, and whatever awaits it, forever. Seen failing in review on that code: 5 bytes read, still waiting 3 s after
 * the abort. readBounded now reads the stream's own state (readableEnded,
 * status) and takes a signal; `ask` reads before it awaits its close.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import type { Stream } from '@libp2p/interface'
import { YAMUX_STREAM_OPTIONS, readBounded } from '../../src/net/stream-flow.ts'

const PROTO = '/test/short/1.0.0'

describe('readBounded on a stream that ended before it attached', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('ends (or throws) instead of waiting forever, and an abort wakes it', async () => {
    const muxer = (): ReturnType<typeof yamux> => yamux({ streamOptions: { ...YAMUX_STREAM_OPTIONS } })
    const server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [muxer()] })
    const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [muxer()] })
    nodes.push(server, client)
    await server.handle(PROTO, async (stream: Stream) => {
      // a short answer, then a close
      stream.send(new Uint8Array([1, 2, 3, 4, 5]))
      await stream.close()
    })
    await client.dial(server.getMultiaddrs()[0]!)
    const stream = await client.dialProtocol(server.peerId, PROTO)
    await stream.close()
    // the reader attaches late (as after a close that waited for a drain)
    await new Promise(resolve => setTimeout(resolve, 300))
    console.log('before the reader:', { status: stream.status, readStatus: stream.readStatus, remoteWriteStatus: stream.remoteWriteStatus, readBuffer: stream.readBufferLength })

    let read = 0
    const reading = (async () => { for await (const chunk of readBounded(stream)) read += chunk.byteLength; return 'ended' })()
    // what fetch-dag's stall guard does after STALL_MS
    setTimeout(() => { stream.abort(new Error('stalled')) }, 500)
    const outcome = await Promise.race([reading.catch((err: Error) => `threw ${err.message}`), new Promise(resolve => setTimeout(() => { resolve('still waiting after 3 s') }, 3000))])
    console.log(`read ${read} bytes; ${String(outcome)}; status after the abort: ${stream.status}`)
    expect(outcome).not.toBe('still waiting after 3 s')
  }, 60_000)
})
