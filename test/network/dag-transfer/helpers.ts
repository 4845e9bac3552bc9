import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { UnixFS } from 'ipfs-unixfs'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { YAMUX_STREAM_OPTIONS } from '../../../src/net/stream-flow.ts'
import { answerRequest, requestPayload } from '../../../src/net/dag-transfer/serve.ts'
import type { LocalBlocks } from '../../../src/net/dag-transfer/serve.ts'
import { getBlock } from '../../../src/content/stores.ts'
import { MemoryBlockstore, keystream, putDagPb } from '../../content/helpers.ts'

export const PEERS = [
  '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
  '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq',
  '12D3KooWRxW8pUe2jWTFhcsWiyHnZ53zMcfbPp5bRoM8Hw3ZiQEu',
  '12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDMp4F9eFNbqyPMnvsv'
].map(s => peerIdFromString(s))

/** the blocks a provider serves: from its store, optionally altered on the way out */
export function servedFrom (store: MemoryBlockstore, alter?: (cid: CID, bytes: Uint8Array) => Uint8Array | undefined): LocalBlocks {
  return {
    get: async (cid) => {
      if (!await store.has(cid)) return undefined
      const bytes = await getBlock(store, cid)
      return alter != null ? alter(cid, bytes) : bytes
    }
  }
}

export interface Wire { requests: Array<{ peer: string, bytes: number }>, sentBytes: Map<string, number> }

/**
 * `open` for fetchDag without a network: each "stream" runs the real answer
 * (answerRequest) of the provider named by the peer id over its blocks, and
 * hands its frames to the asker in chunks of `chunk` bytes (frames split
 * across chunks, as TCP does). `raw` replaces a provider's answer bytes.
 */
export const SILENT = 'silent'

/** a provider: its blocks, raw answer bytes, silence, or a choice among those per request */
export type FakeProvider = LocalBlocks | ((request: Uint8Array) => Uint8Array[]) | typeof SILENT | { choose: (request: Uint8Array) => LocalBlocks | typeof SILENT } | Trickle

/** an honest answer, sent one byte every `everyMs` (a slow-loris) once `after` bytes have gone at full speed */
export interface Trickle { trickle: LocalBlocks, everyMs: number, after: number }

export function fakeNetwork (providers: Map<string, FakeProvider>, chunk = 7000): { open: (peer: PeerId) => Promise<Stream>, wire: Wire } {
  const wire: Wire = { requests: [], sentBytes: new Map() }
  const open = async (peer: PeerId): Promise<Stream> => {
    const provider = providers.get(peer.toString())
    if (provider == null) throw new Error(`cannot dial ${peer.toString()}`)
    let request: Uint8Array = new Uint8Array()
    let aborted: (err: Error) => void = () => {}
    const abortedP = new Promise<never>((_resolve, reject) => { aborted = reject })
    abortedP.catch(() => {})
    const fake = {
      send: (data: Uint8Array | Uint8ArrayList) => { request = data instanceof Uint8Array ? data : data.subarray(); return true },
      close: async () => {},
      abort: (err: Error) => { aborted(err) },
      async * [Symbol.asyncIterator] () {
        wire.requests.push({ peer: peer.toString(), bytes: request.byteLength })
        const trickle = typeof provider === 'object' && 'trickle' in provider ? provider : undefined
        const serve: LocalBlocks | ((request: Uint8Array) => Uint8Array[]) | typeof SILENT = trickle != null
          ? trickle.trickle
          : typeof provider === 'object' && 'choose' in provider ? provider.choose(requestPayload(request)) : provider as LocalBlocks | ((request: Uint8Array) => Uint8Array[]) | typeof SILENT
        // a peer that accepts the stream and never answers: only an abort ends it
        if (serve === SILENT) { await abortedP; return }
        let out: Uint8Array[]
        if (typeof serve === 'function') {
          out = serve(request)
        } else {
          const frames = new Uint8ArrayList()
          await answerRequest({ send: (d: Uint8Array | Uint8ArrayList) => { frames.append(d); return true }, addEventListener: () => {}, removeEventListener: () => {} }, requestPayload(request), serve)
          out = [frames.subarray()]
        }
        const all = new Uint8ArrayList(...out).subarray()
        wire.sentBytes.set(peer.toString(), (wire.sentBytes.get(peer.toString()) ?? 0) + all.byteLength)
        if (trickle != null) {
          yield all.subarray(0, trickle.after)
          // bounded: the answer's own length, and an abort ends it
          for (let i = trickle.after; i < all.byteLength; i++) {
            await Promise.race([new Promise(resolve => setTimeout(resolve, trickle.everyMs)), abortedP])
            yield all.subarray(i, i + 1)
          }
          return
        }
        for (let i = 0; i < all.byteLength; i += chunk) yield all.subarray(i, i + chunk)
      }
    }
    return messageStreamOf(fake)
  }
  return { open, wire }
}

