/**
 * Crash safety of compaction: a store whose packs are half dead is compacted
 * by a child process that deletes blocks while it compacts (one delete per
 * progress event, so they land between its steps), and the child is
 * SIGKILLed after a random progress event. After each kill the store reopens
 * without an error; no live block is lost; no acknowledged delete is undone
 * (a copy made before the delete must not come back); everything served
 * hashes to its CID; and a compaction run afterwards completes and returns
 * every dead byte. The last check of each round drops the index file, so the
 * packs and the tombstone log alone must tell the same story.
 *
 * A kill between the new pack's rename and the old packs' removal leaves
 * every live block twice; that window is narrow, so it is also built on
 * purpose (the old pack and the old tombstone log put back, the index file
 * gone: exactly what such a crash leaves). Defence: open kills one copy with
 * a tombstone; without it, deleting the block later leaves the other copy to
 * come back on the next full scan.
 */
import { randomBytes } from 'node:crypto'
import { copyFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { checkAgainstLedger, Ledger, runChild } from './pack-store-crash-harness.ts'
import { blockOf, packFiles } from './pack-store-helpers.ts'

const ROUNDS = 5
const MAX_PACK = 4 * 1024 * 1024
const BLOCKS = 40

describe('a pack store whose compaction is SIGKILLed', () => {
  afterAll(async () => { await cleanupAll() })

  it('loses no live block, brings back no deleted one, and compacts fully afterwards', async () => {
    let killedMidway = 0
    for (let round = 0; round < ROUNDS; round++) {
      const dir = join(await tempDir('concur-pack-compact-crash-'), 'blocks')
      const init = { maxPackBytes: MAX_PACK }
      const ledger = new Ledger()
      // half-dead packs: every other block deleted
      const store = new PackBlockstore(dir, init)
      await store.open()
      const blocks = Array.from({ length: BLOCKS }, () => blockOf(randomBytes(64 * 1024 + Math.floor(Math.random() * 900 * 1024))))
      for await (const cid of store.putMany(blocks)) ledger.read(`ack ${cid.toString()}`)
      for (const b of blocks.filter((_, i) => i % 2 === 0)) {
        await store.delete(b.cid)
        ledger.read(`deleted ${b.cid.toString()}`)
      }
      const packs = store.stats().packs
      await store.close()

      // kill after a random progress event (some rounds the compaction finishes first)
      const killAt = 1 + Math.floor(Math.random() * 2 * packs)
      let events = 0
      const run = await runChild(['compact', dir, String(MAX_PACK)], ledger, (line) => line.startsWith('progress ') && ++events >= killAt)
      expect(run.stderr).toBe('')
      if (run.signal === 'SIGKILL' && !run.lines.includes('done')) killedMidway++

      await checkAgainstLedger(dir, init, ledger)
      // deletes after the crash stick too, whatever copies the crash left
      const reopened = new PackBlockstore(dir, init)
      await reopened.open()
      const live = blocks.filter((_, i) => i % 2 === 1 && !ledger.deleting.has(blocks[i]?.cid.toString() ?? ''))
      for (const b of live.slice(0, 4)) {
        await reopened.delete(b.cid)
        ledger.read(`deleted ${b.cid.toString()}`)
      }
      await reopened.close()
      await rm(join(dir, 'index'))
      await checkAgainstLedger(dir, init, ledger)
      // what is left to compact compacts: every dead byte is returned
      const after = new PackBlockstore(dir, init)
      await after.open()
      await after.compact({ threshold: 0 })
      expect(after.stats().reclaimableBytes).toBe(0)
      await after.close()
      await checkAgainstLedger(dir, init, ledger)
      await rm(join(dir, 'index'))
      await checkAgainstLedger(dir, init, ledger)
    }
    // the kills did land inside compactions
    expect(killedMidway).toBeGreaterThan(0)
  })

  it('a compaction cut between writing its new pack and removing the old one leaves two copies; a later delete still sticks', async () => {
    const dir = join(await tempDir('concur-pack-compact-dup-'), 'blocks')
    const init = { maxPackBytes: 1 << 20 }
    const store = new PackBlockstore(dir, init)
    await store.open()
    const blocks = Array.from({ length: 6 }, () => blockOf(randomBytes(300_000)))
    for await (const _ of store.putMany(blocks)) { /* drain */ }
    await store.delete((blocks[0] as typeof blocks[number]).cid)
    await store.close()
    // what a crash after step 3 of compact.ts leaves: the old packs and the old tombstone log, beside the new pack
    const saved = await packFiles(dir)
    for (const f of saved) await copyFile(f, `${f}.saved`)
    await copyFile(join(dir, 'tombstones'), join(dir, 'tombstones.saved'))
    const compacting = new PackBlockstore(dir, init)
    await compacting.open()
    const r = await compacting.compact({ threshold: 0 })
    expect(r.packsRemoved.length).toBeGreaterThan(0)
    await compacting.close()
    for (const f of saved) await copyFile(`${f}.saved`, f)
    for (const f of saved) await rm(`${f}.saved`)
    await copyFile(join(dir, 'tombstones.saved'), join(dir, 'tombstones'))
    await rm(join(dir, 'tombstones.saved'))
    await rm(join(dir, 'index'))

    const ledger = new Ledger()
    for (const b of blocks) ledger.read(`ack ${b.cid.toString()}`)
    ledger.read(`deleted ${(blocks[0] as typeof blocks[number]).cid.toString()}`)
    const { recovery } = await checkAgainstLedger(dir, init, ledger)
    expect(recovery.duplicates).toBeGreaterThan(0)
    // delete a block that now has two copies on disk; then a full rescan
    const again = new PackBlockstore(dir, init)
    await again.open()
    await again.delete((blocks[1] as typeof blocks[number]).cid)
    ledger.read(`deleted ${(blocks[1] as typeof blocks[number]).cid.toString()}`)
    await again.close()
    await rm(join(dir, 'index'))
    await checkAgainstLedger(dir, init, ledger)
  })
})
