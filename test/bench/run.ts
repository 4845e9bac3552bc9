/**
 * `npm run bench [-- --quick]`: every row of DESIGN §10, each as a ratio
 * against a baseline measured in the same run on the same machine (timings
 * here are noisy; ratios hold better than absolutes). Prints a table and
 * writes bench-results/latest.json (git-ignored). Bounded: it ends by itself.
 * Other modes: --scale, --netem, --corpus, --env-transfer, --simulate
 * (simulate/report.ts: 1,000 and 10,000 simulated nodes in virtual time).
 */
import { spawn, execFileSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { homedir, tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addFile, openStores } from '../../src/content/index.ts'
import { runSandboxed, probeSandbox } from '../../src/sandbox/index.ts'
import { createAttestation, decodeAttestation, generateSigningKey, buildIdOf, useEd25519Verify } from '../../protocol/index.ts'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { MemoryDatastore } from 'datastore-core'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { collectGarbage, directoryBytes } from '../../src/store/block-quota.ts'
import { createHeliaNode } from '../../src/net/helia-node.ts'
import { pin } from '../../src/store/pin.ts'
import { startNetwork } from '../helpers/network.ts'
import { exampleDefinition } from '../helpers/fixtures.ts'
import { installFastVerify } from '../../src/net/fast-verify.ts'
import { gossipBench } from './gossip.ts'
import { floodBench } from './flood.ts'
import { importLevers } from './import-levers.ts'
import { scaleBench } from './scale.ts'
import { MiB, median, quantile, repeat, sha256File, spread, timeMs, writeImportFile } from './stats.ts'
import type { Row } from './stats.ts'

const quick = process.argv.includes('--quick')
// measure what a node runs: the host installs OpenSSL ed25519 (node/bin/concur.ts)
installFastVerify()
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const STREAM_PEER = fileURLToPath(new URL('./stream-peer.ts', import.meta.url))
const STREAM_CLIENT = fileURLToPath(new URL('./stream-client.ts', import.meta.url))
const STACK_IDLE = fileURLToPath(new URL('./stack-idle.ts', import.meta.url))

export type { Row } from './stats.ts'

const rows: Row[] = []
const started = Date.now()
const log = (s: string): void => { process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${s}\n`) }

async function importRow (): Promise<void> {
  const size = (quick ? 32 : 256) * MiB
  const dir = await tempDir('concur-bench-import-')
  const file = join(dir, 'big.bin')
  await writeImportFile(file, size)
  const runs = quick ? 2 : 4
  const base = await repeat(runs, 1, async () => await timeMs(async () => { await sha256File(file) }))
  const imp = await repeat(runs, 1, async () => {
    const home = await mkdtemp(join(dir, 'home-'))
    const stores = await openStores(home)
    const t = await timeMs(async () => { await addFile(stores.blockstore, file) })
    await stores.close()
    await rm(home, { recursive: true, force: true })
    return t
  })
  const ratio = median(base) / median(imp)
  // levers (experimental stores under test/bench/, same importer and CIDs): see import-levers.ts
  const levers = await importLevers({ file, dir, runs: quick ? 1 : 2, sha256Ms: median(base) })
  rows.push({
    id: 'import',
    measure: `import ${size / MiB} MiB file into the persistent blockstore`,
    baseline: 'sha256 of the same file, 1 MiB reads',
    figure: `${(size / MiB / (median(imp) / 1000)).toFixed(0)} MB/s (sha256 ${(size / MiB / (median(base) / 1000)).toFixed(0)} MB/s)`,
    ratio,
    target: '>= 0.8',
    pass: ratio >= 0.8,
    detail: { importMs: spread(imp), sha256Ms: spread(base), levers: Object.fromEntries(levers.map(l => [l.name, { ratio: l.ratio, ms: l.ms }])) }
  })
}

async function fetchRow (): Promise<void> {
  const size = (quick ? 8 : 64) * MiB
  const a = startConcur(['daemon'], { home: await tempDir() })
  const ra = await a.ready as { api: string, multiaddrs: string[] }
  const b = startConcur(['daemon', '--bootstrap', ra.multiaddrs[0] as string], { home: await tempDir() })
  const rb = await b.ready as { api: string }
  const runs = quick ? 2 : 4
  const fetches: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const src = await tempDir()
    // random: a multiplicative pattern (j * 2654435761) loses its low bits past 2^53 and left most
    // 1 MiB blocks identical, so a fetch moved a few distinct blocks (figures before 2026-12-01)
    await writeFile(join(src, 'artifact.bin'), randomBytes(size))
    const added = await api<{ cid: string }>(ra.api, 'POST', '/v1/content/add', { path: src })
    const out = join(await tempDir(), 'out')
    const t = await timeMs(async () => { await api(rb.api, 'POST', '/v1/content/get', { cid: added.cid, out, timeoutMs: 120_000 }) })
    if (i > 0) fetches.push(t)
  }
  await b.kill()
  await a.kill()

  // baselines: the same number of bytes over a bare libp2p stream and raw TCP, between two processes
  const peer = spawn(process.execPath, [STREAM_PEER, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let streams: number[]
  let raw: number[]
  try {
    const info = await new Promise<{ multiaddr: string, tcpPort: number }>((resolve) => {
      peer.stdout.once('data', (d: Buffer) => { resolve(JSON.parse(d.toString()) as { multiaddr: string, tcpPort: number }) })
    })
    // the client runs in a process of its own too, like the daemons do
    const out = execFileSync(process.execPath, [STREAM_CLIENT, info.multiaddr, String(size), String(runs + 1)], { timeout: 300_000 }).toString()
    streams = (JSON.parse(out) as number[]).slice(1)
    raw = await repeat(runs, 1, async () => await timeMs(async () => {
      await new Promise<void>((resolve, reject) => {
        let got = 0
        const sock = connect(info.tcpPort, '127.0.0.1')
        sock.on('data', (c: Buffer) => { got += c.length })
        sock.on('end', () => { if (got === size) resolve(); else reject(new Error('short read')) })
        sock.on('error', reject)
      })
    }))
  } finally {
    peer.kill('SIGKILL')
  }
  const mbs = (ms: number): string => (size / MiB / (ms / 1000)).toFixed(0)
  const ratio = median(streams) / median(fetches)
  rows.push({
    id: 'fetch',
    measure: `fetch a ${size / MiB} MiB artifact between two daemon processes (concur get: the DAG transfer, exported to a directory)`,
    baseline: 'the same bytes over a bare libp2p stream (noise+yamux)',
    figure: `${mbs(median(fetches))} MB/s; stream ${mbs(median(streams))} MB/s; raw TCP ${mbs(median(raw))} MB/s`,
    ratio,
    target: '>= 0.8',
    pass: ratio >= 0.8,
    detail: { fetchMs: spread(fetches), libp2pStreamMs: spread(streams), rawTcpMs: spread(raw), fetchOverRawTcp: median(raw) / median(fetches) }
  })
}

/**
 * A tree from three providers against the same size from one, alternated in
 * one run on one fetching daemon: tree X_i is held by the first holder only,
 * Y_i by all three (each adds the same files: one CID).
 */
async function providersRow (): Promise<void> {
  const files = quick ? 4 : 8
  const fileSize = (quick ? 8 : 32) * MiB
  const runs = quick ? 1 : 3
  const holders: Array<{ api: string, multiaddrs: string[], peerId: string }> = []
  const h0 = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], { home: await tempDir() })
  const r0 = await h0.ready as { api: string, multiaddrs: string[], peerId: string }
  holders.push(r0)
  for (let i = 0; i < 2; i++) {
    const h = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', r0.multiaddrs[0] as string], { home: await tempDir() })
    holders.push(await h.ready as { api: string, multiaddrs: string[], peerId: string })
  }
  const b = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', r0.multiaddrs[0] as string], { home: await tempDir() })
  const rb = await b.ready as { api: string }
  await waitFor(async () => {
    const p = await api<{ peers: Array<{ peerId: string }> }>(rb.api, 'GET', '/v1/peers')
    return holders.every(h => p.peers.some(x => x.peerId === h.peerId))
  }, 'the fetching daemon connected to the three holders')
  const make = async (): Promise<string> => {
    const src = await tempDir()
    for (let f = 0; f < files; f++) {
      await writeFile(join(src, `f${f}.bin`), randomBytes(fileSize))
    }
    return src
  }
  const one: number[] = []
  const three: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const x = await make()
    const y = await make()
    const cx = (await api<{ cid: string }>(holders[0]!.api, 'POST', '/v1/content/add', { path: x })).cid
    let cy = ''
    for (const h of holders) cy = (await api<{ cid: string }>(h.api, 'POST', '/v1/content/add', { path: y })).cid
    const tx = await timeMs(async () => { await api(rb.api, 'POST', '/v1/content/get', { cid: cx, out: join(await tempDir(), 'x'), timeoutMs: 600_000, maxBytes: 4 * files * fileSize }) })
    const ty = await timeMs(async () => { await api(rb.api, 'POST', '/v1/content/get', { cid: cy, out: join(await tempDir(), 'y'), timeoutMs: 600_000, maxBytes: 4 * files * fileSize }) })
    // the first pair warms up
    if (i > 0) { one.push(tx); three.push(ty) }
  }
  const size = files * fileSize
  const mbs = (ms: number): string => (size / MiB / (ms / 1000)).toFixed(0)
  const ratio = median(one) / median(three)
  rows.push({
    id: 'fetch-providers',
    measure: `fetch a ${size / MiB} MiB tree (${files} files) held by 3 daemons`,
    baseline: 'a tree of the same size held by 1 daemon, fetched by the same daemon in the same run (alternated)',
    figure: `3 providers ${mbs(median(three))} MB/s; 1 provider ${mbs(median(one))} MB/s`,
    ratio,
    target: '> 1',
    pass: ratio > 1,
    detail: { oneMs: spread(one), threeMs: spread(three), files, fileSize }
  })
}

/** helia's gc and the pack store's compaction over N MiB of unpinned 1 MiB blocks beside a pinned 16 MiB file */
async function gcRow (): Promise<void> {
  const unpinnedMiB = quick ? 128 : 1024
  const dir = await tempDir('concur-bench-gc-')
  const store = new PackBlockstore(join(dir, 'blockstore'))
  await store.open()
  const helia = await createHeliaNode({ blockstore: store, datastore: new MemoryDatastore(), libp2p: {} })
  const src = join(dir, 'pinned.bin')
  await writeFile(src, randomBytes(16 * MiB))
  const { cid: pinned } = await addFile(store, src)
  await pin(helia.pins, pinned)
  const base = Buffer.alloc(MiB, 1)
  let batch: Array<{ cid: CID, bytes: Uint8Array }> = []
  for (let i = 0; i < unpinnedMiB; i++) {
    const bytes = Buffer.from(base)
    bytes.writeUInt32LE(i, 0)
    batch.push({ cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes })
    if (batch.length === 64 || i === unpinnedMiB - 1) {
      for await (const _ of store.putMany(batch)) { /* drain */ }
      batch = []
    }
  }
  const before = await directoryBytes(join(dir, 'blockstore'))
  const started = performance.now()
  const r = await collectGarbage({ helia, blockstore: store })
  const ms = performance.now() - started
  const after = await directoryBytes(join(dir, 'blockstore'))
  await helia.stop()
  await store.close()
  const returned = (before - after) / (unpinnedMiB * MiB)
  rows.push({
    id: 'gc',
    measure: `concur gc: ${unpinnedMiB} MiB of unpinned blocks beside a pinned 16 MiB file`,
    baseline: 'the unpinned bytes (share of them returned to the disk)',
    figure: `${ms.toFixed(0)} ms (gc + compaction); disk ${(before / MiB).toFixed(0)} → ${(after / MiB).toFixed(0)} MiB`,
    ratio: returned,
    target: '>= 0.99',
    pass: returned >= 0.99,
    detail: { ms, before, after, blocksBefore: r.blocksBefore, blocksAfter: r.blocksAfter }
  })
}

async function submitRow (tier: Awaited<ReturnType<typeof probeSandbox>>['tier']): Promise<void> {
  const runs = quick ? 3 : 20
  const net = await startNetwork({ workers: [{}, {}, {}], threshold: 2 })
  const src = await tempDir()
  await writeFile(join(src, 'in.txt'), 'trivial\n')
  const command = ['sh', '-c', 'mkdir -p out && cp in.txt out/']
  // baseline: the same command run directly in the sandbox
  const direct = await repeat(runs, 1, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'concur-bench-direct-'))
    await import('node:fs/promises').then(async m => { await m.chmod(dir, 0o755); await m.writeFile(join(dir, 'in.txt'), 'trivial\n') })
    const t = await timeMs(async () => {
      await runSandboxed({ argv: command, buildDir: dir, outputDir: join(dir, 'result'), env: {}, environment: { kind: 'host' }, limits: { memoryBytes: 512 * MiB, cpus: 1, diskBytes: 256 * MiB, wallSeconds: 60, processes: 256 }, tier: tier ?? 'namespaces+cgroups' })
    })
    await rm(dir, { recursive: true, force: true })
    return t
  })
  // every run has its own SOURCE_DATE_EPOCH, hence its own buildId: reuse cannot short-circuit it
  let epoch = 1_500_000_000
  // the figure: `concur submit --wait` wall time, as a user sees it (includes the CLI's start)
  const cli: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now()
    const r = await runConcur(['submit', src, '--out', 'out', '--replicas', '3', '--timeout', '120', '--source-date-epoch', String(epoch++), '--wait', '--', ...command], { home: net.requester.home, timeoutMs: 150_000 })
    const t = performance.now() - t0
    if (r.code !== 0) throw new Error(`submit --wait exited ${r.code ?? 'signal'}: ${r.stderr.slice(-500)}`)
    if (i > 0) cli.push(t)
  }
  // the same through the local API (no CLI process start): what the network itself adds
  const viaApi: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now()
    const sub = await api<{ jobId: string }>(net.requester.api, 'POST', '/v1/jobs', {
      source: src, output: 'out', command, env: { SOURCE_DATE_EPOCH: String(epoch++) }, replicas: 3, ttlSeconds: 120
    })
    for (let polls = 0; polls < 12_000; polls++) {
      const v = await api<{ record: { status: string } }>(net.requester.api, 'GET', `/v1/requests/${sub.jobId}`)
      if (v.record.status === 'accepted') break
      if (v.record.status !== 'pending' && v.record.status !== 'provisional') throw new Error(`job ended ${v.record.status}`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    if (i > 0) viaApi.push(performance.now() - t0)
  }
  // lever: Node's on-disk compile cache (what `module.enableCompileCache()` at the top of
  // node/bin/concur.ts would turn on), measured through its environment variable
  const cacheDir = await tempDir('concur-bench-ncc-')
  const cached: number[] = []
  for (let i = 0; i < Math.ceil(runs / 2) + 1; i++) {
    const t0 = performance.now()
    const r = await runConcur(['submit', src, '--out', 'out', '--replicas', '3', '--timeout', '120', '--source-date-epoch', String(epoch++), '--wait', '--', ...command], { home: net.requester.home, timeoutMs: 150_000, env: { NODE_COMPILE_CACHE: cacheDir } })
    const t = performance.now() - t0
    if (r.code !== 0) throw new Error(`submit --wait exited ${r.code ?? 'signal'}: ${r.stderr.slice(-500)}`)
    if (i > 0) cached.push(t)
  }
  // what starting the CLI costs by itself (`concur id` against the same daemon)
  const cliStart = await repeat(quick ? 2 : 5, 1, async () => await timeMs(async () => { await runConcur(['id'], { home: net.requester.home }) }))
  await cleanupAll()
  const base = median(direct)
  const overhead = cli.map(t => t - base)
  const apiOverhead = viaApi.map(t => t - base)
  const p50 = quantile(overhead, 0.5)
  const p99 = quantile(overhead, 0.99)
  rows.push({
    id: 'submit',
    measure: 'submit → accepted, trivial build, 3 workers, k = 2, loopback (`concur submit --wait`)',
    baseline: `the same command directly in the sandbox (median ${base.toFixed(0)} ms)`,
    figure: `overhead p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (CLI start alone ${median(cliStart).toFixed(0)} ms; via the API p50 ${quantile(apiOverhead, 0.5).toFixed(0)} ms, p99 ${quantile(apiOverhead, 0.99).toFixed(0)} ms)`,
    ratio: median(cli) / base,
    target: 'overhead p50 <= 300 ms, p99 <= 1000 ms',
    pass: p50 <= 300 && p99 <= 1000,
    detail: { directMs: spread(direct), cliMs: spread(cli), leverCompileCache: { cliMs: spread(cached), overheadP50: quantile(cached.map(t => t - base), 0.5), overheadP99: quantile(cached.map(t => t - base), 0.99) }, apiMs: spread(viaApi), cliStartMs: spread(cliStart), overheadP50: p50, overheadP99: p99, apiOverheadP50: quantile(apiOverhead, 0.5), apiOverheadP99: quantile(apiOverhead, 0.99) }
  })
}

async function verifyRow (): Promise<void> {
  const key = generateSigningKey()
  const def = exampleDefinition()
  const att = createAttestation({
    buildId: buildIdOf(def),
    jobId: 'bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba',
    source: def.source,
    environment: def.environment,
    definition: def,
    worker: key.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    sandboxTier: 'namespaces+cgroups',
    parallelism: 1,
    startedAt: new Date(Date.now() - 1000).toISOString(),
    finishedAt: new Date().toISOString(),
    result: { status: 'success', artifact: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', exitCode: 0 },
    log: null
  }, key)
  const ms = quick ? 500 : 2000
  const rate = (fn: () => void): number => {
    let n = 0
    const end = performance.now() + ms
    while (performance.now() < end) { fn(); n++ }
    return n / (ms / 1000)
  }
  const now = Date.now()
  // with noble's verify for comparison, then as a node runs: OpenSSL (src/net/fast-verify.ts)
  useEd25519Verify(null)
  const noble = [rate(() => { decodeAttestation(att.bytes, { now }) })]
  installFastVerify()
  const ours = [rate(() => { decodeAttestation(att.bytes, { now }) }), rate(() => { decodeAttestation(att.bytes, { now }) })]
  const kp = generateKeyPairSync('ed25519')
  const msg = Buffer.from('x'.repeat(600))
  const sig = nodeSign(null, msg, kp.privateKey)
  const base = [rate(() => { nodeVerify(null, msg, kp.publicKey, sig) }), rate(() => { nodeVerify(null, msg, kp.publicKey, sig) })]
  const r = median(ours)
  rows.push({
    id: 'verify',
    measure: 'attestations decoded + verified per second, one core',
    baseline: `node:crypto ed25519 verify (${median(base).toFixed(0)}/s)`,
    figure: `${r.toFixed(0)}/s (full decode: size, schema, buildId, signature)`,
    ratio: r / median(base),
    target: '>= 1000/s; each message verified once per node',
    pass: r >= 1000,
    detail: { oursPerSecond: ours, withNobleVerifyPerSecond: noble, nodeCryptoPerSecond: base }
  })
}

async function rssOf (pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) / 1024
}

async function rssRow (): Promise<void> {
  const settle = quick ? 3000 : 8000
  const d = startConcur(['daemon'], { home: await tempDir() })
  await d.ready
  await new Promise(resolve => setTimeout(resolve, settle))
  const daemon = await rssOf(d.child.pid as number)
  await d.kill()
  // lever: a 1 MiB young-generation semi-space (V8 default is 16+ MiB on 64-bit)
  const small = startConcur(['daemon'], { home: await tempDir(), env: { NODE_OPTIONS: '--max-semi-space-size=1' } })
  await small.ready
  await new Promise(resolve => setTimeout(resolve, settle))
  const daemonSmallSemi = await rssOf(small.child.pid as number)
  await small.kill()
  const bare = spawn(process.execPath, [STACK_IDLE], { cwd: ROOT, stdio: 'ignore' })
  await new Promise(resolve => setTimeout(resolve, settle))
  const stack = await rssOf(bare.pid as number)
  bare.kill()
  rows.push({
    id: 'rss',
    measure: 'idle daemon memory (RSS)',
    baseline: `bare Node with the stack loaded (${stack.toFixed(0)} MB)`,
    figure: `${daemon.toFixed(0)} MB (lever --max-semi-space-size=1: ${daemonSmallSemi.toFixed(0)} MB)`,
    ratio: daemon / stack,
    target: '<= 150 MB',
    pass: daemon <= 150,
    detail: { daemonMB: daemon, bareStackMB: stack, leverSmallSemiSpaceMB: daemonSmallSemi }
  })
}

async function floodRow (): Promise<void> {
  const r = await floodBench({ batches: quick ? 2 : 6, perBatch: quick ? 400 : 1000, log })
  const per = (a: { messages: number }, b: { messages: number }): number => 1000 / Math.max(1, b.messages - a.messages)
  const steps = r.batches.map((b, i) => {
    const prev = i === 0 ? r.baseline : r.batches[i - 1]!
    return { rssMB: (b.rssMB - prev.rssMB) * per(prev, b), held: (b.held - prev.held) * per(prev, b), datastoreKB: (b.datastoreKB - prev.datastoreKB) * per(prev, b) }
  })
  const first = steps[0]!
  const last = steps[steps.length - 1]!
  const fmt = (x: { rssMB: number, held: number, datastoreKB: number }): string => `RSS ${x.rssMB >= 0 ? '+' : ''}${x.rssMB.toFixed(1)} MB, ${x.held >= 0 ? '+' : ''}${x.held.toFixed(0)} records, disk ${x.datastoreKB >= 0 ? '+' : ''}${x.datastoreKB.toFixed(0)} KB`
  rows.push({
    id: 'flood',
    measure: `growth per 1,000 hostile messages (fresh keys: jobs, attestations on a held build and on unknown ones, claims on invented jobs), ${r.batches.length} batches, limits lowered to 200 jobs`,
    baseline: `the same requester before the flood (${r.baseline.rssMB.toFixed(0)} MB RSS, ${r.baseline.held} records, ${r.baseline.datastoreKB} KB on disk)`,
    figure: `first batch: ${fmt(first)}; last batch: ${fmt(last)}`,
    ratio: first.held === 0 ? 0 : last.held / first.held,
    target: 'flat once the caps are reached: 0 records and <= 5 MB RSS per 1,000 in the last batch',
    pass: last.held <= 0 && last.rssMB <= 5,
    detail: { ...r, steps }
  })
}

async function sandboxRow (tier: Awaited<ReturnType<typeof probeSandbox>>['tier']): Promise<void> {
  const runs = quick ? 5 : 15
  const dir = await mkdtemp(join(tmpdir(), 'concur-bench-sbx-'))
  await import('node:fs/promises').then(async m => { await m.chmod(dir, 0o755) })
  const bare = await repeat(runs, 2, async () => await timeMs(async () => {
    await new Promise<void>((resolve, reject) => { const c = spawn('true'); c.on('exit', () => { resolve() }); c.on('error', reject) })
  }))
  const sbx = await repeat(runs, 2, async () => await timeMs(async () => {
    await runSandboxed({ argv: ['true'], buildDir: dir, env: {}, environment: { kind: 'host' }, limits: { memoryBytes: 256 * MiB, cpus: 1, diskBytes: 64 * MiB, wallSeconds: 30, processes: 64 }, tier: tier ?? 'namespaces+cgroups' })
  }))
  await rm(dir, { recursive: true, force: true })
  const added = median(sbx) - median(bare)
  rows.push({
    id: 'sandbox',
    measure: 'sandbox start (run `true`)',
    baseline: `a bare spawn of the same command (${median(bare).toFixed(1)} ms)`,
    figure: `+${added.toFixed(1)} ms (sandboxed ${median(sbx).toFixed(1)} ms)`,
    ratio: median(sbx) / median(bare),
    target: '<= 50 ms added',
    pass: added <= 50,
    detail: { bareMs: spread(bare), sandboxMs: spread(sbx) }
  })
}

function duMB (path: string): number {
  return Number(execFileSync('du', ['-sm', path]).toString().split('\t')[0])
}

async function installRow (): Promise<void> {
  const total = duMB(join(ROOT, 'node_modules'))
  const runtime = duMB(join(ROOT, 'node_modules', 'node'))
  let seconds: number | null = null
  let fresh: number | null = null
  if (!quick) {
    const dir = await mkdtemp(join(tmpdir(), 'concur-bench-npm-'))
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) await writeFile(join(dir, f), readFileSync(join(ROOT, f)))
    const t = performance.now()
    try {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'ignore', timeout: 300_000 })
      seconds = (performance.now() - t) / 1000
      fresh = duMB(join(dir, 'node_modules')) - duMB(join(dir, 'node_modules', 'node'))
    } catch (err) {
      log(`fresh npm ci failed: ${(err as Error).message}`)
    }
    await rm(dir, { recursive: true, force: true })
  }
  const size = fresh ?? total - runtime
  rows.push({
    id: 'install',
    measure: 'fresh `npm ci`',
    baseline: '— (absolute)',
    figure: `${size} MB without the pinned Node runtime (${runtime} MB)${seconds != null ? `, ${seconds.toFixed(0)} s` : ''}`,
    ratio: size / 250,
    target: '<= 250 MB',
    pass: size <= 250,
    detail: { sizeMB: size, runtimeMB: runtime, seconds }
  })
}

async function gossipRow (): Promise<void> {
  const nodes = quick ? 10 : 50
  const r = await gossipBench({ nodes, runs: quick ? 4 : 15 })
  const ratio = r.concur.median / r.bare.median
  rows.push({
    id: 'gossip',
    measure: `one job announcement reaching ${nodes} nodes (one process; seeded random graph, each node dials 2 earlier ones: ${r.edges} links)`,
    baseline: `a bare gossipsub publish on the same topology (median ${r.bare.median.toFixed(1)} ms)`,
    figure: `median ${r.concur.median.toFixed(1)} ms, p90 ${r.concur.p90.toFixed(1)} ms (bare + concur validator only: ${r.validated.median.toFixed(1)} ms)`,
    ratio,
    target: '<= 1.2x',
    pass: ratio <= 1.2,
    detail: { concurMs: r.concur, bareMs: r.bare, bareWithValidatorMs: r.validated, validatorShare: (r.validated.median - r.bare.median) / Math.max(1e-9, r.concur.median - r.bare.median) }
  })
}

function printTable (list: Row[] = rows): void {
  const lines = [
    '| measure | baseline (same run) | figure | ratio | target | result |',
    '|---|---|---|---|---|---|',
    // a row without a ratio is one this machine cannot measure (its figure says why)
    ...list.map(r => Number.isFinite(r.ratio)
      ? `| ${r.measure} | ${r.baseline} | ${r.figure} | ${r.ratio.toFixed(2)} | ${r.target} | ${r.pass ? 'pass' : 'MISS'} |`
      : `| ${r.measure} | ${r.baseline} | ${r.figure} | n/a | ${r.target} | n/a |`)
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

// a guard against a hung run, not a measured threshold: --quick took ~2.5 min on a loaded machine
const deadline = setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, (quick ? 5 : 10) * 60_000)
deadline.unref()

if (process.argv.includes('--corpus')) {
  // sources, the environment and the .deb files are kept between runs
  const cacheAt = process.argv.indexOf('--corpus-cache')
  const cacheDir = cacheAt !== -1 ? (process.argv[cacheAt + 1] as string) : join(homedir(), '.cache', 'concur', 'corpus')
  clearTimeout(deadline)
  setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, 90 * 60_000).unref()
  const { CORPUS, buildInConcur, control, corpusEnvironment, corpusNetwork, corpusSources, corpusTable } = await import('../corpus/corpus.ts')
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
  const projects = CORPUS.filter(p => only == null || p.name === only)
  const sources = await corpusSources(cacheDir, projects.map(p => p.name), log)
  const envDir = await corpusEnvironment(cacheDir, await tempDir('concur-corpus-home-'), log)
  const c = await corpusNetwork(envDir, await tempDir('concur-corpus-scratch-'))
  log(`environment ${c.env} added; ${c.net.workers.length} workers (TZ, locale, TMPDIR, HOME, umask and CPU limit differ), k = 3`)
  const rows = []
  for (const p of projects) {
    // one project failing (its build, its control) does not end the run: its row says so
    const row = await buildInConcur(c, p, sources.get(p.name) as string).catch((err: Error) => ({ project: p.name, kind: p.kind, verdict: `error: ${err.message.split('\n')[0] ?? ''}`, agreement: '—', fetchS: NaN, buildS: NaN, importS: NaN, reasons: [] }))
    if (!process.argv.includes('--no-control')) {
      try {
        ;(row as { control?: unknown }).control = await control(p, sources.get(p.name) as string, envDir)
      } catch (err) {
        ;(row as { controlError?: string }).controlError = String((err as { stderr?: string }).stderr ?? err).split('\n').filter(Boolean).slice(-3).join(' / ')
      }
    }
    const ctl = (row as { control?: { differentDirectories: boolean, sameDirectory: boolean } }).control
    log(`${p.name}: ${row.verdict}, ${row.agreement}${ctl != null ? `; control: other dirs ${ctl.differentDirectories ? 'same' : 'differ'}, same dir ${ctl.sameDirectory ? 'same' : 'differ'}` : ''}`)
    rows.push(row)
  }
  await cleanupAll()
  process.stdout.write(corpusTable(rows) + '\n')
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', 'corpus.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, environment: c.env, rows }, null, 2) + '\n')
  process.exit(0)
}

if (process.argv.includes('--env-transfer')) {
  const dir = process.argv[process.argv.indexOf('--env-transfer') + 1]
  if (dir == null || dir.startsWith('--')) { log('usage: npm run bench -- --env-transfer DIR (e.g. a tree made by `concur env create`)'); process.exit(1) }
  // a first fetch of a large environment can take long: the bench's own bound is 40 minutes here
  clearTimeout(deadline)
  setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, 40 * 60_000).unref()
  const { envTransferBench } = await import('./env-transfer.ts')
  const r = await envTransferBench(dir, log)
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', 'env-transfer.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, ...r }, null, 2) + '\n')
  process.stdout.write(`| environment | first job: fetch + export | second job: kept | add |\n|---|---|---|---|\n| ${(r.bytes / 1e6).toFixed(0)} MB, ${r.files} files | ${((r.jobs[0]?.environmentMs ?? NaN) / 1000).toFixed(1)} s | ${((r.jobs[1]?.environmentMs ?? NaN) / 1000).toFixed(2)} s (${r.jobs[1]?.cached === true ? 'no export' : 'EXPORTED'}) | ${(r.addMs / 1000).toFixed(1)} s |\n`)
  process.exit(0)
}

if (process.argv.includes('--netem')) {
  // one network of namespaces, started once; each setting changes its links in place
  clearTimeout(deadline)
  setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, (quick ? 6 : 15) * 60_000).unref()
  // Ctrl-C or a kill: leave through process.exit, whose hook removes the network's namespaces
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { log(`${sig}: tearing the network down`); process.exit(130) })
  const { netemBench } = await import('./netem.ts')
  // settings not begun by then are reported as not measured: the table is printed before the hard limit above
  const r = await netemBench({ quick, budgetMs: (quick ? 3 : 10) * 60_000, log })
  if (r.skipped != null) {
    process.stdout.write(`netem bench skipped: ${r.skipped}\n`)
    process.exit(0)
  }
  printTable(r.rows)
  process.stdout.write(`\n${r.table}\n`)
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', quick ? 'netem-quick.json' : 'netem.json'), JSON.stringify({ date: new Date().toISOString(), quick, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, ...r }, null, 2) + '\n')
  process.exit(0)
}

if (process.argv.includes('--providers-shaped')) {
  // namespaces: left through process.exit, whose hook removes them
  clearTimeout(deadline)
  setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, (quick ? 4 : 12) * 60_000).unref()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { log(`${sig}: tearing the network down`); process.exit(130) })
  const { shapedProvidersBench } = await import('./providers-shaped.ts')
  const at = process.argv.indexOf('--rate')
  const r = await shapedProvidersBench({ quick, rateMbit: at !== -1 ? Number(process.argv[at + 1]) : 100, log })
  if (r.row == null) {
    process.stdout.write(`providers-shaped bench skipped: ${r.skipped ?? 'unknown reason'}\n`)
    process.exit(0)
  }
  printTable([r.row])
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', quick ? 'providers-shaped-quick.json' : 'providers-shaped.json'), JSON.stringify({ date: new Date().toISOString(), quick, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, ...r }, null, 2) + '\n')
  await cleanupAll()
  process.exit(0)
}

if (process.argv.includes('--simulate')) {
  // one process, virtual time: bounded by the simulated network's size, not by a clock
  clearTimeout(deadline)
  setTimeout(() => { log('time limit reached, stopping'); process.exit(2) }, 20 * 60_000).unref()
  const { SIMULATE_NOTES, simulateBench, simulateTable } = await import('./simulate/report.ts')
  const option = (name: string, fallback: string): string => {
    const at = process.argv.indexOf(name)
    return at !== -1 ? (process.argv[at + 1] ?? fallback) : fallback
  }
  const results = simulateBench({
    nodes: option('--nodes', quick ? '200,1000' : '1000,10000').split(',').map(Number),
    jobsPerS: Number(option('--jobs-per-s', '2')),
    seconds: Number(option('--seconds', quick ? '120' : '180')),
    trusted: Number(option('--trusted', '64')),
    seed: Number(option('--seed', '1')),
    ...(process.argv.includes('--no-claim-order') ? { claimOrder: false } : {}),
    log
  })
  const rows = results.map(({ detail: _, ...r }) => r)
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
  else process.stdout.write(`${simulateTable(results)}\n\n${SIMULATE_NOTES.map(n => `- ${n}`).join('\n')}\n`)
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', 'simulate.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, notes: SIMULATE_NOTES, rows }, null, 2) + '\n')
  process.exit(0)
}

if (process.argv.includes('--scale')) {
  installFastVerify()
  const countsAt = process.argv.indexOf('--counts')
  const counts = countsAt !== -1 ? (process.argv[countsAt + 1] ?? '').split(',').map(Number) : quick ? [3, 5] : [5, 10, 20, 40]
  const scale = await scaleBench({ counts, jobs: quick ? 2 : 6, log })
  const lines = [
    '| worker daemons | announcement to all p50 ms | p99 ms | k=2 attestations at requester p50 ms | p99 ms | accepted p50 ms | daemon RSS MB (median) | connections per worker (min / median) |',
    '|---|---|---|---|---|---|---|---|',
    ...scale.map(s => `| ${s.workers} | ${s.announce.median.toFixed(0)} | ${s.announceP99.toFixed(0)} | ${s.attestations.median.toFixed(0)} | ${s.attestationsP99.toFixed(0)} | ${s.accepted.median.toFixed(0)} | ${s.rssMB.toFixed(0)} | ${s.connectionsMin} / ${s.connectionsMedian} |`)
  ]
  process.stdout.write(lines.join('\n') + '\n')
  await mkdir(join(ROOT, 'bench-results'), { recursive: true })
  await writeFile(join(ROOT, 'bench-results', quick ? 'scale-quick.json' : 'scale.json'), JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, scale }, null, 2) + '\n')
  await cleanupAll()
  process.exit(0)
}

try {
  const probe = await probeSandbox()
  const steps: Array<[string, () => Promise<void>]> = [
    ['verify', verifyRow],
    ['sandbox', async () => { await sandboxRow(probe.tier) }],
    ['import', importRow],
    ['rss', rssRow],
    ['gossip', gossipRow],
    ['fetch', fetchRow],
    ['fetch-providers', providersRow],
    ['gc', gcRow],
    ['submit', async () => { await submitRow(probe.tier) }],
    ['install', installRow],
    ['flood', floodRow]
  ]
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
  for (const [name, step] of steps) {
    if (only != null && only !== name) continue
    log(`${name} …`)
    try {
      await step()
    } catch (err) {
      log(`${name} failed: ${(err as Error).stack ?? String(err)}`)
    }
  }
} finally {
  await cleanupAll()
}
printTable()
const out = join(ROOT, 'bench-results')
await mkdir(out, { recursive: true })
await writeFile(join(out, quick ? 'quick.json' : 'latest.json'), JSON.stringify({
  date: new Date().toISOString(), quick, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rows
}, null, 2) + '\n')
log(`wrote ${join(out, quick ? 'quick.json' : 'latest.json')}`)
process.exit(0)
