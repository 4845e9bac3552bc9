import { api, runConcur, startConcur, tempDir, waitFor } from './processes.ts'
import type { RequestView } from '../../node/api/types.ts'
import type { ConcurProcess } from './processes.ts'

export interface Node { proc: ConcurProcess, did: string, peerId: string, api: string, home: string }

export interface Devnet {
  bootstrap: Node
  bootAddr: string
  workers: Node[]
  requester: Node
}

export interface WorkerSpec {
  args?: string[]
  env?: Record<string, string>
  /** run the worker process with this umask (set through sh, as a volunteer's shell would) */
  umask?: string
}

async function ready (proc: ConcurProcess): Promise<Node> {
  const r = await proc.ready
  return { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home: proc.home }
}

/** A bootstrap node, workers and a requester as separate processes on loopback. */
export async function startNetwork (opts: { workers: WorkerSpec[], threshold?: number, trust?: number[], required?: number[], requesterEnv?: Record<string, string> }): Promise<Devnet> {
  const bootstrap = await ready(startConcur(['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { home: await tempDir() }))
  const bootAddr = (await bootstrap.proc.ready as { multiaddrs: string[] }).multiaddrs[0] as string
  const workerProcs: ConcurProcess[] = []
  for (const w of opts.workers) {
    workerProcs.push(startConcur(['daemon', '--worker', '--bootstrap', bootAddr, ...(w.args ?? [])], { home: await tempDir(), env: w.env, umask: w.umask }))
  }
  const requester = await ready(startConcur(['daemon', '--bootstrap', bootAddr], { home: await tempDir(), env: opts.requesterEnv }))
  const workers = await Promise.all(workerProcs.map(ready))
  const trusted = (opts.trust ?? workers.map((_, i) => i)).map(i => workers[i]?.did as string)
  if (trusted.length > 0) {
    const t = await runConcur(['trust', 'add', ...trusted], { home: requester.home })
    if (t.code !== 0) throw new Error(t.stderr)
    const p = await runConcur(['policy', 'set', '--threshold', String(opts.threshold ?? 2), ...(opts.required ?? []).flatMap(i => ['--required', workers[i]?.did as string])], { home: requester.home })
    if (p.code !== 0) throw new Error(p.stderr)
  }
  await waitFor(async () => {
    const p = await api<{ subscribers: { jobs: string[] } }>(requester.api, 'GET', '/v1/peers')
    return workers.every(w => p.subscribers.jobs.includes(w.peerId))
  }, 'every worker on the jobs topic')
  return { bootstrap, bootAddr, workers, requester }
}

export interface SubmitResult {
  code: number | null
  stderr: string
  view: RequestView & { timedOut?: boolean }
}

export async function submit (requester: Node, project: string, args: string[], command: string[], timeoutMs = 300_000): Promise<SubmitResult> {
  const r = await runConcur(['submit', project, ...args, '--wait', '--', ...command], { home: requester.home, timeoutMs })
  let view: SubmitResult['view']
  try {
    view = JSON.parse(r.stdout) as SubmitResult['view']
  } catch {
    throw new Error(`submit printed no JSON (exit ${r.code ?? '?'}):\n${r.stdout}\n${r.stderr}`)
  }
  return { code: r.code, stderr: r.stderr, view }
}
