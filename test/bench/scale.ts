/**
 * Scaling run (`npm run bench -- --scale`): W worker daemons, one bootstrap
 * node and one requester, every one a separate `concur daemon` OS process on
 * loopback. Workers start in batches of 4 (each runs a sandbox probe at start;
 * 20 probes at once fail here with "Can't fork"), peers find each other through
 * the bootstrap node (discovery topic), and the requester trusts every worker
 * with threshold k = 2. Unlike startNetwork, nothing waits for the requester
 * to be connected to every worker: at scale it is not. For each W, several jobs (distinct
 * SOURCE_DATE_EPOCH, so no reuse), each measured from the creation of the
 * request record (just before the requester publishes) on the shared machine clock:
 * - announcement delivery: when the last worker's daemon logged the `job` event;
 * - k attestations: when the requester logged the k-th (k = 2) attestation;
 * - accepted: when the API first showed the verdict (polled every 10 ms).
 * Event times are the daemons' ISO timestamps (1 ms resolution).
 */
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'
import type { ConcurProcess } from '../helpers/processes.ts'
import { quantile, spread } from './stats.ts'
import type { Spread } from './stats.ts'

interface Ev { seq: number, at: string, event: { type: string, jobId?: string, from?: string } }

export interface ScaleFigures {
  workers: number
  jobs: number
  /** ms from publication until every worker had the job */
  announce: Spread
  announceP99: number
  /** ms from publication until the k-th attestation reached the requester */
  attestations: Spread
  attestationsP99: number
  accepted: Spread
  rssMB: number
  /** connections per worker at the end: fewest and median (discovery at work) */
  connectionsMin: number
  connectionsMedian: number
  startSeconds: number
}

async function events (address: string): Promise<Ev[]> {
  const r = await api<{ events: Ev[] }>(address, 'GET', '/v1/events?after=0')
  return r.events
}

const rss = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

interface ScaleNode { proc: ConcurProcess, did: string, api: string, home: string }

