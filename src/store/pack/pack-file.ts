/**
 * One pack file on disk (`<dir>/packs/NNNNNNNN.pack`) with its open handle
 * and the counters the store keeps for it, so that stats() and the choice of
 * packs to compact never walk a directory or the index.
 */
import { open, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

export const PACKS_DIR = 'packs'
const PACK_SUFFIX = '.pack'
/** a pack being written by compaction: not a pack until renamed, deleted on open */
export const TEMP_PACK_SUFFIX = '.pack.tmp'
const ID_DIGITS = 8

export function packFileName (id: number): string {
  return `${String(id).padStart(ID_DIGITS, '0')}${PACK_SUFFIX}`
}

export function tempPackFileName (id: number): string {
  return `${String(id).padStart(ID_DIGITS, '0')}${TEMP_PACK_SUFFIX}`
}

/** The id of a pack file name, or undefined for any other name. */
export function parsePackFileName (name: string): number | undefined {
  const m = /^(\d{1,15})\.pack$/.exec(name)
  return m == null ? undefined : Number(m[1])
}

export function parseTempPackFileName (name: string): number | undefined {
  const m = /^(\d{1,15})\.pack\.tmp$/.exec(name)
  return m == null ? undefined : Number(m[1])
}

export class PackFile {
  readonly id: number
  readonly path: string
  readonly handle: FileHandle
  /** bytes in the file that are durable (every record below is fsynced) */
  size: number
  /** bytes of records (header + body) the index points at; size - liveBytes is reclaimable */
  liveBytes = 0
  private readers = 0
  private retired = false
  private closed: Promise<void> | undefined

  constructor (id: number, path: string, handle: FileHandle, size: number) {
    this.id = id
    this.path = path
    this.handle = handle
    this.size = size
  }

  static async openExisting (dir: string, id: number): Promise<PackFile> {
    const path = join(dir, PACKS_DIR, packFileName(id))
    // r+: the tail may have to be truncated after a crash, and the last pack is appended to
    const handle = await open(path, 'r+')
    try {
      const { size } = await handle.stat()
      return new PackFile(id, path, handle, size)
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  get deadBytes (): number {
    return this.size - this.liveBytes
  }

  /**
   * Reads `length` bytes at `position`. The handle stays open while any read
   * is in flight, even after compaction retired the pack: a read that looked
   * up its location before the switch finishes on the old file.
   */
  async read (position: number, length: number): Promise<Buffer> {
    this.readers++
    try {
      const buf = Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const { bytesRead } = await this.handle.read(buf, done, length - done, position + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return done === length ? buf : buf.subarray(0, done)
    } finally {
      this.readers--
      if (this.retired && this.readers === 0) void this.closeHandle()
    }
  }

  /**
   * Removes the file (compaction moved its live records elsewhere). The
   * handle is closed once the last in-flight read is done; POSIX keeps an
   * unlinked file readable through an open handle meanwhile.
   */
  async retire (): Promise<void> {
    this.retired = true
    await unlink(this.path)
    if (this.readers === 0) await this.closeHandle()
  }

  async close (): Promise<void> {
    this.retired = true
    if (this.readers === 0) await this.closeHandle()
  }

  private async closeHandle (): Promise<void> {
    this.closed ??= this.handle.close().catch(() => {})
    await this.closed
  }
}
