/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): where the samples went, by
 * category (garbage collection, idle, crypto, hashing, copies, file system,
 * streams, ...) and by function, self time only. Used for the profiles in
 * README (what bounds fetch and import).
 *
 *   node test/bench/profile-summary.ts [--top N] [--from MS --to MS] FILE.cpuprofile...
 *
 * Several files are summed (e.g. the receiving daemon over several fetches).
 * --from/--to keep only samples in that window (ms since the profile's start).
 */
import { readFileSync } from 'node:fs'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** first match wins: a category names what the time was spent on, from the function and its file */
const CATEGORIES: Array<[string, RegExp]> = [
  ['garbage collection', /^\(garbage collector\)/],
  ['idle', /^\(idle\)/],
  ['program (native, unattributed)', /^\(program\)/],
  ['the profiler itself', /node:inspector/],
  ['noise (encrypt/decrypt)', /noise|chacha|poly1305|cipher|Cipheriv|Decipheriv|createSecretKey|KeyObject/i],
  ['sha256', /sha256|sha2|createHash|digest|Hash\b|HashJob|hash\.ts/i],
  ['buffer copies / lists', /uint8arraylist|subarray|concat|Buffer\.from|copy|TypedArray|set\b|slice/i],
  ['yamux / muxing', /yamux|mplex|muxer/i],
  ['file system', /node:fs|fs\/promises|pwrite|pread|fsync|writev|FSReqCallback|FileHandle/i],
  ['streams / events', /stream|EventTarget|dispatchEvent|it-|pushable|queue/i],
  ['unixfs / ipld', /unixfs|ipld|dag-pb|protons|multiformats|cid/i]
]

function categorise (frame: CallFrame): string {
  const name = `${frame.functionName} ${frame.url}`
  for (const [cat, re] of CATEGORIES) if (re.test(frame.functionName) || re.test(name)) return cat
  return 'other JavaScript'
}

export interface ProfileSummary { totalMs: number, categories: Array<{ name: string, ms: number, share: number }>, functions: Array<{ name: string, ms: number, share: number }> }

/**
 * `window`: ms since each profile's start; `spans`: absolute CLOCK_MONOTONIC
 * microseconds (V8 stamps a profile on that clock, and so does
 * process.hrtime in any process of the same machine), e.g. the fetches a
 * bench timed from another process.
 */
export function summarise (profiles: CpuProfile[], window: { from?: number, to?: number, spans?: Array<{ from: number, to: number }> } = {}): ProfileSummary {
  const byCat = new Map<string, number>()
  const byFn = new Map<string, number>()
  let total = 0
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map(n => [n.id, n]))
    let t = 0
    for (let i = 0; i < p.samples.length; i++) {
      const dt = (p.timeDeltas[i] ?? 0) / 1000
      t += dt
      if (window.from != null && t < window.from) continue
      if (window.to != null && t > window.to) continue
      if (window.spans != null) {
        const at = p.startTime + t * 1000
        if (!window.spans.some(s => at >= s.from && at <= s.to)) continue
      }
      const node = nodes.get(p.samples[i] as number)
      if (node == null) continue
      const cat = categorise(node.callFrame)
      byCat.set(cat, (byCat.get(cat) ?? 0) + dt)
      const file = node.callFrame.url.split('/').slice(-2).join('/')
      const fn = `${node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName} ${file}:${node.callFrame.lineNumber + 1}`
      byFn.set(fn, (byFn.get(fn) ?? 0) + dt)
      total += dt
    }
  }
  const list = (m: Map<string, number>): Array<{ name: string, ms: number, share: number }> =>
    [...m].map(([name, ms]) => ({ name, ms, share: total > 0 ? ms / total : 0 })).sort((a, b) => b.ms - a.ms)
  return { totalMs: total, categories: list(byCat), functions: list(byFn) }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const flag = (name: string): number | undefined => { const i = args.indexOf(name); if (i < 0) return undefined; const v = Number(args[i + 1]); args.splice(i, 2); return v }
  const top = flag('--top') ?? 15
  const from = flag('--from')
  const to = flag('--to')
  const json = args.includes('--json')
  const files = args.filter(a => a !== '--json')
  if (files.length === 0) { console.error('usage: profile-summary.ts [--top N] [--from MS --to MS] [--json] FILE.cpuprofile...'); process.exit(2) }
  const s = summarise(files.map(f => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile), { ...(from != null ? { from } : {}), ...(to != null ? { to } : {}) })
  if (json) { console.log(JSON.stringify(s, null, 2)); process.exit(0) }
  console.log(`${s.totalMs.toFixed(0)} ms sampled`)
  for (const c of s.categories) console.log(`${(c.share * 100).toFixed(1).padStart(5)} %  ${c.ms.toFixed(0).padStart(6)} ms  ${c.name}`)
  console.log('\ntop functions (self time):')
  for (const f of s.functions.slice(0, top)) console.log(`${(f.share * 100).toFixed(1).padStart(5)} %  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`)
}
