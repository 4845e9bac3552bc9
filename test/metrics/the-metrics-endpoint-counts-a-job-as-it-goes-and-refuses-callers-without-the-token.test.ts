/**
 * GET /debug/metrics/prometheus on a running network (bootstrap, two trusted
 * workers, a requester): the counters move as a job goes from claims to an
 * accepted verdict, on the requester and on a worker, next to libp2p's and
 * gossipsub's own metrics, all in text Prometheus parses; and the endpoint
 * answers only its owner (no token, a wrong token, a web page's Host or
 * Origin: refused, as every other route of the local API).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, apiHeaders, cleanupAll } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { submitJob, viewUntil } from '../adversary/adversary.ts'
import { parsePrometheus, sample } from './parse-prometheus.ts'
import type { EventsResponse } from '../../node/api/types.ts'
import { CLAIMS_TOPIC } from '../../protocol/index.ts'

const PATH = '/debug/metrics/prometheus'

async function scrape (node: Node): Promise<Map<string, number>> {
  const res = await fetch(`http://${node.api}${PATH}`, { headers: apiHeaders(node.api) })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePrometheus(await res.text())
}

const value = (m: Map<string, number>, name: string, labels: Record<string, string> = {}): number => sample(m, name, labels) ?? 0

describe('the metrics endpoint', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 })
  })

  afterAll(async () => { await cleanupAll() })

  it('refuses callers without the token, with a wrong one, and web pages', async () => {
    const url = `http://${net.requester.api}${PATH}`
    expect((await fetch(url)).status).toBe(401)
    expect((await fetch(url, { headers: { authorization: `Bearer ${'0'.repeat(64)}` } })).status).toBe(401)
    const port = net.requester.api.split(':')[1] ?? ''
    // fetch sets Host from the URL: a rebinding page's name, by raw request
    const { request } = await import('node:http')
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(port), path: PATH, headers: { ...apiHeaders(net.requester.api), host: `evil.example:${port}` } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end()
    })
    expect(status).toBe(403)
    expect((await fetch(url, { headers: { ...apiHeaders(net.requester.api), origin: 'https://evil.example' } })).status).toBe(403)
    // positive control
    expect((await fetch(url, { headers: apiHeaders(net.requester.api) })).status).toBe(200)
  })

  it('moves as a job is claimed, built and accepted', async () => {
    const worker = net.workers[0] as Node
    const [r0, w0] = await Promise.all([scrape(net.requester), scrape(worker)])
    // libp2p's own and gossipsub's metrics are there from the start
    expect([...r0.keys()].some(k => k.startsWith('libp2p_connection_manager_connections'))).toBe(true)
    expect([...r0.keys()].some(k => k.startsWith('gossipsub_mesh_peer_count'))).toBe(true)
    expect(value(r0, 'concur_peers_connected')).toBeGreaterThan(0)
    expect(value(w0, 'concur_sandbox_tier')).toBe(1)
    expect(value(r0, 'concur_requests', { status: 'accepted' })).toBe(0)

    const before = (await api<EventsResponse>(net.requester.api, 'GET', '/v1/events')).last
    const { jobId } = await submitJob(net.requester, { label: `metrics-${process.pid}`, replicas: 2, script: 'mkdir out; echo metrics > out/m.txt' })
    // the first claim, as the requester's feed has it: scrape then (claims counted, whatever came after)
    for (let after = before, i = 0; ; i++) {
      expect(i, 'a claim on the job in the requester\'s feed').toBeLessThan(50)
      const feed = await api<EventsResponse>(net.requester.api, 'GET', `/v1/events?after=${after}&wait=25000&jobId=${encodeURIComponent(jobId)}`)
      if (feed.events.some(e => e.event.type === 'claim')) break
      after = feed.events.reduce((m, e) => Math.max(m, e.seq), after)
    }
    const r1 = await scrape(net.requester)
    expect(value(r1, 'concur_events_total', { type: 'job' })).toBeGreaterThan(value(r0, 'concur_events_total', { type: 'job' }))
    expect(value(r1, 'concur_gossip_messages_total', { topic: CLAIMS_TOPIC, action: 'accept' }) + value(r1, 'concur_events_total', { type: 'claim' }))
      .toBeGreaterThan(value(r0, 'concur_gossip_messages_total', { topic: CLAIMS_TOPIC, action: 'accept' }) + value(r0, 'concur_events_total', { type: 'claim' }))

    await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'accepted')
    const [r2, w2] = await Promise.all([scrape(net.requester), scrape(worker)])
    expect(value(r2, 'concur_requests', { status: 'accepted' })).toBe(1)
    expect(value(r2, 'concur_verdict_latency_seconds_count', { status: 'accepted' })).toBe(1)
    expect(value(r2, 'concur_verdict_latency_seconds_sum', { status: 'accepted' })).toBeGreaterThan(0)
    expect(value(r2, 'concur_gossip_messages_total', { action: 'accept' })).toBeGreaterThan(value(r0, 'concur_gossip_messages_total', { action: 'accept' }))
    expect(value(r2, 'concur_gossip_verification_seconds_count')).toBeGreaterThan(value(r0, 'concur_gossip_verification_seconds_count'))
    // the worker: one more successful build, its time, the source it fetched
    await viewUntil(net.requester, jobId, v => v.attestations.some(a => a.worker === worker.did), 'the first worker\'s attestation')
    const w3 = await scrape(worker)
    expect(value(w3, 'concur_builds_total', { outcome: 'success' })).toBe(value(w0, 'concur_builds_total', { outcome: 'success' }) + 1)
    expect(value(w3, 'concur_build_duration_seconds_count', { result: 'success' })).toBe(value(w0, 'concur_build_duration_seconds_count', { result: 'success' }) + 1)
    expect(value(w3, 'concur_builds_running')).toBe(0)
    expect(value(w3, 'concur_store_blocks')).toBeGreaterThan(value(w0, 'concur_store_blocks'))
    expect(value(w2, 'concur_jobs_held')).toBeGreaterThan(0)
  })
})
