/**
 * Fetch lever (experimental, not used by concur): a transfer protocol over one
 * libp2p stream that sends a whole DAG in order (depth-first, root first: the
 * order of a CAR export) instead of bitswap's want/have round trips.
 *
 * Frame: u32be cidLength, cid bytes, u32be dataLength, data.
 *
 * Verification is as strict as bitswap's: the receiver only accepts the block
 * it expects next — the root it asked for, then the children named by blocks it
 * has already verified, in link order — and only if sha256(data) equals that
 * CID's digest; a dag-pb block is decoded to learn its children. Anything else
 * aborts the transfer. Verified blocks go through the same BlockWriter into the
 * receiver's FsBlockstore, then the tree is exported exactly as `content get`
 * does (exportToDirectory).
 *
 * Run as a script it is either side, each in a process of its own (like two daemons):
 * - `node dag-stream.ts serve <blocksDir>` prints {"multiaddr": …} and serves that FsBlockstore;
 * - `node dag-stream.ts fetch <multiaddr> <cid> <runs> <minBytes>` fetches the DAG `runs`
 *   times, each into a fresh home (openStores) and exported (exportToDirectory), and prints
 *   the times in ms as JSON.
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { Uint8ArrayList } from 'uint8arraylist'
import { FsBlockstore } from 'blockstore-fs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlockWriter, exportToDirectory, openStores, walkDagBlocks } from '../../src/content/index.ts'
import type { WritableBlockstore } from '../../src/content/index.ts'

export const DAG_PROTOCOL = '/concur-bench/dag/1'
const SHA256 = 0x12

function u32 (n: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

/** Receives the DAG under `root` from `addr` into `store`, verifying every block. Returns bytes received. */
export async function fetchDag (node: Libp2p, addr: string, root: CID, store: WritableBlockstore): Promise<number> {
  const stream = await node.dialProtocol(multiaddr(addr), DAG_PROTOCOL)
  const req = root.bytes
  stream.send(new Uint8ArrayList(u32(req.byteLength), req))
  // our side is done once the request is out; the server reads to its end
  const closing = stream.close().catch(() => {})
  const writer = new BlockWriter(store)
  const expected: CID[] = [root]
  const seen = new Set<string>()
  const buf = new Uint8ArrayList()
  let received = 0
  const nextExpected = (): CID | undefined => {
    // identity CIDs and repeats are not sent (walkDagBlocks skips them): skip them here too
    while (expected.length > 0) {
      const c = expected[expected.length - 1] as CID
      if (c.multihash.code === 0x00 || seen.has(c.toString())) { expected.pop(); continue }
      return c
    }
    return undefined
  }
  for await (const chunk of stream) {
    buf.append(chunk)
    while (buf.byteLength >= 4) {
      const cidLen = buf.getUint32(0)
      if (buf.byteLength < 4 + cidLen + 4) break
      const dataLen = buf.getUint32(4 + cidLen)
      if (buf.byteLength < 8 + cidLen + dataLen) break
      const cid = CID.decode(buf.subarray(4, 4 + cidLen))
      const data = buf.subarray(8 + cidLen, 8 + cidLen + dataLen)
      buf.consume(8 + cidLen + dataLen)
      const want = nextExpected()
      if (want == null || !want.equals(cid)) throw new Error(`unexpected block ${cid.toString()} (wanted ${want?.toString() ?? 'none'})`)
      if (cid.multihash.code !== SHA256) throw new Error(`unsupported hash 0x${cid.multihash.code.toString(16)}`)
      const digest = createHash('sha256').update(data).digest()
      if (!digest.equals(cid.multihash.digest)) throw new Error(`block ${cid.toString()} does not match its CID`)
      expected.pop()
      seen.add(cid.toString())
      if (cid.code === dagPb.code) {
        const links = dagPb.decode(data).Links
        for (let i = links.length - 1; i >= 0; i--) expected.push(CID.asCID(links[i]!.Hash) ?? CID.decode(links[i]!.Hash.bytes))
      } else if (cid.code !== raw.code) {
        throw new Error(`unsupported codec 0x${cid.code.toString(16)}`)
      }
      received += data.byteLength
      await writer.put(cid, data)
    }
  }
  await writer.flush()
  await closing
  if (nextExpected() != null || buf.byteLength > 0) throw new Error('transfer ended before the DAG was complete')
  return received
}

async function serve (blocksDir: string): Promise<void> {
  const store = new FsBlockstore(blocksDir)
  await store.open()
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  await node.handle(DAG_PROTOCOL, async (stream) => {
    const buf = new Uint8ArrayList()
    let root: CID | undefined
    // the request is the whole of what the client writes before closing its side
    for await (const chunk of stream) buf.append(chunk)
    if (buf.byteLength >= 4 && buf.byteLength === 4 + buf.getUint32(0)) root = CID.decode(buf.subarray(4))
    if (root == null) { stream.abort(new Error('no request')); return }
    for await (const { cid, bytes } of walkDagBlocks(store, root)) {
      if (!stream.send(new Uint8ArrayList(u32(cid.bytes.byteLength), cid.bytes, u32(bytes.byteLength), bytes))) await stream.onDrain()
    }
    await stream.close()
  }, { maxInboundStreams: 4, maxOutboundStreams: 4 })
  process.stdout.write(JSON.stringify({ multiaddr: node.getMultiaddrs()[0]?.toString() }) + '\n')
  process.on('SIGTERM', () => { void Promise.resolve(node.stop()).then(() => process.exit(0)) })
}

async function fetchRuns (addr: string, root: CID, runs: number, minBytes: number): Promise<void> {
  const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const home = await mkdtemp(join(tmpdir(), 'concur-bench-dag-'))
    const stores = await openStores(home)
    try {
      const t = performance.now()
      const got = await fetchDag(node, addr, root, stores.blockstore)
      if (got < minBytes) throw new Error(`dag stream delivered ${got} bytes`)
      await exportToDirectory(stores.blockstore, root, join(home, 'out'))
      times.push(performance.now() - t)
    } finally {
      await stores.close()
      await rm(home, { recursive: true, force: true })
    }
  }
  await node.stop()
  process.stdout.write(JSON.stringify(times) + '\n')
  process.exit(0)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, a, b, c, d] = process.argv.slice(2)
  if (mode === 'serve') await serve(a as string)
  else if (mode === 'fetch') await fetchRuns(a as string, CID.parse(b as string), Number(c), Number(d))
  else throw new Error('usage: dag-stream.ts serve <blocksDir> | fetch <multiaddr> <cid> <runs> <minBytes>')
}
