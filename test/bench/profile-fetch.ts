/**
 * CPU profiles of both daemons of the fetch row: a holder and a fetcher,
 * each run with `--cpu-prof`, RUNS fetches of SIZE MiB of random bytes
 * (`concur get` into a directory, as the bench row does), then both stopped
 * so the profiles are written; then each side is summarised
 * (profile-summary.ts). What README's "what bounds the fetch" comes from.
 *
 *   node test/bench/profile-fetch.ts [--size MiB] [--runs N] [--out DIR]
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, startConcur, tempDir } from '../helpers/processes.ts'
import { summarise } from './profile-summary.ts'
import { MiB, timeMs } from './stats.ts'

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(name); return i < 0 ? dflt : process.argv[i + 1] as string }
const size = Number(arg('--size', '64')) * MiB
const runs = Number(arg('--runs', '4'))
const out = arg('--out', await tempDir())
const profEnv = (side: string): Record<string, string> => ({ NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${join(out, side)}` })
await mkdir(out, { recursive: true })
const a = startConcur(['daemon'], { home: await tempDir(), env: profEnv('holder') })
const ra = await a.ready as { api: string, multiaddrs: string[] }
const b = startConcur(['daemon', '--bootstrap', ra.multiaddrs[0] as string], { home: await tempDir(), env: profEnv('fetcher') })
const rb = await b.ready as { api: string }
/** the fetches, in CLOCK_MONOTONIC microseconds (the profiles' clock) */
const spans: Array<{ from: number, to: number }> = []
const now = (): number => Number(process.hrtime.bigint() / 1000n)
for (let i = 0; i < runs; i++) {
  const src = await tempDir()
  await writeFile(join(src, 'artifact.bin'), randomBytes(size))
  const added = await api<{ cid: string }>(ra.api, 'POST', '/v1/content/add', { path: src })
  const dest = join(await tempDir(), 'out')
  const from = now()
  const ms = await timeMs(async () => { await api(rb.api, 'POST', '/v1/content/get', { cid: added.cid, out: dest, timeoutMs: 120_000 }) })
  spans.push({ from, to: now() })
  console.log(`fetch ${i + 1}: ${(size / MiB / (ms / 1000)).toFixed(0)} MB/s`)
}
await b.kill()
await a.kill()
for (const side of ['holder', 'fetcher']) {
  const files = (await readdir(join(out, side))).filter(f => f.endsWith('.cpuprofile'))
  const profiles = await Promise.all(files.map(async f => JSON.parse(await readFile(join(out, side, f), 'utf8'))))
  // samples inside the fetches only
  const s = summarise(profiles, { spans })
  console.log(`\n${side} (${files.length} profile(s), ${s.totalMs.toFixed(0)} ms sampled, in ${join(out, side)}):`)
  for (const c of s.categories.slice(0, 10)) console.log(`${(c.share * 100).toFixed(1).padStart(5)} %  ${c.name}`)
  for (const f of s.functions.slice(0, 12)) console.log(`   ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`)
}
await cleanupAll()
