/**
 * Compaction: returning the disk space of deleted blocks. Packs whose dead
 * share is at least the threshold are rewritten, a group at a time: their
 * live records are copied into a new pack, which then replaces them.
 *
 * Steps per group, and what a crash (SIGKILL, power loss) after each leaves:
 *
 * 1. copy the live records into `NNNNNNNN.pack.tmp`, each checked on the
 *    way, then fdatasync. Not under the write lock: reads, puts and deletes
 *    go on. Crash: the temp file is deleted on open; the old packs are intact.
 * 2. under the write lock: a copied block that was deleted (or dropped)
 *    meanwhile gets a tombstone at its NEW location, fsynced, before the new
 *    pack gets its name: otherwise the copy would bring it back after a crash.
 *    Crash: these tombstones name a pack id that never became a pack (ids are
 *    never reused, so they can never kill anything else).
 * 3. rename the temp file to its pack name, fsync the directory, point the
 *    index at the copies. Crash: every live block is in both the old and the
 *    new pack; open keeps one copy and kills the other with a tombstone.
 * 4. unlink the old packs, fsync the directory, outside the lock. Reads
 *    already under way on an old pack finish on its still-open handle
 *    (pack-file.ts). Crash: as in 3.
 * 5. rewrite the tombstone log without the entries of the removed packs
 *    (temp file + rename). Crash: the old log's extra entries name packs that
 *    no longer exist: harmless, pruned next time.
 *
 * Reads of live blocks are never blocked: before step 3 they read the old
 * pack, after it the new one. Writes wait only while steps 2-3 and 5 run.
 */
