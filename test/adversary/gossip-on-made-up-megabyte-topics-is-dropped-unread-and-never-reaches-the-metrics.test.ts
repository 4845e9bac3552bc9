/**
 * A peer with no key and no job writes raw gossipsub RPCs to a daemon: 200
 * messages on topics it made up, each topic name 32 KiB (6.4 MB in all).
 * gossipsub's metrics label by topic, and without a guard each name would be
 * kept in the daemon's memory for good and written into every scrape (seen
 * by review: 1000 such topics of 128 KiB took a daemon from 157 MB to 738 MB
 * of RSS, a scrape grew to 262 MB, then every scrape failed). The daemon
 * reads only concur's topics (gossipsub `allowedTopics`), and the metrics
 * registry counts any label value over 128 characters under "other".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { apiHeaders, cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import type { ConcurProcess } from '../helpers/processes.ts'
import { JOBS_TOPIC } from '../../protocol/index.ts'
import { parsePrometheus, sample } from '../metrics/parse-prometheus.ts'

/** protobuf, by hand: a length-delimited field */
function field (no: number, bytes: Uint8Array): Uint8Array {
  return concat([varint((no << 3) | 2), varint(bytes.length), bytes])
}
function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Uint8Array.from(out)
}
function concat (parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts))
}
/** gossipsub's RPC { repeated Message publish = 2 }, Message { bytes data = 2; string topic = 4 }, length-prefixed */
function rpcFrame (messages: Array<{ topic: string, data: Uint8Array }>): Uint8Array {
  const rpc = concat(messages.map(m => field(2, concat([field(2, m.data), field(4, new TextEncoder().encode(m.topic))]))))
  return concat([varint(rpc.length), rpc])
}

describe('gossip on made-up megabyte topics', () => {
  let daemon: ConcurProcess
  let api: string
  let attacker: Libp2p

  beforeAll(async () => {
    daemon = startConcur(['daemon'], { home: await tempDir() })
    const ready = await daemon.ready as { api: string, multiaddrs: string[] }
    api = ready.api
    attacker = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    const stream = await attacker.dialProtocol(multiaddr(ready.multiaddrs[0] as string), ['/meshsub/1.2.0', '/meshsub/1.1.0'])
    const send = async (frame: Uint8Array): Promise<void> => {
      if (!stream.send(frame)) await new Promise(resolve => { stream.addEventListener('drain', resolve, { once: true }) })
    }
    for (let i = 0; i < 200; i += 10) {
      await send(rpcFrame(Array.from({ length: 10 }, (_, j) => ({ topic: `made-up-${i + j}-` + 'x'.repeat(32 * 1024), data: Uint8Array.of(1, 2, 3) }))))
    }
    // then one message on a concur topic (junk: rejected): once it is counted, the flood before it was read
    await send(rpcFrame([{ topic: JOBS_TOPIC, data: Uint8Array.of(9, 9, 9) }]))
  })

  afterAll(async () => {
    await attacker?.stop()
    await cleanupAll()
  })

  it('is dropped unread: no series names a made-up topic, the scrape stays small, the daemon answers', async () => {
    const scrape = async (): Promise<string> => await (await fetch(`http://${api}/debug/metrics/prometheus`, { headers: apiHeaders(api) })).text()
    const text = await waitFor(async () => {
      const t = await scrape()
      return (sample(parsePrometheus(t), 'concur_gossip_messages_total', { topic: JOBS_TOPIC, action: 'reject' }) ?? 0) >= 1 ? t : undefined
    }, 'the marker message counted')
    expect(text.length).toBeLessThan(1024 * 1024)
    expect(text).not.toContain('x'.repeat(200))
    expect(text).not.toContain('made-up-')
    // not counted under "other" either: gossipsub never saw them (allowedTopics), the cap is the second guard
    const otherTopics = text.split('\n').filter(l => !l.startsWith('#') && /\btopic(Str)?="other"/.test(l))
    expect(otherTopics).toEqual([])
    const id = await fetch(`http://${api}/v1/id`, { headers: apiHeaders(api) })
    expect(id.status).toBe(200)
  })
})
