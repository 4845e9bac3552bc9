/**
 * A quota on the node's blockstore: blocks fetched for builds (sources,
 * rootfs images) and for others are not pinned, and without a bound they
 * pile up for ever. When the store is over the quota, unpinned
 * blocks are garbage-collected (helia's gc: what the node's own requests,
 * builds and `concur add` pinned stays) and the packs they leave dead are
 * rewritten, which returns the disk. Not while a build runs: its inputs
 * are unpinned blocks it may still be reading.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, Startable } from '@libp2p/interface'
import type { Helia } from '@helia/interface'
import { logger } from '@libp2p/logger'
import type { PackBlockstore } from './pack/index.ts'

const log = logger('concur:block-quota')

export interface BlockQuotaInit {
  quotaBytes: number
  /** how often the size is checked (O(1): the pack store's counters) */
  checkEveryMs?: number
  /** whether collecting now would pull blocks from under a running build */
  busy?: () => boolean
}

export interface BlockQuotaComponents {
  helia: Pick<Helia, 'gc'>
  blockstore: Pick<PackBlockstore, 'stats' | 'compact'>
}

export interface QuotaCheck { before: number, after: number, collected: boolean, deferred: boolean }

export interface BlockQuotaEvents {
  'quota:collected': CustomEvent<QuotaCheck>
}

export interface CollectResult {
  /** bytes of the store on disk before and after */
  before: number
  after: number
  /** blocks before and after */
  blocksBefore: number
  blocksAfter: number
  ms: number
}

/** bytes of the files under `dir` (what the store's stats().diskBytes must agree with) */
export async function directoryBytes (dir: string): Promise<number> {
  let total = 0
  let entries
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  for (const e of entries) {
    if (!e.isFile()) continue
    try {
      total += (await stat(join(e.parentPath, e.name))).size
    } catch { /* removed meanwhile */ }
  }
  return total
}

/**
 * Deletes every unpinned block (helia's gc: what the node's own requests,
 * builds and `concur add` pinned stays) and rewrites the packs they leave
 * dead, so the disk space is returned (`concur gc`, and the quota).
 */
export async function collectGarbage (components: BlockQuotaComponents, options: AbortOptions = {}): Promise<CollectResult> {
  const started = performance.now()
  const s0 = components.blockstore.stats()
  await components.helia.gc(options)
  await components.blockstore.compact({ threshold: 0, ...(options.signal != null ? { signal: options.signal } : {}) })
  const s1 = components.blockstore.stats()
  return { before: s0.diskBytes, after: s1.diskBytes, blocksBefore: s0.blocks, blocksAfter: s1.blocks, ms: performance.now() - started }
}

export class BlockQuota extends TypedEventEmitter<BlockQuotaEvents> implements Startable {
  private readonly init: BlockQuotaInit
  private readonly components: BlockQuotaComponents
  private timer: ReturnType<typeof setInterval> | undefined
  private running: Promise<QuotaCheck> | undefined

  constructor (init: BlockQuotaInit, components: BlockQuotaComponents) {
    super()
    this.init = init
    this.components = components
  }

  start (): void {
    this.timer = setInterval(() => { void this.check().catch((err: Error) => { log.error('quota check failed: %e', err) }) }, this.init.checkEveryMs ?? 10 * 60_000)
    this.timer.unref?.()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** measure, and collect unpinned blocks if over the quota (one check at a time) */
  async check (options?: AbortOptions): Promise<QuotaCheck> {
    this.running ??= this.run(options).finally(() => { this.running = undefined })
    return await this.running
  }

  private async run (options?: AbortOptions): Promise<QuotaCheck> {
    const before = this.components.blockstore.stats().diskBytes
    if (before <= this.init.quotaBytes) return { before, after: before, collected: false, deferred: false }
    if (this.init.busy?.() === true) {
      log('blockstore at %d bytes, over its quota of %d: collection deferred while a build runs', before, this.init.quotaBytes)
      return { before, after: before, collected: false, deferred: true }
    }
    const { after } = await collectGarbage(this.components, options)
    const out = { before, after, collected: true, deferred: false }
    if (after > this.init.quotaBytes) log.error('blockstore still at %d bytes after collecting unpinned blocks: pinned data is over the quota of %d', after, this.init.quotaBytes)
    else log('blockstore collected: %d -> %d bytes (quota %d)', before, after, this.init.quotaBytes)
    this.safeDispatchEvent('quota:collected', { detail: out })
    return out
  }
}

export function blockQuota (init: BlockQuotaInit) {
  return (components: BlockQuotaComponents): BlockQuota => new BlockQuota(init, components)
}
