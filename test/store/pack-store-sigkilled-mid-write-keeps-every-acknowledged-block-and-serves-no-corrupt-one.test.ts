/**
 * Crash safety of the pack store's writes: a child process puts batches of
 * blocks (and deletes some) in a loop and is SIGKILLed at a random point,
 * round after round on the same store. After each kill the store reopens
 * without an error; every block whose putMany resolved is there and hashes
 * to its CID; every acknowledged delete stuck; nothing it serves is wrong.
 *
 * A SIGKILL leaves the page cache whole, so two rounds also leave what a
 * power cut can: a record cut in the middle, and a whole-length record whose
 * body never reached the disk. Defence: the torn tail is truncated on open
 * (recover.ts); without that, the next appends land behind the garbage and a
 * scan (the last check drops the index file, so every pack is rescanned)
 * stops there, losing acknowledged blocks.
 */
import { randomBytes } from 'node:crypto'
import { appendFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encodeHeader, CHECK_CRC32 } from '../../src/store/pack/record.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { checkAgainstLedger, Ledger, runChild } from './pack-store-crash-harness.ts'
import { blockOf, packFiles } from './pack-store-helpers.ts'

const ROUNDS = 6
const MAX_PACK = 8 * 1024 * 1024

/** what a power cut can leave at the end of the pack being written */
async function tearTail (dir: string, how: 'cut-record' | 'unwritten-body'): Promise<number> {
  const packs = await packFiles(dir)
  const newest = packs[packs.length - 1] as string
  const b = blockOf(randomBytes(300_000))
  const header = encodeHeader(b.cid, CHECK_CRC32, b.bytes)
  const tail = how === 'cut-record'
    ? Buffer.concat([header, b.bytes.subarray(0, 100_000)])
    : Buffer.concat([header, Buffer.alloc(b.bytes.byteLength)])
  await appendFile(newest, tail)
  return (await stat(newest)).size
}

describe('a pack store whose writer is SIGKILLed mid-write', () => {
  afterAll(async () => { await cleanupAll() })

  for (const checksum of ['crc32', 'multihash'] as const) {
    it(`keeps every acknowledged block and serves no corrupt one (${checksum} checks)`, async () => {
      const dir = join(await tempDir('concur-pack-crash-'), 'blocks')
      const init = { maxPackBytes: MAX_PACK, checksum }
      const ledger = new Ledger()
      let torn = 0
      for (let round = 0; round < ROUNDS; round++) {
        // kill after a random number of acknowledgements: the next batch is then being written
        const killAt = 1 + Math.floor(Math.random() * 40)
        let acks = 0
        const run = await runChild(['put', dir, String(MAX_PACK), checksum], ledger, (line) => line.startsWith('ack ') && ++acks >= killAt)
        expect(run.stderr).toBe('')
        expect(run.signal).toBe('SIGKILL')
        expect(run.lines[0]).toMatch(/^open /)
        if (round === 2) { await tearTail(dir, 'cut-record'); torn++ }
        if (round === 4) { await tearTail(dir, 'unwritten-body'); torn++ }
        const { recovery } = await checkAgainstLedger(dir, init, ledger)
        // the torn tails are found and cut (the child's own kills may add more)
        if (round === 2 || round === 4) expect(recovery.truncated.length).toBeGreaterThanOrEqual(1)
      }
      expect(torn).toBe(2)
      expect(ledger.acked.size).toBeGreaterThan(ROUNDS)
      // the packs and the tombstone log are the truth; the index file only a cache
      await rm(join(dir, 'index'))
      const { recovery, blocks } = await checkAgainstLedger(dir, init, ledger)
      expect(recovery.indexUnusable).toBe('no index file')
      // and holds nothing but those, the deletes in flight, and the batch in flight at each kill
      expect(blocks).toBeGreaterThanOrEqual([...ledger.acked].filter(c => !ledger.deleted.has(c) && !ledger.deleting.has(c)).length)
    })
  }
})
