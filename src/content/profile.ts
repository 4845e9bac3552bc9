/**
 * The pinned importer profile. Every worker must derive the same CID from the
 * same bytes, and the same CID as other IPFS implementations (kubo `ipfs add
 * --profile=unixfs-v1-2025`), so every option that influences the DAG shape is
 * fixed here and passed explicitly.
 *
 * Why explicitly: ipfs-unixfs-importer only fills in profile values with `??`
 * for some options, and others (chunker, layout) fall back to generic
 * defaults; `{ profile }` alone has been seen overridden by defaults
 * (the kubo vectors in test/content/cid-profile-matches-published-vectors
 * caught it). Passing every value removes the dependence on library
 * defaults that may move between versions.
 *
 * IPIP-499 `unixfs-v1-2025`: CIDv1, sha2-256, raw leaves, 1 MiB fixed chunks,
 * balanced DAG with at most 1024 links per node, HAMT sharding once the
 * serialized directory block would exceed 256 KiB (measured as the real
 * block size), 256-way shards. No mtime, and no mode but one: build
 * outputs get fresh timestamps and umask-dependent modes on every machine,
 * storing them would make honest builds diverge.
 *
 * The one mode kept (issue 18): whether a regular file is executable. A
 * `./configure` that cannot run, or a fetched `usr/bin/hello` that cannot,
 * is a different artifact, and two outputs that differ only in it must not
 * share a CID. So a file with any execute bit is imported with UnixFS mode
 * EXECUTABLE_MODE (0755), normalised: only "executable or not" is
 * identity, never the umask. A file without one carries no mode, so its
 * CID is exactly kubo's unixfs-v1-2025 CID (the published vectors have no
 * executables and still match); an executable one is what kubo gives with
 * `--preserve-mode` for a 0755 file (a single-block file then becomes a
 * dag-pb node, since a raw block has nowhere to hold the mode).
 */
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { ImporterOptions } from 'ipfs-unixfs-importer'
import { rawLeafImporter } from './leaf-importer.ts'

export const CID_PROFILE = 'unixfs-v1-2025' as const
export const CHUNK_SIZE = 1 << 20
export const MAX_CHILDREN_PER_NODE = 1024
export const SHARD_SPLIT_THRESHOLD_BYTES = 262_144
export const SHARD_FANOUT_BITS = 8
/** the UnixFS mode of every executable regular file, whatever its bits on disk (see above) */
export const EXECUTABLE_MODE = 0o755

/** the mode to import a regular file with: EXECUTABLE_MODE if any execute bit is set, else none */
export function importedMode (statMode: number): number | undefined {
  return (statMode & 0o111) !== 0 ? EXECUTABLE_MODE : undefined
}

/** whether an exported file (its UnixFS mode, if any) is to be executable */
export function isExecutableMode (mode: number | undefined): boolean {
  return mode != null && (mode & 0o111) !== 0
}

/** Options that change throughput only, never the resulting CIDs. */
export interface ImportTuning {
  fileImportConcurrency?: number
  blockWriteConcurrency?: number
}

/**
 * A fresh options object for every import: the importer writes into the
 * options object it is given (it assigns profile defaults onto it), so a
 * shared or frozen constant must never be handed to it.
 */
export function importerOptions (tuning: ImportTuning = {}, extra: Pick<ImporterOptions, 'wrapWithDirectory' | 'onProgress'> = {}): ImporterOptions {
  return {
    profile: CID_PROFILE,
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: CHUNK_SIZE }),
    layout: balanced({ maxChildrenPerNode: MAX_CHILDREN_PER_NODE }),
    shardSplitStrategy: 'block-bytes',
    shardSplitThresholdBytes: SHARD_SPLIT_THRESHOLD_BYTES,
    shardFanoutBits: SHARD_FANOUT_BITS,
    // kubo writes Links before Data in dag-pb nodes; dag-pb's canonical
    // encoding does too. Part of the byte layout, hence of the CID.
    fieldOrder: 'links-first',
    wrapWithDirectory: extra.wrapWithDirectory ?? false,
    fileImportConcurrency: tuning.fileImportConcurrency ?? 16,
    blockWriteConcurrency: tuning.blockWriteConcurrency ?? 16,
    // leaves hashed off the main thread; same bytes, same CIDs (leaf-importer.ts)
    bufferImporter: rawLeafImporter({ onProgress: extra.onProgress }),
    onProgress: extra.onProgress
  }
}