async function startScaleNetwork (workers: number): Promise<{ requester: ScaleNode, workers: ScaleNode[] }> {
  const node = async (proc: ConcurProcess): Promise<ScaleNode> => {
    const r = await proc.ready
    return { proc, did: String(r.did), api: String(r.api), home: proc.home }
  }
  const boot = startConcur(['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { home: await tempDir() })
  const bootAddr = (await boot.ready as { multiaddrs: string[] }).multiaddrs[0] as string
  const ws: ScaleNode[] = []
  for (let i = 0; i < workers; i += 4) {
    const batch: ConcurProcess[] = []
    for (let j = i; j < Math.min(workers, i + 4); j++) batch.push(startConcur(['daemon', '--worker', '--bootstrap', bootAddr], { home: await tempDir() }))
    ws.push(...await Promise.all(batch.map(node)))
  }
  const requester = await node(startConcur(['daemon', '--bootstrap', bootAddr], { home: await tempDir() }))
  const t = await runConcur(['trust', 'add', ...ws.map(w => w.did)], { home: requester.home })
  if (t.code !== 0) throw new Error(t.stderr)
  const p = await runConcur(['policy', 'set', '--threshold', '2'], { home: requester.home })
  if (p.code !== 0) throw new Error(p.stderr)
  return { requester, workers: ws }
}

export async function scaleBench (opts: { counts: number[], jobs: number, log: (s: string) => void }): Promise<ScaleFigures[]> {
  const out: ScaleFigures[] = []
  for (const workers of opts.counts) {
    opts.log(`scale: starting ${workers} worker daemons + bootstrap + requester …`)
    const t0 = performance.now()
    try {
      const net = await startScaleNetwork(workers)
      const startSeconds = (performance.now() - t0) / 1000
      // let discovery and the gossip meshes settle (a few heartbeats) before measuring
      await new Promise(resolve => setTimeout(resolve, 5000))
      const src = await tempDir()
      await writeFile(join(src, 'in.txt'), 'trivial\n')
      const announce: number[] = []
      const attest: number[] = []
      const accepted: number[] = []
      for (let j = 0; j < opts.jobs + 1; j++) {
        const sub = await api<{ jobId: string }>(net.requester.api, 'POST', '/v1/jobs', {
          source: src, output: 'out', command: ['sh', '-c', 'mkdir -p out && cp in.txt out/'], env: { SOURCE_DATE_EPOCH: String(1_600_000_000 + workers * 100 + j) }, replicas: 3, ttlSeconds: 120
        })
        let acceptedAt = 0
        for (let polls = 0; polls < 12_000; polls++) {
          const v = await api<{ record: { status: string } }>(net.requester.api, 'GET', `/v1/requests/${sub.jobId}`)
          if (v.record.status === 'accepted') { acceptedAt = Date.now(); break }
          if (v.record.status !== 'pending' && v.record.status !== 'provisional') {
            // say what happened across the network, not just the verdict
            const per = await Promise.all(net.workers.map(async w => (await events(w.api)).filter(e => e.event.jobId === sub.jobId).map(e => e.event.type)))
            const count = (t: string): number => per.filter(types => types.includes(t)).length
            const reqEv = (await events(net.requester.api)).filter(e => e.event.jobId === sub.jobId).map(e => e.event.type)
            const peers = await api<{ peers: unknown[], subscribers: { jobs: string[] }, discovered: unknown[] }>(net.requester.api, 'GET', '/v1/peers')
            const workerConns = await Promise.all(net.workers.map(async w => (await api<{ peers: unknown[] }>(w.api, 'GET', '/v1/peers')).peers.length))
            throw new Error(`job ended ${v.record.status}: requester had ${peers.peers.length} connections, ${peers.subscribers.jobs.length} jobs-topic peers, ${peers.discovered.length} discovered; worker connections ${workerConns.join(',')}; of ${workers} workers ${count('job')} heard it, ${count('job:claimed')} claimed, ${count('build:attested')} attested, ${count('job:declined')} declined; requester saw ${reqEv.filter(t => t === 'claim').length} claims, ${reqEv.filter(t => t === 'attestation').length} attestations`)
          }
          await new Promise(resolve => setTimeout(resolve, 10))
        }
        if (acceptedAt === 0) throw new Error('no verdict within the bound')
        // every worker has heard the job by now (a worker that built it heard it first)
        await new Promise(resolve => setTimeout(resolve, 200))
        const req = await events(net.requester.api)
        // the request record is created just before the job is published (the requester
        // stores its own job itself, so its daemon logs no `job` event for it)
        const view = await api<{ record: { history: Array<{ at: string }> } }>(net.requester.api, 'GET', `/v1/requests/${sub.jobId}`)
        const pubAt = Date.parse(view.record.history[0]?.at ?? '')
        if (!Number.isFinite(pubAt)) throw new Error('request record without a creation time')
        const atts = req.filter(e => e.event.type === 'attestation' && e.event.jobId === sub.jobId).map(e => Date.parse(e.at)).sort((a, b) => a - b)
        // delivery to the last worker may take longer than acceptance (k = 2 needs
        // only the first few): wait for it, bounded
        const heardAll = async (): Promise<Array<Ev | undefined>> => await Promise.all(net.workers.map(async w => (await events(w.api)).find(e => e.event.type === 'job' && e.event.jobId === sub.jobId)))
        let heard = await heardAll()
        for (let polls = 0; polls < 300 && heard.some(h => h == null); polls++) {
          await new Promise(resolve => setTimeout(resolve, 100))
          heard = await heardAll()
        }
        const missing = heard.filter(h => h == null).length
        if (missing > 0) {
          const workerConns = await Promise.all(net.workers.map(async w => (await api<{ peers: unknown[] }>(w.api, 'GET', '/v1/peers')).peers.length))
          const missingIdx = heard.map((h, i) => h == null ? i : -1).filter(i => i >= 0)
          const diag = await Promise.all(missingIdx.map(async i => {
            const w = net.workers[i]!
            const p = await api<{ peers: unknown[], subscribers: { jobs: string[] } }>(w.api, 'GET', '/v1/peers')
            const g = (await api<{ gossip: Record<string, unknown> }>(w.api, 'GET', '/v1/stats')).gossip
            const evs = (await events(w.api)).filter(e => e.event.type === 'job').length
            return `w${i}: ${p.peers.length} conns, ${p.subscribers.jobs.length} jobs-topic peers, ${evs} job events, stats ${JSON.stringify(g).slice(0, 200)}`
          }))
          const reqPeers = await api<{ subscribers: { jobs: string[] } }>(net.requester.api, 'GET', '/v1/peers')
          throw new Error(`${missing} of ${workers} workers never logged job ${sub.jobId} within 30 s (job ${j}); worker connections ${workerConns.join(',')}; requester jobs-topic peers ${reqPeers.subscribers.jobs.length}; ${diag.join(' | ')}`)
        }
        if (j === 0) continue // warm-up
        announce.push(Math.max(...heard.map(h => Date.parse(h!.at))) - pubAt)
        if (atts.length >= 2) attest.push((atts[1] as number) - pubAt)
        accepted.push(acceptedAt - pubAt)
      }
      const rssAll = net.workers.map(w => rss(w.proc.child.pid as number))
      const conns = await Promise.all(net.workers.map(async w => (await api<{ peers: unknown[] }>(w.api, 'GET', '/v1/peers')).peers.length))
      out.push({
        workers,
        jobs: opts.jobs,
        announce: spread(announce),
        announceP99: quantile(announce, 0.99),
        attestations: spread(attest),
        attestationsP99: quantile(attest, 0.99),
        accepted: spread(accepted),
        rssMB: quantile(rssAll, 0.5),
        connectionsMin: Math.min(...conns),
        connectionsMedian: quantile(conns, 0.5),
        startSeconds
      })
    } catch (err) {
      opts.log(`scale ${workers}: ${(err as Error).message}`)
    } finally {
      await cleanupAll()
    }
  }
  return out
}
