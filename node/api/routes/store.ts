/**
 * The node's block store over HTTP (`concur store`, `concur gc`): what it
 * holds, its quota, whether it holds one block (locally: never fetched), and
 * a collection on demand.
 */
import type { Helia } from '@helia/interface'
import type { PackBlockstore } from '../../../src/store/pack/index.ts'
import { collectGarbage } from '../../../src/store/block-quota.ts'
import type { CollectResult } from '../../../src/store/block-quota.ts'
import type { Router } from '../server.ts'
import { parseCid } from './body.ts'

export interface StoreView {
  blocks: number
  liveBytes: number
  diskBytes: number
  /** bytes of deleted blocks still in packs (returned by the next compaction) */
  reclaimableBytes: number
  packs: number
  /** the quota (`--store-max`, config `limits.blockstoreQuotaBytes`): over it, unpinned blocks are collected */
  quotaBytes: number
  /** roots pinned (what a collection keeps) */
  pins: number
}

export function storeRoutes (router: Router, deps: { helia: Pick<Helia, 'gc' | 'pins'>, blockstore: Pick<PackBlockstore, 'stats' | 'compact' | 'has'>, quotaBytes: number }): void {
  const { helia, blockstore, quotaBytes } = deps

  router.on('GET', '/v1/store', async (): Promise<StoreView> => {
    let pins = 0
    for await (const _ of helia.pins.ls()) pins++
    return { ...blockstore.stats(), quotaBytes, pins }
  })

  router.on('POST', '/v1/store/gc', async (): Promise<CollectResult> => await collectGarbage({ helia, blockstore }, { signal: AbortSignal.timeout(30 * 60_000) }))

  // this node's own store only: a test (or a person) asking "is it here?" must not make it fetch
  router.on('GET', '/v1/store/blocks/:cid', async (req) => ({ has: await blockstore.has(parseCid(req.params.cid ?? '')) }))
}
