/**
 * The in-memory state of an open pack store: the index (multihash → record
 * location), the open packs, and the counters stats() answers from. Every
 * change to the index goes through these methods so the counters never
 * drift: stats() is O(1), never a walk of the index or a directory.
 */
import { recordLength } from './entry.ts'
import type { BlockEntry } from './entry.ts'
import type { PackFile } from './pack-file.ts'
import type { TombstoneLog } from './tombstones.ts'
import type { WriteLock } from './write-lock.ts'

export class PackState {
  readonly index = new Map<string, BlockEntry>()
  readonly packs = new Map<number, PackFile>()
  /** sum of the body lengths of indexed blocks */
  liveBodyBytes = 0
  /** sum of the record lengths (header + body) of indexed blocks */
  liveRecordBytes = 0
  /** sum of the sizes of the open packs */
  packBytes = 0

  addPack (pack: PackFile): void {
    this.packs.set(pack.id, pack)
    this.packBytes += pack.size
  }

  /** Drops a pack from the state; the caller has moved or dropped every entry that pointed into it. */
  removePack (pack: PackFile): void {
    if (this.packs.get(pack.id) !== pack) return
    this.packs.delete(pack.id)
    this.packBytes -= pack.size
    this.liveRecordBytes -= pack.liveBytes
  }

  /** records appended to `pack` and fsynced */
  grow (pack: PackFile, bytes: number): void {
    pack.size += bytes
    this.packBytes += bytes
  }

  add (key: string, entry: BlockEntry): void {
    const pack = this.packs.get(entry.pack)
    if (pack == null) throw new Error(`index entry for pack ${entry.pack}, which is not open`)
    this.index.set(key, entry)
    pack.liveBytes += recordLength(entry)
    this.liveRecordBytes += recordLength(entry)
    this.liveBodyBytes += entry.bodyLength
  }

  /** Removes `key` if the index still holds exactly `entry` (a concurrent delete or move wins otherwise). */
  remove (key: string, entry: BlockEntry): boolean {
    if (this.index.get(key) !== entry) return false
    this.index.delete(key)
    const pack = this.packs.get(entry.pack)
    if (pack != null) pack.liveBytes -= recordLength(entry)
    this.liveRecordBytes -= recordLength(entry)
    this.liveBodyBytes -= entry.bodyLength
    return true
  }

  /** Points `key` at a copy of its record, if the index still holds `from`. */
  replace (key: string, from: BlockEntry, to: BlockEntry): boolean {
    if (this.index.get(key) !== from) return false
    const fromPack = this.packs.get(from.pack)
    const toPack = this.packs.get(to.pack)
    if (toPack == null) throw new Error(`index entry for pack ${to.pack}, which is not open`)
    this.index.set(key, to)
    if (fromPack != null) fromPack.liveBytes -= recordLength(from)
    toPack.liveBytes += recordLength(to)
    this.liveRecordBytes += recordLength(to) - recordLength(from)
    return true
  }
}

/** What compaction needs of the store that runs it (compact.ts must not import the store: no cycle). */
export interface CompactionHost {
  readonly dir: string
  readonly state: PackState
  readonly tombstones: TombstoneLog
  readonly lock: WriteLock
  readonly maxPackBytes: number
  readonly activePackId: number
  /** a pack id never used before (nor named by a tombstone) */
  allocatePackId: () => number
  /** under the lock: start a new pack to append to, so the current one can be compacted */
  rollLocked: () => Promise<void>
  /** under the lock: write the index file */
  saveIndexLocked: () => Promise<void>
  /** under the lock: refuse to go on if a write failed beyond repair */
  assertWritable: () => void
  diskBytes: () => number
}
