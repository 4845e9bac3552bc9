/**
 * The caps of every fetch of a DAG from the network (a worker's source and
 * rootfs, `concur get`); enforced by export-directory.ts. A module of its own,
 * without the exporter, so that config code can name the defaults cheaply.
 */

/** What one fetch (export) of a DAG may cost. */
export interface FetchLimits {
  /** file bytes written */
  maxBytes: number
  /** entries created: files, directories and symlinks, a subtree linked N times counting N times */
  maxEntries: number
  /**
   * bytes of the DAG's structure read, counted per visit: directory and HAMT
   * blocks, file nodes, at least BLOCK_VISIT_MIN_BYTES a block (file leaves
   * count that floor only). The name predates file nodes counting too.
   */
  maxDirectoryBytes: number
}

/**
 * Defaults of every fetch (a worker's source and rootfs, `concur get`).
 * - 1 GiB of file bytes: the worker default it has always had.
 * - 100,000 entries: a real Debian rootfs has 10-30k, the Linux kernel's
 *   source tree ~93k; creating 100k entries takes seconds (a bomb costs the
 *   worker that, not its whole fetch timeout). Bigger trees: raise it.
 * - 64 MiB of directory blocks: a dag-pb link costs ~40 bytes plus its name,
 *   so 100,000 entries need ~5-15 MiB, plus the per-block minimum below for
 *   small directories; reading 64 MiB from the local store takes about a second.
 */
export const DEFAULT_FETCH_LIMITS: Readonly<FetchLimits> = Object.freeze({
  maxBytes: 1024 * 1024 * 1024,
  maxEntries: 100_000,
  maxDirectoryBytes: 64 * 1024 * 1024
})

/**
 * Each block of a DAG's structure read (a directory, a HAMT shard, a file
 * node; and every file leaf, whose bytes are file bytes) counts at least this
 * many bytes against maxDirectoryBytes: a read costs more than its bytes, and
 * HAMT shards of a few bytes, linked to each other 256 times per level, or a
 * file node linking one tiny leaf thousands of times, would otherwise buy
 * millions of reads within the byte cap. Honest trees pay little for it: even
 * 100,000 empty directories count 25 MiB, a 1 GiB file's 1,024 leaves 256 KiB.
 */
export const BLOCK_VISIT_MIN_BYTES = 256
