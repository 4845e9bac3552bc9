/**
 * A fetch is bounded by what it creates and reads, not only by file bytes:
 * two dag-pb blocks can name 25 million empty files (a directory of 5,000
 * links to one shared directory of 5,000 empty files: DAG reuse makes every
 * visit count), and a HAMT whose shards link the same shard over and over
 * names no entry at all while its walk never ends. Both must stop at a cap,
 * by default, with one typed error, before the entry that would exceed it
 * exists, and leave nothing behind (an existing target included).
 *
 * Counts, not times: files created are counted through the exporter's own
 * progress events (one per file whose content was written), blocks read
 * through a counting store; a guard abort well above each cap keeps today's
 * unbounded export from running for hours.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { describe, expect, it } from 'vitest'
import { DEFAULT_FETCH_LIMITS, BLOCK_VISIT_MIN_BYTES, exportToDirectory } from '../../src/content/index.ts'
import type { ExportOptions } from '../../src/content/index.ts'
import { MemoryBlockstore, putDagPb, withTempDir } from './helpers.ts'

const WIDTH = 5000

function names (prefix: string, n: number, width: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i.toString(16).toUpperCase().padStart(width, '0')}`)
}

/** root → WIDTH × `shared` → WIDTH × the empty file (an identity CID: no block at all) */
async function entryBomb (bs: MemoryBlockstore): Promise<CID> {
  const empty = CID.createV1(raw.code, identity.digest(new Uint8Array(0)))
  const shared = await putDagPb(bs, new UnixFS({ type: 'directory' }), names('f', WIDTH, 4).map(name => ({ name, cid: empty })))
  return await putDagPb(bs, new UnixFS({ type: 'directory' }), names('d', WIDTH, 4).map(name => ({ name, cid: shared })))
}

/** a 256-way HAMT, `depth` levels of shards each linking the next level's one shard 256 times, no entry anywhere */
async function shardBomb (bs: MemoryBlockstore, depth: number): Promise<CID> {
  const shard = (): UnixFS => new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n })
  let next = await putDagPb(bs, shard())
  for (let level = 0; level < depth; level++) {
    // a link whose name is only the 2-hex-digit prefix is a sub-shard, not an entry
    next = await putDagPb(bs, shard(), names('', 256, 2).map(name => ({ name, cid: next })))
  }
  return next
}

/**
 * Counts what the export did: files written, directories listed, blocks read
 * and what they cost against the directory-bytes cap; stops it past `guard`.
 */
function counting (guard: { files?: number, charged?: number }): { options: ExportOptions, counts: { files: number, dirs: number, blocks: number, charged: number }, wrap: (bs: MemoryBlockstore) => MemoryBlockstore } {
  const counts = { files: 0, dirs: 0, blocks: 0, charged: 0 }
  const ac = new AbortController()
  const options: ExportOptions = {
    signal: ac.signal,
    onEntry: (kind) => {
      // one call per entry created
      if (kind === 'file' && ++counts.files > (guard.files ?? Infinity)) ac.abort(new Error(`guard: more than ${guard.files} files created`))
      if (kind === 'directory') counts.dirs++
    }
  }
  const wrap = (bs: MemoryBlockstore): MemoryBlockstore => {
    const get = bs.get.bind(bs)
    return Object.assign(Object.create(bs) as MemoryBlockstore, {
      get: (cid: CID) => {
        counts.blocks++
        counts.charged += Math.max(bs.blocks.get(cid.toString())?.byteLength ?? 0, BLOCK_VISIT_MIN_BYTES)
        // thrown, not only aborted: this store (like an in-memory one) never looks at the signal
        if (counts.charged > (guard.charged ?? Infinity)) throw new Error(`guard: ${counts.blocks} blocks read, more than ${guard.charged} bytes`)
        return get(cid)
      }
    })
  }
  return { options, counts, wrap }
}

describe('fetch caps: entries and directory bytes', () => {
  it('two blocks naming 25 million empty files stop at the default entry cap, nothing created past it, nothing left', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const bomb = await entryBomb(bs)
      expect(bs.blocks.size).toBe(2)
      const cap = DEFAULT_FETCH_LIMITS.maxEntries
      const { options, counts } = counting({ files: cap + 50_000 })
      const err = await exportToDirectory(bs, bomb, join(tmp, 'out'), options).then(() => null, (e: unknown) => e)
      expect(err).toMatchObject({ name: 'ContentTooLargeError', code: 'ERR_CONTENT_TOO_LARGE', unit: 'entries', limit: cap })
      expect((err as Error).message).toMatch(/maxEntries/)
      // every entry counts, the shared directory on each visit
      expect(counts.files + counts.dirs).toBeLessThanOrEqual(cap)
      expect(await readdir(tmp)).toEqual([])
    })
  })

  it('an explicit maxEntries is exact: the entry over it is never created', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const bomb = await entryBomb(bs)
      const { options, counts } = counting({ files: 100_000 })
      await expect(exportToDirectory(bs, bomb, join(tmp, 'out'), { ...options, maxEntries: 7000 }))
        .rejects.toMatchObject({ code: 'ERR_CONTENT_TOO_LARGE', unit: 'entries', limit: 7000 })
      // d0000 (1 entry) + its 5000 files + d0001 (1 entry) + 1998 of its files
      expect(counts.files).toBe(6998)
      expect(counts.dirs).toBe(2)
      expect(await readdir(tmp)).toEqual([])
    })
  })

  it('a HAMT that links one shard over and over (no entry at all) stops at the default directory-bytes cap', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const bomb = await shardBomb(bs, 4)
      expect(bs.blocks.size).toBe(5)
      const biggest = Math.max(...[...bs.blocks.values()].map(b => b.byteLength))
      const cap = DEFAULT_FETCH_LIMITS.maxDirectoryBytes
      // ~4 billion shard reads without a cap, most of a block of a few bytes:
      // each read costs at least BLOCK_VISIT_MIN_BYTES; the guard is twice the cap
      const { options, counts, wrap } = counting({ charged: 2 * cap })
      await expect(exportToDirectory(wrap(bs), bomb, join(tmp, 'out'), options))
        .rejects.toMatchObject({ code: 'ERR_CONTENT_TOO_LARGE', unit: 'directory-bytes', limit: cap })
      expect(counts.charged).toBeLessThanOrEqual(cap + biggest)
      expect(counts.blocks).toBeLessThanOrEqual(cap / BLOCK_VISIT_MIN_BYTES + 1)
      expect(await readdir(tmp)).toEqual([])
    })
  })

  it('with overwrite, a failed export leaves the existing target as it was', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const bomb = await entryBomb(bs)
      const out = join(tmp, 'out')
      await mkdir(out)
      await writeFile(join(out, 'precious'), 'kept')
      const { options } = counting({ files: 100_000 })
      await expect(exportToDirectory(bs, bomb, out, { ...options, overwrite: true, maxEntries: 1000 }))
        .rejects.toMatchObject({ code: 'ERR_CONTENT_TOO_LARGE', unit: 'entries' })
      expect(await readdir(tmp)).toEqual(['out'])
      expect(await readdir(out)).toEqual(['precious'])
    })
  })
})
