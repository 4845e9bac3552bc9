/**
 * An asker that reads nothing and grants the answerer a few bytes of window
 * at a time. src/net/stream-flow.ts `send` used to treat any 'drain' event
 * as room for one more block. yamux dispatches 'drain' on every
 * window update that leaves at least one byte of payload room while the
 * write buffer is not empty (node_modules/@libp2p/yamux/dist/src/stream.js
 * handleWindowUpdate), and the muxer dispatches 'drain' on every stream when
 * the socket drains. An asker that never reads (its stream paused) and sends
 * window updates of 13 bytes makes the answerer append one whole block (up to
 * 2 MiB) to the stream's unbounded write buffer per 12-byte frame. Seen failing in review on that code: 41 MiB read from the store for 40
 * updates (480 bytes sent). `send` now waits until the stream's write buffer
 * is empty.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { answerRequest, readRequest } from '../../src/net/dag-transfer/serve.ts'
import { DAG_TRANSFER_PROTOCOL, MODE, encodeRequest } from '../../src/net/dag-transfer/wire.ts'
import { directoryOfLeaves, flowPair, servedFrom } from '../network/dag-transfer/helpers.ts'

const MiB = 1024 * 1024
const LEAVES = 48
const UPDATES = 40

describe('an asker that sends tiny window updates and reads nothing', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('holds the answerer to its window and a block or two', async () => {
    const { store, root } = await directoryOfLeaves('tiny window updates', LEAVES)

    const [server, asker] = await flowPair()
    nodes.push(server, asker)
    let served = 0
    let answering: Stream | undefined
    const blocks = servedFrom(store)
    await server.handle(DAG_TRANSFER_PROTOCOL, async (stream: Stream) => {
      answering = stream
      try {
        await answerRequest(stream, await readRequest(stream), { get: async (cid, o) => { const b = await blocks.get(cid, o); if (b != null) served += b.byteLength; return b } })
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    await asker.dial(server.getMultiaddrs()[0]!)

    const stream = await asker.dialProtocol(server.peerId, DAG_TRANSFER_PROTOCOL)
    // read nothing: no window is granted beyond the initial 256 KiB
    stream.pause()
    stream.send(encodeRequest(MODE.subtrees, [root]))
    await new Promise(resolve => setTimeout(resolve, 500))
    const before = served

    // window updates of 13 bytes (12-byte yamux header each): 1 byte of payload room
    const y = stream as unknown as { sendFrame: (h: { type: number, flag: number, streamID: number, length: number }) => void, streamId: number, recvWindowCapacity: number }
    expect(typeof y.sendFrame).toBe('function')
    for (let i = 0; i < UPDATES; i++) {
      // (our own yamux must accept what it granted: a hostile asker's muxer simply would)
      y.recvWindowCapacity += 13
      y.sendFrame({ type: 1 /* WindowUpdate */, flag: 0, streamID: y.streamId, length: 13 })
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    await new Promise(resolve => setTimeout(resolve, 500))
    const granted = 256 * 1024 + UPDATES * 13
    const buffered = answering?.writeBufferLength ?? 0
    console.log(`before the updates: ${(before / MiB).toFixed(1)} MiB read from the store; after ${UPDATES} updates (${UPDATES * 12} bytes sent, ${granted} bytes of window granted): ${(served / MiB).toFixed(1)} MiB read, ${(buffered / MiB).toFixed(1)} MiB in the answerer's write buffer`)
    expect(served, `the answerer read ${(served / MiB).toFixed(1)} MiB of blocks for an asker that granted ${granted} bytes`).toBeLessThanOrEqual(granted + 3 * MiB)
    stream.abort(new Error('done'))
  }, 120_000)
})
