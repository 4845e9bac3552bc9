/**
 * The pack blockstore against a Map: random sequences of put, putMany,
 * delete, deleteMany, get, has, bursts of puts and deletes of one block not
 * awaited in between (applied in the order asked), compact (alone, and with puts, deletes and
 * reads running during it) and reopen (with and without the index file, i.e.
 * as after a crash before the index was saved), with tiny
 * packs so that every sequence rolls, compacts and rescans packs. After every
 * step the store answers as the Map does, and its O(1) counters agree with
 * it. Bounded: 140 sequences of 20 to 60 steps over 10 blocks.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { blockOf, readBlock } from './pack-store-helpers.ts'
import type { TestBlock } from './pack-store-helpers.ts'
import type { ChecksumPolicy } from '../../src/store/pack/index.ts'

const BLOCKS: TestBlock[] = Array.from({ length: 10 }, (_, i) => {
  // sizes from empty to several KiB; every third one named by sha2-512 (kept with a crc32)
  const bytes = new Uint8Array([0, 1, 300, 2000, 5000, 17, 4096, 64, 9000, 3][i] as number).fill(i + 1)
  if (bytes.byteLength > 0) bytes[0] = i
  return blockOf(bytes, i % 3 === 2 ? 'sha512' : 'sha256')
})

type Op =
  | { op: 'put', i: number }
  | { op: 'putMany', is: number[] }
  | { op: 'delete', i: number }
  | { op: 'deleteMany', is: number[] }
  | { op: 'get', i: number }
  | { op: 'has', i: number }
  | { op: 'compact', threshold: number }
  | { op: 'reopen', dropIndex: boolean }
  /** puts and deletes of one block issued back to back, none awaited before the next: applied in order */
  | { op: 'burst', i: number, seq: Array<'put' | 'delete'> }
  /** a compaction with puts, deletes and reads of other blocks running at the same time */
  | { op: 'compactWhile', threshold: number, puts: number[], deletes: number[] }

const index = fc.integer({ min: 0, max: BLOCKS.length - 1 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: index.map(i => ({ op: 'put' as const, i })) },
  { weight: 3, arbitrary: fc.array(index, { maxLength: 6 }).map(is => ({ op: 'putMany' as const, is })) },
  { weight: 3, arbitrary: index.map(i => ({ op: 'delete' as const, i })) },
  { weight: 2, arbitrary: fc.array(index, { maxLength: 6 }).map(is => ({ op: 'deleteMany' as const, is })) },
  { weight: 3, arbitrary: index.map(i => ({ op: 'get' as const, i })) },
  { weight: 2, arbitrary: index.map(i => ({ op: 'has' as const, i })) },
  { weight: 2, arbitrary: fc.constantFrom(0, 0.3, 0.9).map(threshold => ({ op: 'compact' as const, threshold })) },
  { weight: 2, arbitrary: fc.boolean().map(dropIndex => ({ op: 'reopen' as const, dropIndex })) },
  { weight: 2, arbitrary: fc.record({ i: index, seq: fc.array(fc.constantFrom('put' as const, 'delete' as const), { minLength: 2, maxLength: 5 }) }).map(({ i, seq }) => ({ op: 'burst' as const, i, seq })) },
  {
    weight: 2,
    arbitrary: fc.record({ threshold: fc.constantFrom(0, 0.3), puts: fc.uniqueArray(index, { maxLength: 4 }), deletes: fc.uniqueArray(index, { maxLength: 4 }) })
      .map(({ threshold, puts, deletes }) => ({ op: 'compactWhile' as const, threshold, puts, deletes: deletes.filter(i => !puts.includes(i)) }))
  }
)