import { open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { recordLength } from './entry.ts'
import { fsyncDir, writeAllAt } from './file-io.ts'
import { PACKS_DIR, PackFile, packFileName, tempPackFileName } from './pack-file.ts'
import { bodyMatches } from './record.ts'
import type { BlockEntry } from './entry.ts'
import type { CompactionHost } from './state.ts'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('concur:pack-store:compact')

/** copied records are written in runs of this many bytes (one pwritev each) */
const COPY_FLUSH_BYTES = 16 * 1024 * 1024

export type CompactProgress =
  /** `bytes` more of live records copied into the pack being written */
  | { type: 'copied', into: number, records: number, bytes: number }
  /** packs `removed` replaced by pack `into` (undefined: they held nothing live) */
  | { type: 'committed', removed: number[], into: number | undefined }

export interface CompactOptions extends AbortOptions {
  /** rewrite packs whose dead share is at least this (0..1); 0 rewrites every pack with any dead byte */
  threshold?: number
  onProgress?: (event: CompactProgress) => void
}

export interface CompactResult {
  diskBytesBefore: number
  diskBytesAfter: number
  packsRemoved: number[]
  packsWritten: number[]
  recordsCopied: number
  bytesCopied: number
  /** live blocks found corrupt while copying: dropped (served by nobody; fetched again when asked for) */
  corruptDropped: number
}

interface Move { key: string, from: BlockEntry, to: BlockEntry }

export async function compactPacks (host: CompactionHost, options: CompactOptions = {}): Promise<CompactResult> {
  const threshold = options.threshold ?? 0.3
  const st = host.state
  const result: CompactResult = { diskBytesBefore: host.diskBytes(), diskBytesAfter: 0, packsRemoved: [], packsWritten: [], recordsCopied: 0, bytesCopied: 0, corruptDropped: 0 }

  // which packs: decided under the lock, where the pack being appended to is
  // swapped for a fresh one if it is among them (a pack is rewritten only
  // once nothing is appended to it any more)
  const candidates = await host.lock.run(async () => {
    host.assertWritable()
    const chosen = [...st.packs.values()].filter(p =>
      p.size === 0 ? p.id !== host.activePackId : p.deadBytes > 0 && p.deadBytes / p.size >= threshold)
    if (chosen.some(p => p.id === host.activePackId)) await host.rollLocked()
    return chosen
  })
  if (candidates.length === 0) {
    result.diskBytesAfter = host.diskBytes()
    return result
  }

  // the live entries of each candidate, in file order (sequential reads); a
  // snapshot: nothing is appended to a candidate any more, and entries deleted
  // meanwhile are noticed at the swap
  const chosenIds = new Set(candidates.map(p => p.id))
  const live = new Map<number, Array<[string, BlockEntry]>>()
  for (const id of chosenIds) live.set(id, [])
  for (const [key, e] of st.index) live.get(e.pack)?.push([key, e])
  for (const list of live.values()) list.sort((a, b) => a[1].offset - b[1].offset)

  // groups whose live bytes fit one pack
  const groups: PackFile[][] = []
  let group: PackFile[] = []
  let groupBytes = 0
  for (const p of candidates.sort((a, b) => a.id - b.id)) {
    if (group.length > 0 && groupBytes + p.liveBytes > host.maxPackBytes) {
      groups.push(group)
      group = []
      groupBytes = 0
    }
    group.push(p)
    groupBytes += p.liveBytes
  }
  if (group.length > 0) groups.push(group)

  for (const sources of groups) {
    options.signal?.throwIfAborted()
    await compactGroup(host, sources, sources.flatMap(p => live.get(p.id) ?? []), result, options)
  }
  await host.lock.run(async () => {
    host.assertWritable()
    await host.saveIndexLocked()
  })
  result.diskBytesAfter = host.diskBytes()
  log('compacted %d packs into %d: %d -> %d bytes on disk', result.packsRemoved.length, result.packsWritten.length, result.diskBytesBefore, result.diskBytesAfter)
  return result
}

async function compactGroup (host: CompactionHost, sources: PackFile[], entries: Array<[string, BlockEntry]>, result: CompactResult, options: CompactOptions): Promise<void> {
  const st = host.state
  const packsDir = join(host.dir, PACKS_DIR)
  const moves: Move[] = []
  const corrupt: Array<[string, BlockEntry]> = []
  let id: number | undefined
  let tmpPath = ''
  let handle: Awaited<ReturnType<typeof open>> | undefined
  let size = 0
  try {
    // 1. copy (outside the lock)
    let pending: Uint8Array[] = []
    let pendingBytes = 0
    let pendingRecords = 0
    const flush = async (): Promise<void> => {
      if (pending.length === 0 || handle == null || id == null) return
      await writeAllAt(handle, pending, size)
      size += pendingBytes
      options.onProgress?.({ type: 'copied', into: id, records: pendingRecords, bytes: pendingBytes })
      pending = []
      pendingBytes = 0
      pendingRecords = 0
    }
    for (const [key, from] of entries) {
      options.signal?.throwIfAborted()
      // deleted meanwhile: nothing to copy
      if (st.index.get(key) !== from) continue
      const pack = st.packs.get(from.pack)
      if (pack == null) continue
      const record = await pack.read(from.offset, recordLength(from))
      const body = record.subarray(from.headerLength)
      if (record.byteLength !== recordLength(from) || !(await bodyMatches(from.cid, from.checkKind, from.bodyCrc, body))) {
        // never copy bad bytes into a pack whose records are trusted as written
        corrupt.push([key, from])
        continue
      }
      if (handle == null) {
        id = host.allocatePackId()
        tmpPath = join(packsDir, tempPackFileName(id))
        handle = await open(tmpPath, 'wx+')
      }
      moves.push({ key, from, to: { ...from, pack: id as number, offset: size + pendingBytes } })
      pending.push(record)
      pendingBytes += record.byteLength
      pendingRecords++
      if (pendingBytes >= COPY_FLUSH_BYTES) await flush()
    }
    await flush()
    if (handle != null) await handle.datasync()

    const committed = await host.lock.run(async () => {
      host.assertWritable()
      // 2. copies of blocks deleted since they were copied die at their new location, durably, first
      const dead = moves.filter(m => st.index.get(m.key) !== m.from)
      if (id != null) await host.tombstones.append(dead.map(m => ({ pack: id as number, offset: m.to.offset })))
      // 3. the new pack gets its name; the index points at it
      let into: PackFile | undefined
      if (handle != null && id != null) {
        const path = join(packsDir, packFileName(id))
        await rename(tmpPath, path)
        await fsyncDir(packsDir)
        into = new PackFile(id, path, handle, size)
        handle = undefined
        st.addPack(into)
        result.packsWritten.push(id)
      }
      for (const m of moves) {
        if (st.replace(m.key, m.from, m.to)) {
          result.recordsCopied++
          result.bytesCopied += recordLength(m.to)
        }
      }
      // a block whose bytes went bad is lost here: better than serving it; a peer has it
      for (const [key, from] of corrupt) {
        if (st.remove(key, from)) {
          result.corruptDropped++
          log.error('block %s was corrupt in pack %d: dropped while compacting', from.cid, from.pack)
        }
      }
      // the old packs leave the state (one still holding a live block would be
      // a bug here: it is kept, never unlinked with the block in it)
      const gone = sources.filter(p => {
        if (p.liveBytes === 0) return true
        log.error('pack %d still holds %d live bytes after compaction: kept', p.id, p.liveBytes)
        return false
      })
      for (const p of gone) st.removePack(p)
      return { gone, into }
    })
    // 4. the old files go, outside the lock: nothing points into them any more,
    // and removing a large file can take long (ext4 with discard: ~50 ms per
    // 256 MiB measured); a crash before this is step 3's case
    for (const p of committed.gone) {
      await p.retire()
      result.packsRemoved.push(p.id)
    }
    await fsyncDir(packsDir)
    // 5. tombstones of removed packs name nothing any more (under the lock: deletes append to the log)
    await host.lock.run(async () => {
      host.assertWritable()
      await host.tombstones.prune(new Set(st.packs.keys()))
    })
    options.onProgress?.({ type: 'committed', removed: committed.gone.map(p => p.id), into: committed.into?.id })
  } finally {
    if (handle != null) {
      // not committed (aborted, or a failure): the temp pack is thrown away
      await handle.close().catch(() => {})
      await rm(tmpPath, { force: true })
    }
  }
}
