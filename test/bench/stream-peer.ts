/**
 * A bare libp2p node (TCP + noise + yamux, nothing else) in its own process:
 * the baseline for artifact transfer. It serves `bytes` of data on
 * /concur-bench/stream/1 to whoever opens the protocol, and prints its
 * multiaddr as one JSON line. Also serves raw TCP on a second port.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'

export const STREAM_PROTOCOL = '/concur-bench/stream/1'

const bytes = Number(process.argv[2] ?? String(64 * 1024 * 1024))
const chunk = new Uint8Array(256 * 1024).fill(7)

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()]
})
await node.handle(STREAM_PROTOCOL, async (stream) => {
  let sent = 0
  while (sent < bytes) {
    const n = Math.min(chunk.byteLength, bytes - sent)
    if (!stream.send(n === chunk.byteLength ? chunk : chunk.subarray(0, n))) await stream.onDrain()
    sent += n
  }
  await stream.close()
}, { maxOutboundStreams: 4, maxInboundStreams: 4 })

const server = createServer((sock) => {
  let sent = 0
  const write = (): void => {
    while (sent < bytes) {
      const n = Math.min(chunk.byteLength, bytes - sent)
      sent += n
      if (!sock.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n))) { sock.once('drain', write); return }
    }
    sock.end()
  }
  write()
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))

process.stdout.write(JSON.stringify({ multiaddr: node.getMultiaddrs()[0]?.toString(), tcpPort: (server.address() as AddressInfo).port }) + '\n')
process.on('SIGTERM', () => { void Promise.resolve(node.stop()).then(() => process.exit(0)) })
