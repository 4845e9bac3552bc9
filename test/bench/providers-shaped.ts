/**
 * `npm run bench -- --providers-shaped [--quick] [--rate MBIT]` (issue 14):
 * a tree fetched from 3 providers against the same size from 1, where each
 * provider's uplink is what a volunteer's home gives it, not loopback.
 *
 * Why a row of its own: on loopback every daemon shares this machine's two
 * cores and nothing limits a sender, so the fetcher's own CPU bounds a fetch
 * and more senders cannot help it (the fetch-providers row, with its
 * profile). Sharing a DAG among providers is for a fetch a sender's link
 * bounds: each holder here sits in a network namespace of its own, its
 * egress shaped by a token bucket (`tc tbf`, RATE Mbit/s), and the fetcher
 * in another; all on one public segment (test/helpers/netns.ts).
 *
 * Alternated in one run, one fetching daemon: tree X_i is held by the first
 * holder only, Y_i by all three (each adds the same files: one CID); the
 * first pair warms up. Figures are timed inside the fetcher's namespace (no
 * CLI start): POST /v1/content/get, the DAG transfer then the export.
 */
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createNetwork, netnsSupport } from '../helpers/netns.ts'
import type { TestNetwork } from '../helpers/netns.ts'
import { apiIn, startIn } from '../helpers/netns-concur.ts'
import type { NsDaemon } from '../helpers/netns-concur.ts'
import { tempDir, waitFor } from '../helpers/processes.ts'
import { callIn } from './netem.ts'
import { MiB, median, spread } from './stats.ts'
import type { Row } from './stats.ts'

const HOLDERS = ['h1', 'h2', 'h3'] as const

export interface ShapedProvidersReport { skipped?: string, row?: Row, rateMbit: number }

/** the host's one interface that is not loopback */
function uplinkOf (ns: string): string {
  const r = spawnSync('ip', ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' })
  const names = r.stdout.split('\n').map(l => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((n): n is string => n != null && n !== 'lo')
  if (names.length !== 1) throw new Error(`namespace ${ns}: expected one interface besides lo, found ${names.join(', ')}`)
  return names[0] as string
}

function shape (ns: string, rateMbit: number): void {
  const dev = uplinkOf(ns)
  // burst: a few MTU-sized packets' worth at this rate; latency: queue bound (tbf drops past it, TCP backs off)
  const r = spawnSync('tc', ['-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '128kb', 'latency', '100ms'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`tc tbf on ${ns}/${dev}: ${r.stderr.trim()}`)
}

export async function shapedProvidersBench (opts: { quick: boolean, rateMbit: number, log: (s: string) => void }): Promise<ShapedProvidersReport> {
  const support = netnsSupport()
  if (!support.ok) return { skipped: support.reason, rateMbit: opts.rateMbit }
  const files = opts.quick ? 4 : 8
  const fileSize = (opts.quick ? 4 : 32) * MiB
  const runs = opts.quick ? 1 : 2
  let net: TestNetwork | undefined
  try {
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' } },
      hosts: { h1: { segment: 'public' }, h2: { segment: 'public' }, h3: { segment: 'public' }, f: { segment: 'public' } }
    })
    const n = net
    for (const h of HOLDERS) shape(n.nsOf(h), opts.rateMbit)
    opts.log(`providers-shaped: 3 holders, each uplink ${opts.rateMbit} Mbit/s (tc tbf); starting the daemons`)
    const first = await startIn(n, 'h1', ['daemon'])
    const boot = `/ip4/${n.addressOf('h1')}/tcp/4001/p2p/${first.peerId}`
    const holders: NsDaemon[] = [first]
    for (const h of HOLDERS.slice(1)) holders.push(await startIn(n, h, ['daemon', '--bootstrap', boot]))
    const fetcher = await startIn(n, 'f', ['daemon', '--bootstrap', boot])
    await waitFor(async () => {
      const p = await apiIn<{ peers: Array<{ peerId: string }> }>(n, 'f', fetcher.home, '/v1/peers')
      return holders.every(h => p.peers.some(x => x.peerId === h.peerId)) || undefined
    }, 'the fetcher connected to the three holders', 60_000)
    const scratch = await tempDir('concur-shaped-')
    let made = 0
    const make = async (): Promise<string> => {
      const dir = join(scratch, `tree-${made++}`)
      await mkdir(dir)
      for (let i = 0; i < files; i++) await writeFile(join(dir, `f${i}.bin`), randomBytes(fileSize))
      return dir
    }
    const size = files * fileSize
    // the slowest fetch: one provider at RATE, with room for a loaded machine
    const bound = Math.max(60_000, Math.ceil(size / (opts.rateMbit * 1e6 / 8) * 1000) * 4)
    const get = async (cid: string): Promise<number> => (await callIn(n, 'f', fetcher.home, 'POST', '/v1/content/get', { cid, out: join(scratch, `got-${made++}`), timeoutMs: bound, maxBytes: 4 * size }, bound)).ms
    const one: number[] = []
    const three: number[] = []
    for (let i = 0; i < runs + 1; i++) {
      const x = await make()
      const y = await make()
      const cx = (await callIn<{ cid: string }>(n, 'h1', first.home, 'POST', '/v1/content/add', { path: x }, 120_000)).json.cid
      let cy = ''
      for (const h of holders) cy = (await callIn<{ cid: string }>(n, h.host, h.home, 'POST', '/v1/content/add', { path: y }, 120_000)).json.cid
      const tx = await get(cx)
      const ty = await get(cy)
      opts.log(`providers-shaped: pair ${i + 1}/${runs + 1}: 1 provider ${(size / MiB / (tx / 1000)).toFixed(1)} MB/s, 3 providers ${(size / MiB / (ty / 1000)).toFixed(1)} MB/s${i === 0 ? ' (warm-up)' : ''}`)
      if (i > 0) { one.push(tx); three.push(ty) }
    }
    const mbs = (ms: number): string => (size / MiB / (ms / 1000)).toFixed(1)
    const ratio = median(one) / median(three)
    return {
      rateMbit: opts.rateMbit,
      row: {
        id: 'fetch-providers-shaped',
        measure: `fetch a ${size / MiB} MiB tree (${files} files) held by 3 daemons, each uplink ${opts.rateMbit} Mbit/s (tc tbf, a namespace each)`,
        baseline: 'a tree of the same size held by 1 of them, fetched by the same daemon in the same run (alternated)',
        figure: `3 providers ${mbs(median(three))} MB/s; 1 provider ${mbs(median(one))} MB/s (the uplink: ${(opts.rateMbit / 8 * 1e6 / MiB).toFixed(1)} MB/s)`,
        ratio,
        target: '> 1',
        pass: ratio > 1,
        detail: { oneMs: spread(one), threeMs: spread(three), files, fileSize, rateMbit: opts.rateMbit }
      }
    }
  } finally {
    await net?.teardown()
  }
}