describe('the pack blockstore', () => {
  const dirs: string[] = []
  afterAll(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })

  async function run (ops: Op[], checksum: ChecksumPolicy): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'concur-pack-model-'))
    dirs.push(dir)
    const init = { maxPackBytes: 12_000, checksum }
    let store = new PackBlockstore(dir, init)
    await store.open()
    const model = new Map<number, Uint8Array>()
    try {
      for (const step of ops) {
        switch (step.op) {
          case 'put': {
            const b = BLOCKS[step.i] as TestBlock
            await store.put(b.cid, b.bytes)
            model.set(step.i, b.bytes)
            break
          }
          case 'putMany': {
            const got: string[] = []
            for await (const cid of store.putMany(step.is.map(i => BLOCKS[i] as TestBlock))) got.push(cid.toString())
            expect(got).toEqual(step.is.map(i => (BLOCKS[i] as TestBlock).cid.toString()))
            for (const i of step.is) model.set(i, (BLOCKS[i] as TestBlock).bytes)
            break
          }
          case 'delete':
            await store.delete((BLOCKS[step.i] as TestBlock).cid)
            model.delete(step.i)
            break
          case 'deleteMany':
            for await (const _ of store.deleteMany(step.is.map(i => (BLOCKS[i] as TestBlock).cid))) { /* drain */ }
            for (const i of step.is) model.delete(i)
            break
          case 'get': {
            const b = BLOCKS[step.i] as TestBlock
            const want = model.get(step.i)
            if (want == null) await expect(readBlock(store, b.cid)).rejects.toMatchObject({ name: 'NotFoundError', code: 'ERR_NOT_FOUND' })
            else expect(Buffer.compare(await readBlock(store, b.cid), want)).toBe(0)
            break
          }
          case 'has':
            expect(store.has((BLOCKS[step.i] as TestBlock).cid)).toBe(model.has(step.i))
            break
          case 'compact': {
            const before = store.stats()
            const r = await store.compact({ threshold: step.threshold })
            expect(r.corruptDropped).toBe(0)
            expect(store.stats().diskBytes).toBeLessThanOrEqual(before.diskBytes + 12_000)
            if (step.threshold === 0) expect(store.stats().reclaimableBytes).toBe(0)
            break
          }
          case 'burst': {
            const b = BLOCKS[step.i] as TestBlock
            await Promise.all(step.seq.map(async (what) => { if (what === 'put') await store.put(b.cid, b.bytes); else await store.delete(b.cid) }))
            if (step.seq[step.seq.length - 1] === 'put') model.set(step.i, b.bytes)
            else model.delete(step.i)
            break
          }
          case 'compactWhile': {
            const reads = [...model.keys()].filter(i => !step.deletes.includes(i))
            await Promise.all([
              store.compact({ threshold: step.threshold }),
              ...step.puts.map(async i => await store.put((BLOCKS[i] as TestBlock).cid, (BLOCKS[i] as TestBlock).bytes)),
              ...step.deletes.map(async i => { await store.delete((BLOCKS[i] as TestBlock).cid) }),
              ...reads.map(async i => { expect(Buffer.compare(await readBlock(store, (BLOCKS[i] as TestBlock).cid), model.get(i) as Uint8Array)).toBe(0) })
            ])
            for (const i of step.puts) model.set(i, (BLOCKS[i] as TestBlock).bytes)
            for (const i of step.deletes) model.delete(i)
            break
          }
          case 'reopen':
            await store.close()
            if (step.dropIndex) await rm(join(dir, 'index'), { force: true })
            store = new PackBlockstore(dir, init)
            await store.open()
            expect(store.recovery?.truncated).toEqual([])
            expect(store.recovery?.corrupt).toEqual([])
            break
        }
        const s = store.stats()
        expect(s.blocks).toBe(model.size)
        expect(s.liveBytes).toBe([...model.values()].reduce((n, b) => n + b.byteLength, 0))
        expect(s.reclaimableBytes).toBeGreaterThanOrEqual(0)
      }
      // at the end: everything the model holds, nothing else, every byte right
      const all = new Map<string, Uint8Array>()
      for await (const { cid, bytes } of store.getAll()) {
        const parts: Uint8Array[] = []
        for await (const p of bytes) parts.push(p)
        all.set(cid.toString(), Buffer.concat(parts))
      }
      expect([...all.keys()].sort()).toEqual([...model.keys()].map(i => (BLOCKS[i] as TestBlock).cid.toString()).sort())
      for (const [i, bytes] of model) expect(Buffer.compare(all.get((BLOCKS[i] as TestBlock).cid.toString()) as Uint8Array, bytes)).toBe(0)
      await store.compact({ threshold: 0 })
      expect(store.stats().reclaimableBytes).toBe(0)
    } finally {
      await store.close()
    }
  }

  it('answers every put, delete, get, has, compact and reopen as a Map would (multihash checks)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 60, size: 'max' }), async (ops) => { await run(ops, 'multihash') }), { numRuns: 100 })
  })

  it('the same with a crc32 kept for every block', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 20, maxLength: 60, size: 'max' }), async (ops) => { await run(ops, 'crc32') }), { numRuns: 40 })
  })
})
