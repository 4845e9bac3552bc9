/**
 * A child process for the pack store's crash tests: it writes (or compacts)
 * until it is SIGKILLed, and says on stdout, one line at a time, what the
 * store has acknowledged. Lines are written after the store resolved (stdout
 * is a pipe: synchronous on Linux), so every `ack`/`deleted` line the parent
 * reads is a promise the store made before it died.
 *
 *   put <dir> <maxPackBytes> <checksum>   put batches of blocks, delete some
 *   compact <dir> <maxPackBytes>          compact every dead byte, deleting blocks meanwhile
 *
 * Lines: `open <recovery json>`, `ack <cid>`, `deleting <cid>`, `deleted <cid>`,
 * `progress <event json>`, `done`.
 * Bounded: it stops by itself after MAX_BATCHES batches.
 */
import { randomBytes } from 'node:crypto'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { blockOf } from './pack-store-helpers.ts'
import type { ChecksumPolicy } from '../../src/store/pack/index.ts'
import type { CID } from 'multiformats/cid'

const MAX_BATCHES = 2000
const [mode, dir, maxPack, checksum] = process.argv.slice(2)
if (dir == null || (mode !== 'put' && mode !== 'compact')) throw new Error('usage: put|compact <dir> <maxPackBytes> [checksum]')
const say = (line: string): void => { process.stdout.write(`${line}\n`) }

const store = new PackBlockstore(dir, { maxPackBytes: Number(maxPack), checksum: (checksum ?? 'crc32') as ChecksumPolicy })
await store.open()
say(`open ${JSON.stringify(store.recovery)}`)

async function deleteOne (cid: CID): Promise<void> {
  say(`deleting ${cid.toString()}`)
  await store.delete(cid)
  say(`deleted ${cid.toString()}`)
}

if (mode === 'put') {
  const acked: CID[] = []
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    // 1 to 12 blocks, mostly large (up to 1 MiB), some small: records of every size cross the kill
    const blocks = Array.from({ length: 1 + Math.floor(Math.random() * 12) }, () => blockOf(randomBytes(Math.random() < 0.2 ? Math.floor(Math.random() * 2000) : 64 * 1024 + Math.floor(Math.random() * 960 * 1024))))
    for await (const cid of store.putMany(blocks)) {
      say(`ack ${cid.toString()}`)
      acked.push(cid)
    }
    // now and then a delete of an acknowledged block, alone or alongside the next batch
    if (batch % 3 === 2 && acked.length > 4) {
      const victim = acked.splice(Math.floor(Math.random() * acked.length), 1)[0] as CID
      if (batch % 2 === 0) await deleteOne(victim)
      else void deleteOne(victim)
    }
  }
} else {
  // every live block is a candidate for a delete racing the compaction: one
  // delete starts at each progress event, so deletes land between its steps
  const live: CID[] = []
  for await (const { cid } of store.getAll()) live.push(cid)
  let deletes: Promise<void> = Promise.resolve()
  await store.compact({
    threshold: 0,
    onProgress: (event) => {
      say(`progress ${JSON.stringify(event)}`)
      const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]
      if (victim != null) deletes = deletes.then(async () => { await deleteOne(victim) })
    }
  })
  await deletes
}
await store.close()
say('done')
