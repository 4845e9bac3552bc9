/**
 * A CPU profile of the import row: RUNS imports of a SIZE MiB file into a
 * fresh pack store (addFile, as `concur add` does), profiled in-process with
 * the inspector around the imports only, then summarised
 * (profile-summary.ts). With `--null-store`, blocks go nowhere: the
 * importer's own ceiling. What README's "what bounds the import" comes from.
 *
 *   npm run profile:import -- [--size MiB] [--runs N] [--null-store] [--out FILE]
 */
import { Session } from 'node:inspector/promises'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import type { CID } from 'multiformats/cid'
import { addFile, openStores } from '../../src/content/index.ts'
import type { WritableBlockstore } from '../../src/content/index.ts'
import { summarise } from './profile-summary.ts'
import { MiB, median, sha256File, writeImportFile } from './stats.ts'

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(name); return i < 0 ? dflt : process.argv[i + 1] as string }
const size = Number(arg('--size', '256')) * MiB
const runs = Number(arg('--runs', '3'))
const nullStore = process.argv.includes('--null-store')
const dir = await mkdtemp(join(tmpdir(), 'concur-profile-import-'))
try {
  const file = join(dir, 'big.bin')
  // the row's input and baseline (stats.ts), so the ratios compare
  await writeImportFile(file, size)
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  const ratios: number[] = []
  const profiles = []
  for (let r = 0; r < runs; r++) {
    // the baseline of the same run
    let t = performance.now()
    await sha256File(file)
    const sha = performance.now() - t
    const home = await mkdtemp(join(dir, 'home-'))
    const stores = await openStores(home)
    const sink: WritableBlockstore = nullStore ? { put: async (cid: CID) => cid } : stores.blockstore
    await session.post('Profiler.start')
    t = performance.now()
    await addFile(sink, file)
    const ms = performance.now() - t
    const { profile } = await session.post('Profiler.stop')
    profiles.push(profile)
    await stores.close()
    await rm(home, { recursive: true, force: true })
    ratios.push(sha / ms)
    console.log(`import ${r + 1}: ${(size / MiB / (ms / 1000)).toFixed(0)} MB/s, ${(sha / ms).toFixed(2)} of sha256 (${(size / MiB / (sha / 1000)).toFixed(0)} MB/s)`)
  }
  session.disconnect()
  const out = arg('--out', '')
  if (out !== '') await writeFile(out, JSON.stringify(profiles[profiles.length - 1]))
  const s = summarise(profiles as Parameters<typeof summarise>[0])
  console.log(`\nmedian ${median(ratios).toFixed(2)} of sha256${nullStore ? ' (null store)' : ''}; ${s.totalMs.toFixed(0)} ms sampled inside the imports:`)
  for (const c of s.categories.slice(0, 10)) console.log(`${(c.share * 100).toFixed(1).padStart(5)} %  ${c.name}`)
  for (const f of s.functions.slice(0, 12)) console.log(`   ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
