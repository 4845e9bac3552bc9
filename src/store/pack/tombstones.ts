/**
 * The tombstone log (`<dir>/tombstones`): one fixed-size entry per dead
 * record, naming the record by its location (pack id, offset), never by its
 * CID. Why a location: the same block can be deleted and put again, and then
 * lives at a new location that no tombstone names; and a block that
 * compaction copied has two locations until the old pack is gone, each of
 * which dies on its own. Pack ids are never reused (see nextPackId in
 * pack-blockstore.ts), so a location names one record for ever and replaying
 * the whole log is idempotent: the log, with the packs, is the truth; the
 * index file is only a cache of it.
 *
 * Entry layout (little-endian, ENTRY_BYTES): u32 magic 'CPT1', u32 pack id,
 * u32 offset low, u32 offset high, u32 crc32 of the 16 bytes before it.
 */
import { open, rename } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { fsyncDir, openOrCreate, writeAllAt } from './file-io.ts'
import { StoreFailedError } from './errors.ts'

export const TOMBSTONES_FILE = 'tombstones'
const TOMBSTONE_MAGIC = 0x31545043 // 'CPT1'
export const TOMBSTONE_ENTRY_BYTES = 20
const TWO_32 = 2 ** 32

export interface Location { pack: number, offset: number }

export function locationKey (pack: number, offset: number): string {
  return `${pack}:${offset}`
}

function encode (locations: readonly Location[]): Buffer {
  const buf = Buffer.allocUnsafe(locations.length * TOMBSTONE_ENTRY_BYTES)
  locations.forEach((l, i) => {
    const at = i * TOMBSTONE_ENTRY_BYTES
    buf.writeUInt32LE(TOMBSTONE_MAGIC, at)
    buf.writeUInt32LE(l.pack, at + 4)
    buf.writeUInt32LE(l.offset % TWO_32, at + 8)
    buf.writeUInt32LE(Math.floor(l.offset / TWO_32), at + 12)
    buf.writeUInt32LE(crc32(buf.subarray(at, at + 16)), at + 16)
  })
  return buf
}

export class TombstoneLog {
  private readonly dir: string
  private handle: FileHandle
  /** durable length of the log */
  size: number
  /** every location the log names */
  readonly dead: Map<string, Location>

  private constructor (dir: string, handle: FileHandle, size: number, dead: Map<string, Location>) {
    this.dir = dir
    this.handle = handle
    this.size = size
    this.dead = dead
  }

  /**
   * Reads the whole log. An entry that is short or fails its checksum ends
   * it: it can only be the tail of an append that a crash cut (the delete was
   * never acknowledged), and it is truncated away so the next append does not
   * land behind garbage.
   */
  static async open (dir: string): Promise<{ log: TombstoneLog, truncatedBytes: number }> {
    const path = join(dir, TOMBSTONES_FILE)
    const { handle } = await openOrCreate(path)
    try {
      const bytes = await handle.readFile()
      const dead = new Map<string, Location>()
      let at = 0
      for (; at + TOMBSTONE_ENTRY_BYTES <= bytes.byteLength; at += TOMBSTONE_ENTRY_BYTES) {
        if (bytes.readUInt32LE(at) !== TOMBSTONE_MAGIC) break
        if (crc32(bytes.subarray(at, at + 16)) !== bytes.readUInt32LE(at + 16)) break
        const pack = bytes.readUInt32LE(at + 4)
        const offset = bytes.readUInt32LE(at + 8) + bytes.readUInt32LE(at + 12) * TWO_32
        dead.set(locationKey(pack, offset), { pack, offset })
      }
      const truncatedBytes = bytes.byteLength - at
      if (truncatedBytes > 0) {
        await handle.truncate(at)
        await handle.datasync()
      }
      return { log: new TombstoneLog(dir, handle, at, dead), truncatedBytes }
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  has (pack: number, offset: number): boolean {
    return this.dead.has(locationKey(pack, offset))
  }

  /** the highest pack id any entry names (ids below it must never be given to a new pack) */
  maxPackId (): number {
    let max = 0
    for (const l of this.dead.values()) if (l.pack > max) max = l.pack
    return max
  }

  /**
   * Appends, and fsyncs unless `sync` is false. Callers hold the store's write
   * lock, so appends never interleave. On failure the partial entries are cut
   * off again and the error is thrown; if even that fails, a
   * StoreFailedError: the log's tail is unknown and the store must stop
   * writing until it is reopened.
   *
   * `sync: false` is for plain deletes: once written, an entry survives the
   * process being killed (it is in the page cache); only a power cut before
   * the next fsync can lose it, and a lost tombstone only brings back a block
   * nobody wanted, to be collected again. Entries that decide what a
   * compaction may do are always synced.
   */
  async append (locations: readonly Location[], sync = true): Promise<void> {
    if (locations.length === 0) return
    const buf = encode(locations)
    const at = this.size
    try {
      await writeAllAt(this.handle, [buf], at)
      if (sync) await this.handle.datasync()
    } catch (err) {
      try {
        await this.handle.truncate(at)
        await this.handle.datasync()
      } catch (cut) {
        throw new StoreFailedError(`tombstone log: a failed append could not be cut off (${String(cut)})`, { cause: err })
      }
      throw err
    }
    this.size += buf.byteLength
    // an fsync covers every entry written before it
    this.unsynced = !sync
    for (const l of locations) this.dead.set(locationKey(l.pack, l.offset), l)
  }

  /** whether entries were appended without an fsync since the last one */
  unsynced = false

  /** fsyncs entries appended with `sync: false` (under the store's write lock) */
  async sync (): Promise<void> {
    if (!this.unsynced) return
    this.unsynced = false
    try {
      await this.handle.datasync()
    } catch (err) {
      this.unsynced = true
      throw err
    }
  }

  /**
   * Rewrites the log without the entries of packs that no longer exist
   * (compaction removed them): atomically, through a temp file and a rename,
   * so a crash leaves either the old log or the new one, both correct.
   * Called only after those packs are unlinked and the unlink is durable:
   * otherwise a crash could leave a pack whose dead records nothing names.
   */
  async prune (livePacks: ReadonlySet<number>): Promise<void> {
    const keep = [...this.dead.values()].filter(l => livePacks.has(l.pack))
    if (keep.length === this.dead.size) return
    const path = join(this.dir, TOMBSTONES_FILE)
    const tmp = `${path}.tmp`
    const fresh = await open(tmp, 'w+')
    try {
      const buf = encode(keep)
      await writeAllAt(fresh, [buf], 0)
      await fresh.datasync()
      await rename(tmp, path)
      await fsyncDir(this.dir)
    } catch (err) {
      await fresh.close()
      throw err
    }
    const old = this.handle
    this.handle = fresh
    this.unsynced = false
    this.size = keep.length * TOMBSTONE_ENTRY_BYTES
    this.dead.clear()
    for (const l of keep) this.dead.set(locationKey(l.pack, l.offset), l)
    await old.close().catch(() => {})
  }

  async close (): Promise<void> {
    await this.handle.close().catch(() => {})
  }
}
