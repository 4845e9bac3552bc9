/** `concur store` and `concur gc`: what the node's block store holds, and a collection on demand. */
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import { output, progress } from '../cli.ts'
import type { Command } from '../cli.ts'
import type { StoreView } from '../api/routes/store.ts'
import type { CollectResult } from '../../src/store/block-quota.ts'
import { formatBytes } from '../render/fetch-progress.ts'

export const storeCommand: Command = {
  name: 'store',
  summary: 'show what the block store holds: blocks, bytes on disk, reclaimable bytes, quota, pins',
  usage: 'concur store [--home DIR] [--json]',
  options: {},
  async run ({ global }) {
    const api = await connectApi(resolveHome(global.home))
    const v = await api.get<StoreView>('/v1/store')
    output(global, v, () => [
      `blocks       ${v.blocks} (${formatBytes(v.liveBytes)})`,
      `on disk      ${formatBytes(v.diskBytes)} in ${v.packs} pack(s)`,
      `reclaimable  ${formatBytes(v.reclaimableBytes)} (deleted blocks not yet compacted)`,
      `quota        ${formatBytes(v.quotaBytes)} (over it, unpinned blocks are collected; --store-max)`,
      `pinned roots ${v.pins} (never collected)`
    ].join('\n'))
    return 0
  }
}

export const gcCommand: Command = {
  name: 'gc',
  summary: 'delete every unpinned block now and return their disk space',
  usage: 'concur gc [--home DIR] [--json]',
  options: {},
  notes: 'Pinned content (what this node added, its requests\' artifacts and bundles) stays. Blocks fetched for builds\nand for `concur get` are fetched again when next needed. The daemon also does this by itself over its quota.',
  async run ({ global }) {
    const api = await connectApi(resolveHome(global.home))
    progress(global, 'collecting unpinned blocks …')
    const r = await api.post<CollectResult>('/v1/store/gc')
    output(global, r, () => `${r.blocksBefore - r.blocksAfter} blocks deleted; on disk ${formatBytes(r.before)} → ${formatBytes(r.after)} (${formatBytes(r.before - r.after)} returned) in ${(r.ms / 1000).toFixed(1)} s`)
    return 0
  }
}
