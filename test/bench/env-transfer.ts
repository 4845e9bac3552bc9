/**
 * `npm run bench -- --env-transfer DIR`: a build environment (a directory,
 * e.g. made by `concur env create`) reaches a worker that lacks it, from one
 * provider on loopback, and two jobs run on it. Reported (issue 18): how long
 * the first job waited for its environment (fetch + export, no restart), and
 * the second (kept by CID: no export), each from the worker's own progress
 * events; the add time; and the whole submit → accepted of each job.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { EventsResponse } from '../../node/api/types.ts'
import { api, cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'

export interface EnvTransferResult {
  dir: string
  cid: string
  bytes: number
  files: number
  addMs: number
  jobs: Array<{ environmentMs: number, cached: boolean, submitToAcceptedMs: number, status: string }>
}

export async function envTransferBench (dir: string, log: (s: string) => void): Promise<EnvTransferResult> {
  const net = await startNetwork({ workers: [{ args: ['--fetch-timeout', '1800'] }], threshold: 1 })
  try {
    const worker = net.workers[0]!
    const t0 = Date.now()
    const added = await runConcur(['add', dir, '--skip-special'], { home: net.requester.home, timeoutMs: 1_800_000 })
    if (added.code !== 0) throw new Error(added.stderr)
    const addMs = Date.now() - t0
    const { cid, bytes, files } = added.json() as { cid: string, bytes: number, files: number }
    log(`added ${dir}: ${cid} (${files} files, ${(bytes / 1e6).toFixed(0)} MB) in ${(addMs / 1000).toFixed(1)} s`)
    const jobs: EnvTransferResult['jobs'] = []
    for (const label of ['first', 'second']) {
      const src = await tempDir()
      await writeFile(join(src, 'label'), `${label}\n`)
      const started = Date.now()
      const r = await submit(net.requester, src, ['--out', 'out', '--replicas', '1', '--timeout', '1800', '--env', cid], ['/bin/sh', '-c', 'mkdir -p out; cat label > out/label; (gcc --version 2>&1 || true) | head -1 > out/cc'], 1_800_000)
      const submitToAcceptedMs = Date.now() - started
      const feed = await api<EventsResponse>(worker.api, 'GET', '/v1/events?after=0')
      const ready = feed.events.flatMap(({ event }) => event.type === 'build:progress' && event.progress.stage === 'environment' ? [event.progress] : [])
      const mine = ready[jobs.length]
      jobs.push({ environmentMs: mine?.ms ?? NaN, cached: mine?.cached ?? false, submitToAcceptedMs, status: r.view.record.status })
      log(`${label} job: ${r.view.record.status}; environment ${mine?.cached === true ? 'already kept' : 'fetched and exported'} in ${((mine?.ms ?? NaN) / 1000).toFixed(1)} s; submit → accepted ${(submitToAcceptedMs / 1000).toFixed(1)} s`)
    }
    return { dir, cid, bytes, files, addMs, jobs }
  } finally {
    await cleanupAll()
  }
}
