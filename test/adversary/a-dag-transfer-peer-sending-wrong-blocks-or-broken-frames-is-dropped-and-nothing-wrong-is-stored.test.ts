import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Uint8ArrayList } from 'uint8arraylist'
import { addDirectory, dagSize } from '../../src/content/index.ts'
import { getBlock } from '../../src/content/stores.ts'
import { fetchDag } from '../../src/net/dag-transfer/fetch-dag.ts'
import type { FetchDagOptions, LocalStore } from '../../src/net/dag-transfer/fetch-dag.ts'
import { readAnswer } from '../../src/net/dag-transfer/read-answer.ts'
import { answerRequest, readRequest, requestPayload } from '../../src/net/dag-transfer/serve.ts'
import { FRAME, MAX_BLOCK_BYTES, MAX_REQUEST_BYTES, MAX_REQUEST_CIDS, MODE, decodeRequest, encodeRequest, frameHeader } from '../../src/net/dag-transfer/wire.ts'
import { MemoryBlockstore, keystream, withTempDir } from '../content/helpers.ts'
import { PEERS, SILENT, fakeNetwork, servedFrom } from '../network/dag-transfer/helpers.ts'
import type { FakeProvider } from '../network/dag-transfer/helpers.ts'

const MiB = 1024 * 1024

async function tree (tmp: string): Promise<{ store: MemoryBlockstore, root: CID }> {
  const src = join(tmp, 'src')
  await mkdir(src, { recursive: true })
  for (let i = 0; i < 8; i++) await writeFile(join(src, `f${i}.bin`), keystream(`f${i}`)(MiB + 1000 * i))
  const store = new MemoryBlockstore()
  return { store, root: (await addDirectory(store, src)).cid }
}

function fetchOptions (net: ReturnType<typeof fakeNetwork>, into: MemoryBlockstore, candidates = PEERS.slice(0, 2)): FetchDagOptions {
  return { candidates, maxBlocks: 100_000, maxBytes: 1024 * MiB, open: net.open, store: async (cid, bytes) => { await into.put(cid, bytes) }, flush: async () => {} }
}

/** every block held hashes to its CID */
async function allBlocksMatch (store: MemoryBlockstore): Promise<boolean> {
  for (const [key, bytes] of store.blocks) {
    const cid = CID.parse(key)
    if (!createHash('sha256').update(bytes).digest().equals(cid.multihash.digest)) return false
  }
  return true
}

async function * chunks (...parts: Uint8Array[]): AsyncGenerator<Uint8Array> { for (const p of parts) yield p }

