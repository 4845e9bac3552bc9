/**
 * A provider answering a DAG fetch sends as fast as its link allows; the
 * fetcher checks and stores each block at its own speed. Before, a libp2p
 * stream's reader queued whatever arrived (yamux grants window on receipt,
 * not on read), so everything a provider sent ahead of the store waited in
 * the fetcher's memory: up to the whole answer, and an attacker's DAG can
 * declare tiny sizes so that one answer carries 64 subtrees of any size
 * (here 64 MiB per answer, two answers in flight). Now the reader pauses the
 * stream past READ_HIGH_WATER unread bytes (yamux then stops granting window)
 * and resumes it as the store catches up: with the store stopped, the provider
 * is held to about READ_HIGH_WATER + STREAM_WINDOW_MAX per answer; released,
 * the fetch completes with every block.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Stream } from '@libp2p/interface'
import { fetchDag } from '../../../src/net/dag-transfer/fetch-dag.ts'
import { answerRequest, readRequest } from '../../../src/net/dag-transfer/serve.ts'
import { DAG_TRANSFER_PROTOCOL } from '../../../src/net/dag-transfer/wire.ts'
import { READ_HIGH_WATER, STREAM_WINDOW_MAX } from '../../../src/net/stream-flow.ts'
import { getBlock } from '../../../src/content/stores.ts'
import { MemoryBlockstore } from '../../content/helpers.ts'
import { directoryOfLeaves, flowPair, servedFrom } from './helpers.ts'

const MiB = 1024 * 1024
const LEAVES = 128

describe('a DAG fetch from a provider faster than the store', () => {
  const nodes: Array<Awaited<ReturnType<typeof createLibp2p>>> = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('holds the provider to the read bound while the store is stopped, and completes once it goes on', async () => {
    // a directory of 128 distinct 1 MiB leaves whose links declare size 0 (putDagPb): batches of 64
    const { store, root, leaves } = await directoryOfLeaves('provider faster than the store', LEAVES)

    const [server, client] = await flowPair()
    nodes.push(server, client)
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
    await client.dial(server.getMultiaddrs()[0]!)

    // the store takes the root and one leaf, then stops until released
    const into = new MemoryBlockstore()
    let stored = 0
    let release: () => void = () => {}
    const released = new Promise<void>(resolve => { release = resolve })
    const fetching = fetchDag({ has: async c => await into.has(c), get: async c => await getBlock(into, c) }, root, {
      candidates: [server.peerId],
      maxBlocks: LEAVES + 8,
      maxBytes: (LEAVES + 8) * MiB,
      // far longer than this test waits with the store stopped
      stallMs: 120_000,
      open: async (peer, o) => await client.dialProtocol(peer, DAG_TRANSFER_PROTOCOL, o),
      store: async (c, b) => {
        if (stored++ >= 2) await released
        await into.put(c, b)
      },
      flush: async () => {}
    })

    // wait until the provider stops sending (or has sent everything): the same count ten reads in a row, 100 ms apart
    let last = -1
    let steady = 0
    for (let i = 0; i < 600 && steady < 10 && served < LEAVES * MiB; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      steady = served === last ? steady + 1 : 0
      last = served
    }
    // two answers in flight, each held to its unread bound (and the chunk that
    // crossed it), its window, and a block in the sender's hands and one being
    // read; and the root
    const bound = 2 * (READ_HIGH_WATER + STREAM_WINDOW_MAX + 3 * MiB) + MiB
    expect(served, `the provider sent ${served / MiB} MiB with the store stopped`).toBeLessThanOrEqual(bound)

    release()
    const r = await fetching
    expect(r.providers[0]?.failed, JSON.stringify(r)).toBeUndefined()
    expect(r.complete, JSON.stringify(r)).toBe(true)
    for (const l of leaves) expect(await into.has(l.cid)).toBe(true)
  }, 120_000)
})
