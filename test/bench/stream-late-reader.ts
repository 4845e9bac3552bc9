/**
 * Reproduces a libp2p stream behaviour that stalls a request/answer protocol
 * delimited by the asker's close (found while profiling fetch, issue 14): a
 * handler that starts iterating a stream only after the remote's data AND its
 * close of writing have arrived never sees the end of the iteration. The
 * buffered bytes are delivered (addEventListener('message') flushes them), but
 * the iterator ends only on a 'remoteCloseWrite' or 'close' event that has
 * already fired, so `for await (const c of stream)` waits forever.
 *
 *   npx node test/bench/stream-late-reader.ts
 *
 * prints, for a handler that reads at once and one that is busy 50 ms first:
 *   handler reads after 0 ms: read 100 bytes and saw the end
 *   handler reads after 50 ms: hung (no end of the request within 3 s)
 * (measured with libp2p 3.3 / @libp2p/utils as installed). A protocol whose
 * request is "everything until the asker closes" (src/net/dag-transfer
 * serve.ts readRequest, test/bench/dag-stream.ts serve) therefore stalls
 * whenever the answering node is busy when a request arrives; a
 * length-prefixed request (read exactly n bytes) does not depend on it.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'

const node = async (listen: boolean): ReturnType<typeof createLibp2p> => await createLibp2p({
  ...(listen ? { addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] } } : {}),
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()]
})
const a = await node(true)
const b = await node(false)
for (const busyMs of [0, 50]) {
  let result = 'hung (no end of the request within 3 s)'
  const done = new Promise<void>((resolve) => {
    void a.handle(`/late-reader/${busyMs}`, async (stream) => {
      // the handler is busy (another answer, a disk read) before it reads
      await new Promise(r => setTimeout(r, busyMs))
      const guard = setTimeout(() => { stream.abort(new Error('hung')); resolve() }, 3000)
      let n = 0
      try {
        for await (const c of stream) n += c.byteLength
        result = `read ${n} bytes and saw the end`
      } catch { /* aborted by the guard */ }
      clearTimeout(guard)
      resolve()
    })
  })
  const addr = a.getMultiaddrs()[0]
  if (addr == null) throw new Error('no listen address')
  const s = await b.dialProtocol(addr, `/late-reader/${busyMs}`)
  s.send(new Uint8Array(100))
  await s.close()
  await done
  process.stdout.write(`handler reads after ${busyMs} ms: ${result}\n`)
}
await a.stop()
await b.stop()
process.exit(0)
