import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { fetchDag } from '../../../src/net/dag-transfer/fetch-dag.ts'
import { answerRequest, readRequest } from '../../../src/net/dag-transfer/serve.ts'
import { DAG_TRANSFER_PROTOCOL } from '../../../src/net/dag-transfer/wire.ts'
import { getBlock } from '../../../src/content/stores.ts'
import { MemoryBlockstore } from '../../content/helpers.ts'
import { servedFrom } from './helpers.ts'

// A libp2p stream whose reader starts only after the remote's data AND its
// close have arrived never sees the end of the stream (test/bench/
// stream-late-reader.ts). A request delimited by the asker's close therefore
// hung whenever the answering node was busy as it arrived (seen in the suite:
// a worker's input fetch stalled 15 s, twice). Requests are length-prefixed.
describe('the DAG transfer over real libp2p streams', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('an answerer that starts reading 50 ms after the request (and the asker\'s close) arrived still answers it', async () => {
    const store = new MemoryBlockstore()
    const leaf = new TextEncoder().encode('busy answerer\n')
    const cid = CID.createV1(0x55, await sha256.digest(leaf))
    await store.put(cid, leaf)
    const server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    nodes.push(server, client)
    await server.handle(DAG_TRANSFER_PROTOCOL, async (stream) => {
      // busy with something else first (another answer, a disk read)
      await new Promise(resolve => setTimeout(resolve, 50))
      try {
        await answerRequest(stream, await readRequest(stream), servedFrom(store))
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    await client.dial(server.getMultiaddrs()[0]!)
    const into = new MemoryBlockstore()
    const r = await fetchDag({ has: async c => await into.has(c), get: async c => await getBlock(into, c) }, cid, {
      candidates: [server.peerId],
      maxBlocks: 10,
      maxBytes: 1024,
      // a hang shows as a stall well before the test's own timeout
      stallMs: 5000,
      open: async (peer, o) => await client.dialProtocol(peer, DAG_TRANSFER_PROTOCOL, o),
      store: async (c, bytes) => { await into.put(c, bytes) },
      flush: async () => {}
    })
    expect(r.providers[0]?.failed).toBeUndefined()
    expect(r.complete).toBe(true)
    expect(await getBlock(into, cid)).toEqual(leaf)
  })
})
