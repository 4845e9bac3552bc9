// Run inside a host's namespace by the --netem bench (netem.ts): a daemon's
// API listens on that namespace's loopback only. Prints one JSON document.
//
//   call HOME METHOD PATH BODY|- TIMEOUT_MS   one request, timed here: {"ms", "json"}
//   verdict HOME JOB_ID BOUND_MS              the request's record once its status is past pending/provisional
//                                             (the feed long-polled, the record read again on this job's events): {"record", "timedOut"}
//   heard HOME JOB_ID BOUND_MS                when this daemon logged the job's `job` event: {"at"}
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { EventsResponse, RequestView } from '../../node/api/types.ts'

const [mode = '', home = '', ...rest] = process.argv.slice(2)
const info = JSON.parse(readFileSync(`${home}/daemon.json`, 'utf8')) as { api: string }
const token = readFileSync(`${home}/api.token`, 'utf8').trim()

async function request<T> (method: string, path: string, body: string | undefined, timeoutMs: number): Promise<T> {
  const r = await fetch(`http://${info.api}${path}`, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    headers: { authorization: `Bearer ${token}`, ...(body != null ? { 'content-type': 'application/json' } : {}) },
    ...(body != null ? { body } : {})
  })
  const text = await r.text()
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 500)}`)
  return JSON.parse(text) as T
}

const print = (doc: unknown): void => { process.stdout.write(JSON.stringify(doc) + '\n') }
const POLL_MS = 25_000

if (mode === 'call') {
  const [method = 'GET', path = '/', body = '-', timeout = '60000'] = rest
  const t = performance.now()
  const json = await request<unknown>(method, path, body === '-' ? undefined : body, Number(timeout))
  print({ ms: performance.now() - t, json })
} else if (mode === 'verdict') {
  const [jobId = '', bound = '150000'] = rest
  const end = Date.now() + Number(bound)
  let after = 0
  let view = await request<RequestView>('GET', `/v1/requests/${jobId}`, undefined, 30_000)
  while (['pending', 'provisional'].includes(view.record.status) && Date.now() < end) {
    const wait = Math.max(0, Math.min(POLL_MS, end - Date.now()))
    const ev = await request<EventsResponse>('GET', `/v1/events?after=${after}&wait=${wait}&jobId=${jobId}`, undefined, wait + 10_000)
    after = Math.max(after, ev.last)
    view = await request<RequestView>('GET', `/v1/requests/${jobId}`, undefined, 30_000)
  }
  print({ record: view.record, timedOut: ['pending', 'provisional'].includes(view.record.status) })
} else if (mode === 'heard') {
  const [jobId = '', bound = '30000'] = rest
  const end = Date.now() + Number(bound)
  let after = 0
  let at: string | undefined
  while (at == null && Date.now() < end) {
    const wait = Math.max(0, Math.min(POLL_MS, end - Date.now()))
    const ev = await request<EventsResponse>('GET', `/v1/events?after=${after}&wait=${wait}&jobId=${jobId}`, undefined, wait + 10_000)
    at = ev.events.find(e => e.event.type === 'job')?.at
    after = Math.max(after, ev.last)
  }
  if (at == null) throw new Error(`no job event for ${jobId} within ${bound} ms`)
  print({ at })
} else {
  throw new Error(`netem-client: unknown mode ${mode}`)
}
