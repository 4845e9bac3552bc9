import type { AbortOptions } from '@libp2p/interface'
import type { Pins } from '@helia/interface'
import type { CID } from 'multiformats/cid'

/**
 * Pin a DAG (walking it, so every block is fetched and kept) unless it is
 * pinned already: the same artifact is often built, fetched or added twice.
 */
export async function pin (pins: Pick<Pins, 'add' | 'isPinned'>, cid: CID, options: AbortOptions = {}): Promise<void> {
  if (await pins.isPinned(cid, options)) return
  try {
    for await (const _ of pins.add(cid, options)) { /* the walk fetches and pins each block */ }
  } catch (err) {
    if ((err as Error).name === 'AlreadyPinnedError') return
    throw err
  }
}
