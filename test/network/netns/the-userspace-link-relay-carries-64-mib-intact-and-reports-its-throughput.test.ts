// Where the kernel has no sch_netem a NAT segment's uplink is a userspace TCP
// relay in its router. Fetch benchmarks run through it, so it must carry bulk
// data intact and in order, and we want to know its throughput next to the
// kernel's own paths (printed, not asserted: a speed is this machine's, not a
// property of the relay). The relay is forced here, so CI with netem measures it too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, jsonLines, NETNS_TOOL, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

const BYTES = 64 * 1024 * 1024

describe.skipIf(skip != null)('the userspace link relay', () => {
  let net: TestNetwork

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: {}, slow: { nat: true }, relayed: { nat: true }, plain: { nat: true } },
      hosts: { boot: { segment: 'public' }, pub2: { segment: 'public' }, w1: { segment: 'slow' }, w2: { segment: 'relayed' }, w3: { segment: 'plain' } },
      links: { slow: { delayMs: 100, jitterMs: 10, lossPercent: 1 }, relayed: { delayMs: 0 } },
      linkMode: 'userspace'
    })
    const sink = jsonLines(net.spawnIn('boot', [process.execPath, NETNS_TOOL, 'sink', 'port=6000']))
    await sink.until('listening', 'the sink')
  })
  afterAll(async () => { await net?.teardown() })

  it('says which link properties it could not apply', () => {
    expect(net.mode).toBe('userspace')
    expect(net.ignored).toEqual([expect.stringContaining('slow: lossPercent 1 not applied')])
  })

  it('carries 64 MiB intact and in order, and its throughput is printed next to the kernel\'s paths', async () => {
    const paths: Array<[string, string]> = [['pub2', 'public to public (kernel)'], ['w3', 'NAT, no link (kernel)'], ['w2', 'NAT, relay with 0 ms'], ['w1', 'NAT, relay with 100±10 ms']]
    const figures: string[] = []
    for (const [host, what] of paths) {
      const r = await net.run(host, [process.execPath, NETNS_TOOL, 'send', `host=${net.addressOf('boot')}`, 'port=6000', `bytes=${BYTES}`], { timeoutMs: 110_000 })
      const doc = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { sent: number, ms: number, sha256: string, sink: { bytes: number, sha256: string } }
      expect(doc.sink, `${what}: ${r.stderr}`).toEqual({ bytes: BYTES, ms: expect.any(Number), sha256: doc.sha256 })
      figures.push(`${what}: ${(BYTES / (doc.ms / 1000) / 1e6).toFixed(0)} MB/s (${doc.ms.toFixed(0)} ms)`)
    }
    console.log(`netns 64 MiB transfers: ${figures.join('; ')}`)
  })
})
