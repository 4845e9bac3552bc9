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
  /** bytes of directory blocks (plain directories and HAMT shards) read, counted per visit */
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
 * Each directory block read counts at least this many bytes: a read costs
 * more than its bytes, and HAMT shards of a few bytes, linked to each other
 * 256 times per level, would otherwise buy millions of reads (and no entry)
 * within the byte cap. Honest trees pay little for it: even 100,000 empty
 * directories count 25 MiB.
 */
export const DIRECTORY_BLOCK_MIN_BYTES = 256
