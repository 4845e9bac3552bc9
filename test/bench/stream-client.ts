/**
 * The client side of the transfer baseline, in its own process: dial the
 * stream peer `runs` times, read `bytes` each time, print the times as JSON.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'

const [addr, bytesText, runsText] = process.argv.slice(2)
const bytes = Number(bytesText)
const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
const times: number[] = []
for (let i = 0; i < Number(runsText); i++) {
  const t = performance.now()
  const s = await client.dialProtocol(multiaddr(addr as string), '/concur-bench/stream/1')
  let got = 0
  for await (const c of s) got += c.byteLength
  if (got !== bytes) throw new Error(`stream delivered ${got} of ${bytes}`)
  // close our side too: a half-open stream still counts against the peer's
  // maxInboundStreams (4), and the fifth dial would then be reset
  await s.close()
  times.push(performance.now() - t)
}
await client.stop()
process.stdout.write(JSON.stringify(times) + '\n')
process.exit(0)