describe('a hostile peer on the DAG transfer', () => {
  it('sending altered blocks: it is dropped at its first wrong block, nothing wrong is stored, and the honest peer completes the DAG', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp)
      // the liar alters every raw leaf it sends (the root and nodes pass, so it is a provider)
      const liar = servedFrom(store, (cid, bytes) => {
        if (cid.code !== 0x55) return bytes
        const copy = Uint8Array.from(bytes)
        copy[copy.byteLength - 1] = (copy[copy.byteLength - 1] as number) ^ 1
        return copy
      })
      const net = fakeNetwork(new Map([[PEERS[0]!.toString(), liar], [PEERS[1]!.toString(), servedFrom(store)]]))
      const into = new MemoryBlockstore()
      const local: LocalStore = { has: async (c) => await into.has(c), get: async (c) => await getBlock(into, c) }
      const r = await fetchDag(local, root, fetchOptions(net, into))
      expect(await allBlocksMatch(into)).toBe(true)
      expect(r.providers.find(p => p.peer === PEERS[0]!.toString())?.failed).toMatch(/not the block/)
      expect(r.complete).toBe(true)
      expect(await dagSize(into, root)).toEqual(await dagSize(store, root))
    })
  })

  it('one that answers the probe, then accepts requests and never answers, is given up after the stall bound, and the others complete the DAG', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp)
      // it sends single blocks (the probe, opening nodes) and goes silent on subtrees
      const staller: FakeProvider = { choose: (request) => request[0] === MODE.blocks ? servedFrom(store) : SILENT }
      const net = fakeNetwork(new Map<string, FakeProvider>([[PEERS[0]!.toString(), staller], [PEERS[1]!.toString(), servedFrom(store)]]))
      const into = new MemoryBlockstore()
      const local: LocalStore = { has: async (c) => await into.has(c), get: async (c) => await getBlock(into, c) }
      // the bound is the fetch's own setting (STALL_MS in a daemon), small here
      const r = await fetchDag(local, root, { ...fetchOptions(net, into), stallMs: 300 })
      expect(r.providers.find(p => p.peer === PEERS[0]!.toString())?.failed).toMatch(/stalled: nothing for 300 ms/)
      expect(r.complete).toBe(true)
      expect(await dagSize(into, root)).toEqual(await dagSize(store, root))
    })
  })

  it('one that trickles its answer a byte at a time (a slow-loris) is given up at the first window short of the minimum, and the others complete the DAG', async () => {
    await withTempDir(async (tmp) => {
      const { store, root } = await tree(tmp)
      // full speed for the probe's small answers, then a byte every 20 ms
      const loris: FakeProvider = { trickle: servedFrom(store), everyMs: 20, after: 64 * 1024 }
      const net = fakeNetwork(new Map<string, FakeProvider>([[PEERS[0]!.toString(), loris], [PEERS[1]!.toString(), servedFrom(store)]]))
      const into = new MemoryBlockstore()
      const local: LocalStore = { has: async (c) => await into.has(c), get: async (c) => await getBlock(into, c) }
      // the fetch's own settings (STALL_MS, MIN_BYTES_PER_WINDOW in a daemon), small here
      const r = await fetchDag(local, root, { ...fetchOptions(net, into), stallMs: 400, minBytesPerWindow: 4096 })
      expect(r.providers.find(p => p.peer === PEERS[0]!.toString())?.failed).toMatch(/stalled: \d+ bytes in 400 ms/)
      expect(r.complete).toBe(true)
      expect(await dagSize(into, root)).toEqual(await dagSize(store, root))
    })
  })

  it('a frame announcing more than a block\'s bytes is refused at its header, before its payload is buffered', async () => {
    const leaf = new Uint8Array([1, 2, 3])
    const cid = CID.createV1(0x55, await sha256.digest(leaf))
    let stored = 0
    let pulled = 0
    // the header, then the payload it announces, 64 KiB at a time (bounded: 40 chunks)
    async function * hostile (): AsyncGenerator<Uint8Array> {
      pulled++
      yield frameHeader(FRAME.block, MAX_BLOCK_BYTES + 1)
      for (let i = 0; i < 40; i++) { pulled++; yield new Uint8Array(64 * 1024) }
    }
    const huge = readAnswer(hostile(), MODE.subtrees, [cid], { budget: { blocks: 10, bytes: 10 * MiB }, onBlock: () => { stored++ } })
    await expect(huge).rejects.toThrow(/a frame of 2097153 bytes/)
    expect(pulled).toBe(1)
    expect(stored).toBe(0)
  })

  it('an answer that ends early, sends a block nobody asked for, an unknown frame, or bytes after its end is a protocol error', async () => {
    const leaf = new Uint8Array([1, 2, 3])
    const cid = CID.createV1(0x55, await sha256.digest(leaf))
    const opts = { budget: { blocks: 10, bytes: MiB }, onBlock: () => {} }
    const block = new Uint8ArrayList(frameHeader(FRAME.block, 3), leaf).subarray()
    const end = frameHeader(FRAME.end, 0)
    await expect(readAnswer(chunks(end), MODE.subtrees, [cid], opts)).rejects.toThrow(/ended before/)
    await expect(readAnswer(chunks(block, block, end), MODE.subtrees, [cid], opts)).rejects.toThrow(/after the last expected block/)
    await expect(readAnswer(chunks(frameHeader(7, 0)), MODE.subtrees, [cid], opts)).rejects.toThrow(/unknown frame kind 7/)
    await expect(readAnswer(chunks(block, new Uint8ArrayList(end, block).subarray()), MODE.subtrees, [cid], opts)).rejects.toThrow(/after the end/)
    await expect(readAnswer(chunks(block), MODE.subtrees, [cid], opts)).rejects.toThrow(/without its end frame/)
    // and the honest answer passes
    await expect(readAnswer(chunks(block, end), MODE.subtrees, [cid], opts)).resolves.toMatchObject({ blocks: 1, bytes: 3 })
  })

  it('as an asker: a request of too many CIDs or an unknown mode is refused; a DAG that links one block a million times is answered with that block once', async () => {
    const leaf = new Uint8Array([9])
    const cid = CID.createV1(0x55, await sha256.digest(leaf))
    expect(() => decodeRequest(new Uint8Array([5, ...cid.bytes]))).toThrow(/unknown transfer mode/)
    // a request announcing more than MAX_REQUEST_BYTES is refused at its prefix
    const announced = new Uint8Array(4)
    new DataView(announced.buffer).setUint32(0, MAX_REQUEST_BYTES + 1)
    await expect(readRequest(chunks(announced))).rejects.toThrow(/exceeds the limit/)
    const many = new Uint8Array(1 + (MAX_REQUEST_CIDS + 1) * cid.bytes.byteLength)
    many[0] = MODE.subtrees
    for (let i = 0; i <= MAX_REQUEST_CIDS; i++) many.set(cid.bytes, 1 + i * cid.bytes.byteLength)
    expect(() => decodeRequest(many)).toThrow(/exceeds the limit/)

    // a node naming the same leaf 10,000 times, and 100 of those nodes under one root: a million links
    const store = new MemoryBlockstore()
    await store.put(cid, leaf)
    const wide = dagPb.encode({ Links: Array.from({ length: 10_000 }, (_, i) => ({ Hash: cid, Name: `l${String(i).padStart(5, '0')}` })) })
    const wideCid = CID.createV1(dagPb.code, await sha256.digest(wide))
    await store.put(wideCid, wide)
    const top = dagPb.encode({ Links: Array.from({ length: 100 }, (_, i) => ({ Hash: wideCid, Name: `w${String(i).padStart(3, '0')}` })) })
    const topCid = CID.createV1(dagPb.code, await sha256.digest(top))
    await store.put(topCid, top)
    const sent = new Uint8ArrayList()
    const stats = await answerRequest({ send: (d) => { sent.append(d); return true }, addEventListener: () => {}, removeEventListener: () => {} }, requestPayload(encodeRequest(MODE.subtrees, [topCid])), servedFrom(store))
    expect(stats).toEqual({ blocks: 3, bytes: top.byteLength + wide.byteLength + 1, missing: 0 })
  })
})