/**
 * A fake stream (its chunks an async iterable) as the reader sees a libp2p
 * stream: 'message' events once a listener is added, held while paused,
 * 'remoteCloseWrite' at its end, 'close' with the error it ends with.
 */
function messageStreamOf (fake: { send: (data: Uint8Array | Uint8ArrayList) => boolean, close: () => Promise<void>, abort: (err: Error) => void, [Symbol.asyncIterator]: () => AsyncGenerator<Uint8Array> }): Stream {
  const target = new EventTarget()
  let readStatus: 'readable' | 'paused' | 'closed' = 'readable'
  let resumed: (() => void) | undefined
  let started = false
  const pump = async (): Promise<void> => {
    try {
      for await (const chunk of fake) {
        while (readStatus === 'paused') await new Promise<void>(resolve => { resumed = resolve })
        target.dispatchEvent(Object.assign(new Event('message'), { data: chunk }))
      }
      readStatus = 'closed'
      target.dispatchEvent(new Event('remoteCloseWrite'))
    } catch (err) {
      readStatus = 'closed'
      target.dispatchEvent(Object.assign(new Event('close'), { error: err as Error }))
    }
  }
  const stream = {
    send: fake.send,
    close: fake.close,
    abort: fake.abort,
    get readStatus () { return readStatus },
    pause: () => { if (readStatus === 'readable') readStatus = 'paused' },
    resume: () => { if (readStatus === 'paused') { readStatus = 'readable'; resumed?.() } },
    addEventListener: (type: string, fn: EventListener) => {
      target.addEventListener(type, fn)
      if (type === 'message' && !started) { started = true; void pump() }
    },
    removeEventListener: (type: string, fn: EventListener) => { target.removeEventListener(type, fn) }
  }
  return stream as unknown as Stream
}

/**
 * A directory of `count` distinct 1 MiB raw leaves whose links declare size 0
 * (putDagPb), so one answer can carry 64 subtrees: the flow-control tests' DAG.
 */
export async function directoryOfLeaves (seed: string, count: number): Promise<{ store: MemoryBlockstore, root: CID, leaves: Array<{ name: string, cid: CID }> }> {
  const store = new MemoryBlockstore()
  const bytes = keystream(seed)
  const leaves: Array<{ name: string, cid: CID }> = []
  for (let i = 0; i < count; i++) {
    const leaf = new Uint8Array(bytes(1024 * 1024))
    const cid = CID.createV1(raw.code, await sha256.digest(leaf))
    await store.put(cid, leaf)
    leaves.push({ name: `f${String(i).padStart(3, '0')}`, cid })
  }
  return { store, root: await putDagPb(store, new UnixFS({ type: 'directory' }), leaves), leaves }
}

/** a listening node and a dialling one on loopback, with the yamux options every concur peer runs with */
export async function flowPair (): Promise<[Libp2p, Libp2p]> {
  const muxer = (): ReturnType<typeof yamux> => yamux({ streamOptions: { ...YAMUX_STREAM_OPTIONS } })
  const server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [muxer()] })
  const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [muxer()] })
  return [server, client]
}
