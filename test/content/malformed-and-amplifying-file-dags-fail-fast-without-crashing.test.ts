/**
 * A file's DAG from an untrusted peer.
 *
 * The caps on a fetch (entries, directory bytes, file bytes) say nothing
 * about the inside of a file, and the exporter's own file reader was the way
 * in: (1) a three-block DAG (a file node whose child is a dag-pb node with no
 * UnixFS data) made its reader reject a promise nobody awaited, which ends a
 * Node process; (2) a file that declares two bytes but links 25,000 times to
 * a node with 100,000 zero-size children had it visit billions of blocks
 * while yielding nothing; (3) a 1 MiB file root of declared size 0, linked
 * from many entries, costs a 1 MiB decode per visit. Files are now read by
 * read-file.ts: one block at a time, well-formed only, every block counted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { exportToDirectory, MalformedFileError, ContentTooLargeError } from '../../src/content/index.ts'
import { MemoryBlockstore } from './helpers.ts'

const unhandled: unknown[] = []
const onUnhandled = (err: unknown): void => { unhandled.push(err) }

async function putPb (store: MemoryBlockstore, node: dagPb.PBNode): Promise<CID> {
  const bytes = dagPb.encode(dagPb.prepare(node))
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  await store.put(cid, bytes)
  return cid
}

const dir = (links: dagPb.PBLink[]): dagPb.PBNode => ({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: links })

/** a store that counts reads */
function counting (store: MemoryBlockstore): { store: MemoryBlockstore, reads: () => number } {
  let n = 0
  const get = store.get.bind(store)
  store.get = (cid: CID) => { n++; return get(cid) }
  return { store, reads: () => n }
}

describe('file DAGs built to crash or stall a reader', () => {
  let work = ''
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'concur-filedag-'))
    process.on('unhandledRejection', onUnhandled)
  })
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled)
    await rm(work, { recursive: true, force: true })
  })
  afterEach(async () => {
    // let any stray rejection surface before judging: Node reports unhandled
    // rejections when the microtask queue drains, before the next macrotask
    await new Promise(resolve => setImmediate(resolve))
    expect(unhandled, 'an unhandled rejection (this ends a daemon)').toEqual([])
  })

  it('a file node whose child has no UnixFS data: a typed error, no unhandled rejection, nothing left', async () => {
    const store = new MemoryBlockstore()
    const bad = await putPb(store, { Links: [] })
    const f = await putPb(store, { Data: new UnixFS({ type: 'file', blockSizes: [1n] }).marshal(), Links: [{ Hash: bad }] })
    const root = await putPb(store, dir([{ Hash: f, Name: 'f' }]))
    const out = join(work, 'crash')
    const err = await exportToDirectory(store, root, out, { signal: AbortSignal.timeout(10_000) }).then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(MalformedFileError)
    expect(await readdir(work)).not.toContain('crash')
  })

  it('a file declaring 2 bytes over 25,000 links to 100,000 zero-size children: refused at the first such child', async () => {
    const { store, reads } = counting(new MemoryBlockstore())
    const empty = CID.createV1(raw.code, identity.digest(new Uint8Array(0)))
    const b = CID.createV1(raw.code, identity.digest(new Uint8Array([66])))
    const x = await putPb(store, { Data: new UnixFS({ type: 'file', blockSizes: Array(100_000).fill(0n) }).marshal(), Links: Array(100_000).fill({ Hash: empty }) })
    const r = await putPb(store, { Data: new UnixFS({ type: 'file', data: new Uint8Array([65]), blockSizes: [...Array(25_000).fill(0n), 1n] }).marshal(), Links: [...Array(25_000).fill({ Hash: x }), { Hash: b }] })
    const root = await putPb(store, dir([{ Hash: r, Name: 'f' }]))
    const err = await exportToDirectory(store, root, join(work, 'amp'), { signal: AbortSignal.timeout(60_000) }).then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(MalformedFileError)
    expect((err as Error).message).toContain('size 0')
    // the directory and the file root: nothing of the 2.5 billion visits
    expect(reads()).toBeLessThan(10)
  })

  it('well-formed but shared: a 1 MiB file node linked 5,000 times stops at the structure budget', async () => {
    const { store, reads } = counting(new MemoryBlockstore())
    const leaf = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
    await store.put(leaf, new Uint8Array([1]))
    // a node of ~26,000 one-byte children (about 1 MiB): every visit reads it whole
    const n = 26_000
    const big = await putPb(store, { Data: new UnixFS({ type: 'file', blockSizes: Array(n).fill(1n) }).marshal(), Links: Array(n).fill({ Hash: leaf }) })
    const links = Array.from({ length: 5000 }, (_, i) => ({ Hash: big, Name: `f${i}` }))
    const root = await putPb(store, dir(links))
    const err = await exportToDirectory(store, root, join(work, 'shared'), { signal: AbortSignal.timeout(60_000), maxDirectoryBytes: 8 * 1024 * 1024 })
      .then(() => null, (e: Error) => e)
    expect(err).toBeInstanceOf(ContentTooLargeError)
    expect((err as ContentTooLargeError).unit).toBe('directory-bytes')
    // each visit of the node costs its ~1 MiB plus 256 per leaf: a handful of visits, not 5,000
    expect(reads()).toBeLessThan(30 * n)
    expect(await readdir(work)).not.toContain('shared')
  })

  it('control: an honest multi-block file still exports byte for byte', async () => {
    const store = new MemoryBlockstore()
    const parts = [new Uint8Array(300).fill(7), new Uint8Array(200).fill(9)]
    const leaves = await Promise.all(parts.map(async p => { const c = CID.createV1(raw.code, await sha256.digest(p)); await store.put(c, p); return c }))
    const f = await putPb(store, { Data: new UnixFS({ type: 'file', blockSizes: [300n, 200n] }).marshal(), Links: leaves.map(Hash => ({ Hash })) })
    const root = await putPb(store, dir([{ Hash: f, Name: 'f' }]))
    const out = join(work, 'honest')
    const res = await exportToDirectory(store, root, out)
    expect(res.bytes).toBe(500)
    const { readFile } = await import('node:fs/promises')
    expect(Buffer.compare(await readFile(join(out, 'f')), Buffer.concat(parts))).toBe(0)
  })
})
