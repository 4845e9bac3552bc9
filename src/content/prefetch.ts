/**
 * Fetch a DAG's blocks into the local store, many at once, before an export
 * reads them one at a time.
 *
 * Why: the exporter (export-directory.ts, read-file.ts) reads blocks in
 * order, one at a time, which is what keeps its caps exact; over the
 * network each read is a bitswap round trip. A 549 MB Debian build root is
 * 12,627 files, ~15,000 blocks: read one by one from one provider on
 * loopback it took ~4 minutes (~2 MB/s), the time going on round trips, not
 * bytes. Asked for `concurrency` at a time, the wants travel together.
 *
 * Bounded, since the DAG is anyone's: at most `maxBlocks` blocks and
 * `maxBytes` bytes are fetched, each distinct block once; past either, the
 * prefetch stops quietly and the export that follows meets the caps itself
 * (and fails, naming them). Any other failure (a block that is not
 * dag-pb/raw, a node that does not decode) also stops it quietly: the export
 * reports it properly. Only an abort is thrown.
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import type { AbortOptions } from '@libp2p/interface'
import { getBlock } from './stores.ts'
import type { ReadableBlockstore } from './stores.ts'
import { BLOCK_VISIT_MIN_BYTES } from './limits.ts'
import type { FetchLimits } from './limits.ts'

export const DEFAULT_PREFETCH_CONCURRENCY = 32

export interface PrefetchOptions extends AbortOptions {
  concurrency?: number
  maxBlocks: number
  maxBytes: number
  onBlock?: (bytes: number) => void
}

export interface PrefetchResult {
  blocks: number
  bytes: number
  /** why it stopped before the whole DAG, if it did (not an error: the export decides) */
  stopped?: string
}

const IDENTITY = 0x00

/**
 * The most blocks one prefetch tracks. The prefetch keeps every CID it has
 * seen and queued (about 100 bytes each), while the export it precedes walks
 * in bounded memory: a DAG a stranger made to name a million blocks within
 * the fetch caps must not cost a worker ~100 MB here. An honest tree is far
 * below it (the 549 MB, 12,627-file build root: ~15,000 blocks); past it the
 * export fetches the rest one block at a time, as it did before prefetching.
 */
export const PREFETCH_MAX_BLOCKS = 131_072

/**
 * What a prefetch may fetch for an export under `limits`: no more blocks
 * than the export could visit (each visit is charged at least
 * BLOCK_VISIT_MIN_BYTES against its caps, one per entry besides) nor than
 * PREFETCH_MAX_BLOCKS, and no more bytes than its caps add up to.
 */
export function prefetchBounds (limits: FetchLimits): { maxBlocks: number, maxBytes: number } {
  const visits = limits.maxEntries + Math.ceil((limits.maxBytes + limits.maxDirectoryBytes) / BLOCK_VISIT_MIN_BYTES)
  return { maxBlocks: Math.min(PREFETCH_MAX_BLOCKS, visits), maxBytes: limits.maxBytes + limits.maxDirectoryBytes }
}

export async function prefetchDag (blockstore: ReadableBlockstore, root: CID, options: PrefetchOptions): Promise<PrefetchResult> {
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_PREFETCH_CONCURRENCY)
  const seen = new Set<string>([root.toString()])
  const queue: CID[] = [root]
  let blocks = 0
  let bytes = 0
  let stopped: string | undefined
  let active = 0

  const one = async (cid: CID): Promise<void> => {
    if (cid.multihash.code === IDENTITY) return
    if (cid.code !== dagPb.code && cid.code !== raw.code) { stopped = `a block of codec ${cid.code}`; return }
    const block = await getBlock(blockstore, cid, options)
    blocks++
    bytes += block.byteLength
    options.onBlock?.(block.byteLength)
    if (blocks >= options.maxBlocks) { stopped = `${options.maxBlocks} blocks`; return }
    if (bytes >= options.maxBytes) { stopped = `${options.maxBytes} bytes`; return }
    if (cid.code !== dagPb.code) return
    for (const link of dagPb.decode(block).Links) {
      const child = CID.asCID(link.Hash) ?? CID.decode(link.Hash.bytes)
      const key = child.toString()
      if (seen.has(key)) continue
      // the queue is bounded by what may still be fetched
      if (seen.size >= options.maxBlocks) { stopped = `${options.maxBlocks} blocks`; return }
      seen.add(key)
      queue.push(child)
    }
  }

  await new Promise<void>((resolve, reject) => {
    let failed = false
    const pump = (): void => {
      if (failed) return
      while (stopped == null && active < concurrency && queue.length > 0) {
        const cid = queue.shift() as CID
        active++
        one(cid).then(() => {
          active--
          pump()
        }, (err: unknown) => {
          active--
          if (options.signal?.aborted === true) {
            if (!failed) { failed = true; reject(err) }
            return
          }
          // not ours to report: the export reads it again and says what is wrong
          stopped ??= (err as Error).message
          pump()
        })
      }
      if (active === 0 && (queue.length === 0 || stopped != null)) resolve()
    }
    pump()
  })
  return { blocks, bytes, ...(stopped != null ? { stopped } : {}) }
}
