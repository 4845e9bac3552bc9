/**
 * Any peer may ask a node for a DAG it holds (`/concur/dag/1.0.0`: a worker's
 * inputs and environments, a requester's artifacts). An asker that reads the
 * first megabytes of the answer and then stops reading (its stream paused:
 * yamux grants no more window) must cost the answerer no more than the
 * window and a block or two. It cost the whole answer: the answerer waited
 * on `stream.onDrain()`, whose promise in @libp2p/utils 7.4 resolves once and
 * then stays resolved, so after the first drain every block went straight
 * into the stream's unbounded write buffer (here 128 MiB, from a peer that
 * read 2; eight answers per connection, any number of connections). The
 * answerer now waits for each drain itself (src/net/stream-flow.ts `send`).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { answerRequest, readRequest } from '../../src/net/dag-transfer/serve.ts'
import { DAG_TRANSFER_PROTOCOL, MODE, encodeRequest } from '../../src/net/dag-transfer/wire.ts'
import { STREAM_WINDOW_MAX } from '../../src/net/stream-flow.ts'
import { directoryOfLeaves, flowPair, servedFrom } from '../network/dag-transfer/helpers.ts'

const MiB = 1024 * 1024
const LEAVES = 128
const READ_FIRST = 2 * MiB

describe('an asker that stops reading a DAG answer', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('holds the answerer to the window and a block or two, not the whole answer', async () => {
    const { store, root } = await directoryOfLeaves('an asker that stops reading', LEAVES)

    const [server, asker] = await flowPair()
    nodes.push(server, asker)
    let served = 0
    const blocks = servedFrom(store)
    await server.handle(DAG_TRANSFER_PROTOCOL, async (stream: Stream) => {
      try {
        await answerRequest(stream, await readRequest(stream), { get: async (cid, o) => { const b = await blocks.get(cid, o); if (b != null) served += b.byteLength; return b } })
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    await asker.dial(server.getMultiaddrs()[0]!)

    // ask for the whole tree, read its first 2 MiB (some drains happen), then stop reading
    const stream = await asker.dialProtocol(server.peerId, DAG_TRANSFER_PROTOCOL)
    let read = 0
    await new Promise<void>(resolve => {
      const onMessage = (evt: { data: { byteLength: number } }): void => {
        read += evt.data.byteLength
        if (read >= READ_FIRST) {
          stream.pause()
          stream.removeEventListener('message', onMessage)
          resolve()
        }
      }
      stream.addEventListener('message', onMessage)
      stream.send(encodeRequest(MODE.subtrees, [root]))
    })

    // until the answerer stops reading blocks (or has read them all): the same count ten reads in a row, 100 ms apart
    let last = -1
    let steady = 0
    for (let i = 0; i < 600 && steady < 10 && served < LEAVES * MiB; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      steady = served === last ? steady + 1 : 0
      last = served
    }
    // what the asker read (and the chunk that crossed 2 MiB), the window it had granted, a block queued and one being read
    const bound = READ_FIRST + MiB + STREAM_WINDOW_MAX + 2 * MiB
    expect(served, `the answerer read ${(served / MiB).toFixed(1)} MiB of blocks for an asker that read ${(read / MiB).toFixed(1)} MiB`).toBeLessThanOrEqual(bound)
    stream.abort(new Error('done'))
  }, 120_000)
})
