/**
 * Progress of a fetch (`concur get`, a worker's inputs): the blocks and bytes
 * read so far, and what the DAG declares it weighs, reported at most every
 * `intervalMs` and once at the end. Rates and ETAs are the renderer's.
 */
import * as dagPb from '@ipld/dag-pb'
import type { AbortOptions } from '@libp2p/interface'
import type { ReadableStorage } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'

export interface FetchProgress {
  /** distinct blocks read so far, whether this node held them or a peer sent them */
  blocks: number
  /** their bytes */
  bytes: number
  /**
   * What the DAG says it weighs: its root block plus the cumulative sizes
   * (Tsize) its links state (what kubo's `ipfs get` shows its bar against).
   * Whoever made the DAG wrote these numbers: they are for display only, never
   * for a limit or a decision (the export's caps count what is read).
   */
  declaredBytes?: number
  /** since the tracker was made */
  elapsedMs: number
  /** the last report of this fetch */
  done: boolean
}

export interface FetchProgressOptions {
  /** the least time between two reports (default 250 ms): a fast fetch of many small blocks must not flood the renderer */
  intervalMs?: number
  now?: () => number
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 250

/**
 * The most block keys remembered to count each block once (the prefetch reads
 * a block, then the export reads it again). Past it, reads are counted without
 * the check: progress may run ahead a little, memory stays bounded whatever
 * DAG a peer sends (about 100 bytes a key).
 */
const MAX_REMEMBERED = 262_144

export interface FetchProgressTracker {
  /** the store to read through: what is read through it is counted */
  store: ReadableStorage
  /** count a block that arrived another way than through `store` (the DAG transfer writes to the store itself) */
  count: (cid: CID, block: Uint8Array) => void
  /** report the end (done: true) */
  finish: () => void
}

/** Counts what is read through `store` while fetching the DAG at `root`, reporting to `onProgress`. */
export function trackFetchProgress (store: ReadableStorage, root: CID, onProgress: (p: FetchProgress) => void, options: FetchProgressOptions = {}): FetchProgressTracker {
  const now = options.now ?? Date.now
  const intervalMs = options.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS
  const started = now()
  const seen = new Set<string>()
  let blocks = 0
  let bytes = 0
  let declaredBytes: number | undefined
  let lastReport = -Infinity
  let finished = false

  const report = (done: boolean): void => {
    lastReport = now()
    onProgress({ blocks, bytes, ...(declaredBytes != null ? { declaredBytes } : {}), elapsedMs: lastReport - started, done })
  }

  const counted = (cid: CID, length: number, rootBlock: Uint8Array | undefined): void => {
    // the root's bytes may come after the root was counted (the DAG transfer counts what it stores, the export then reads it)
    if (rootBlock != null) declaredBytes = declaredSize(cid, rootBlock)
    const key = String.fromCharCode(...cid.multihash.bytes.subarray(0, 40))
    if (seen.has(key)) return
    if (seen.size < MAX_REMEMBERED) seen.add(key)
    blocks++
    bytes += length
    if (!finished && now() - lastReport >= intervalMs) report(false)
  }

  return {
    store: {
      async * get (cid: CID, getOptions?: AbortOptions) {
        // only the root's bytes are kept (its links state the declared size)
        const isRoot = declaredBytes == null && cid.equals(root)
        const chunks: Uint8Array[] = []
        let length = 0
        for await (const chunk of store.get(cid, getOptions)) {
          if (isRoot) chunks.push(chunk)
          length += chunk.byteLength
          yield chunk
        }
        counted(cid, length, isRoot ? concat(chunks, length) : undefined)
      }
    },
    count (cid, block) {
      // the root's links state the DAG's size: known while the transfer runs, for an ETA
      counted(cid, block.byteLength, declaredBytes == null && cid.equals(root) ? block : undefined)
    },
    finish () {
      if (finished) return
      finished = true
      report(true)
    }
  }
}

function concat (chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.byteLength }
  return out
}

/** the root block's length plus its links' Tsize; undefined for a block that is not dag-pb or states no sizes */
function declaredSize (cid: CID, block: Uint8Array): number | undefined {
  if (cid.code !== dagPb.code) return block.byteLength
  try {
    let total = block.byteLength
    for (const link of dagPb.decode(block).Links) {
      if (link.Tsize == null) return undefined
      total += link.Tsize
    }
    return Number.isSafeInteger(total) ? total : undefined
  } catch {
    // not for this module to judge: the export reports a malformed block
    return undefined
  }
}
