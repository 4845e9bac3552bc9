/**
 * Two real libp2p nodes (TCP on loopback, noise, yamux, identify, gossipsub)
 * built with `metrics: libp2pMetrics(registry)`: once they are connected and
 * subscribed to one topic, each registry's text carries libp2p's connection
 * and stream metrics and gossipsub's, and parses.
 *
 * Gossipsub (v17) registers nothing through libp2p's `metrics`: it needs its
 * own `metricsRegister` (and `metricsTopicStrToLabel`) option, given here
 * with gossipsubMetricsRegister(registry).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { Registry } from '../../src/metrics/registry.ts'
import { Libp2pMetrics, gossipsubMetricsRegister, libp2pMetrics } from '../../src/metrics/libp2p-metrics.ts'
import { DuplicateMetricError } from '../../src/metrics/errors.ts'
import { parsePrometheus, sample } from './parse-prometheus.ts'

type Node = Libp2p<{ identify: Identify, pubsub: GossipSub }>

const TOPIC = 'concur/metrics-test'

async function node (registry: Registry): Promise<Node> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    metrics: libp2pMetrics(registry),
    services: {
      identify: identify(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        metricsRegister: gossipsubMetricsRegister(registry),
        metricsTopicStrToLabel: new Map([[TOPIC, 'metrics_test']])
      })
    }
  })
}

/** resolves when `predicate` holds of an event of this type (checked as each arrives) */
async function until<T> (target: EventTarget, type: string, predicate: (detail: T) => boolean): Promise<void> {
  await new Promise<void>(resolve => {
    const listener = (evt: Event): void => {
      if (predicate((evt as CustomEvent<T>).detail)) {
        target.removeEventListener(type, listener)
        resolve()
      }
    }
    target.addEventListener(type, listener)
  })
}

describe('libp2p and gossipsub metrics on the registry', () => {
  const nodes: Node[] = []
  afterAll(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('a connected pair shows connections, streams by protocol and gossipsub peers in text that parses', async () => {
    const ra = new Registry()
    const rb = new Registry()
    const a = await node(ra)
    const b = await node(rb)
    nodes.push(a, b)

    const identified = until<{ peerId: { equals: (p: unknown) => boolean } }>(a, 'peer:identify', d => d.peerId.equals(b.peerId))
    const bSubscribed = until<{ peerId: { equals: (p: unknown) => boolean }, subscriptions: Array<{ topic: string, subscribe: boolean }> }>(
      a.services.pubsub, 'subscription-change',
      d => d.peerId.equals(b.peerId) && d.subscriptions.some(s => s.topic === TOPIC && s.subscribe)
    )
    a.services.pubsub.subscribe(TOPIC)
    b.services.pubsub.subscribe(TOPIC)
    await a.dial(b.getMultiaddrs()[0]!)
    await identified
    await bSubscribed

    const text = await ra.render()
    const m = parsePrometheus(text)
    const names = new Set([...m.keys()].map(k => k.replace(/\{.*$/, '')))
    // libp2p core, through the Metrics interface (a calculated group)
    expect(sample(m, 'libp2p_connection_manager_connections', { key: 'outbound' })).toBe(1)
    expect(sample(m, 'libp2p_connection_manager_dials_total')).toBeGreaterThanOrEqual(1)
    expect(names).toContain('libp2p_tcp_dialer_events_total')
    // the cheap tracking of this module: a connection, and the identify and gossipsub streams
    expect(sample(m, 'libp2p_connections_opened_total', { direction: 'outbound' })).toBe(1)
    expect(sample(m, 'libp2p_streams_opened_total', { protocol: '/ipfs/id/1.0.0' })).toBeGreaterThanOrEqual(1)
    expect([...m.keys()].some(k => k.startsWith('libp2p_streams_opened_total{protocol="/meshsub/'))).toBe(true)
    // gossipsub, through its own register: collected at scrape
    expect(sample(m, 'gossipsub_topic_peer_count', { topicStr: TOPIC })).toBe(1)
    expect(sample(m, 'gossipsub_cache_size', { cache: 'peers' })).toBe(1)
    expect([...names].filter(n => n.startsWith('gossipsub_')).length).toBeGreaterThan(50)
    expect(sample(m, 'concur_metrics_collect_errors_total')).toBeUndefined()

    // the other side counts the same connection inbound
    const mb = parsePrometheus(await rb.render())
    expect(sample(mb, 'libp2p_connection_manager_connections', { key: 'inbound' })).toBe(1)
    expect(sample(mb, 'libp2p_connections_opened_total', { direction: 'inbound' })).toBe(1)
  })
})

describe('the Metrics mapping', () => {
  it('keeps libp2p_ and helia_ names, prefixes others, and sanitizes them', async () => {
    const r = new Registry()
    const m = new Libp2pMetrics(r)
    m.registerMetric('libp2p_x').update(1)
    m.registerCounter('helia_y_total').increment(2)
    m.registerMetric('my-queue.size').update(3)
    const parsed = parsePrometheus(await r.render())
    expect([sample(parsed, 'libp2p_x'), sample(parsed, 'helia_y_total'), sample(parsed, 'libp2p_my_queue_size')]).toEqual([1, 2, 3])
  })

  it('groups label by their `label` (default `key`); a name registered twice is one metric whose calculators add up', async () => {
    const r = new Registry()
    const m = new Libp2pMetrics(r)
    m.registerMetricGroup('libp2p_g', { label: 'protocol', calculate: () => ({ '/a': 1, '/b': 2 }) })
    m.registerMetricGroup('libp2p_g', { label: 'protocol', calculate: async () => ({ '/a': 10 }) })
    const c = m.registerCounterGroup('libp2p_errors_total')
    c.increment({ timeout: true, reset: 3 })
    c.increment({ timeout: true })
    const parsed = parsePrometheus(await r.render())
    expect(sample(parsed, 'libp2p_g', { protocol: '/a' })).toBe(11)
    expect(sample(parsed, 'libp2p_g', { protocol: '/b' })).toBe(2)
    expect(sample(parsed, 'libp2p_errors_total', { key: 'timeout' })).toBe(2)
    expect(sample(parsed, 'libp2p_errors_total', { key: 'reset' })).toBe(3)
    // one name cannot be two types
    expect(() => m.registerCounter('libp2p_g')).toThrow(DuplicateMetricError)
  })

  it('a calculated counter is the calculator\'s total at each scrape; summaries are histograms', async () => {
    const r = new Registry()
    const m = new Libp2pMetrics(r)
    let total = 5
    m.registerCounter('libp2p_c_total', { calculate: () => total })
    m.registerSummary('libp2p_s').observe(0.2)
    m.registerSummaryGroup('libp2p_sg').observe({ a: 1, b: 2 })
    expect(sample(parsePrometheus(await r.render()), 'libp2p_c_total')).toBe(5)
    total = 7
    const parsed = parsePrometheus(await r.render())
    expect(sample(parsed, 'libp2p_c_total')).toBe(7)
    expect([sample(parsed, 'libp2p_s_count'), sample(parsed, 'libp2p_s_sum')]).toEqual([1, 0.2])
    expect(sample(parsed, 'libp2p_sg_count', { key: 'b' })).toBe(1)
  })

  it('two instances on one registry (two nodes) share its metrics', async () => {
    const r = new Registry()
    const [m1, m2] = [new Libp2pMetrics(r), new Libp2pMetrics(r)]
    m1.registerMetric('libp2p_peers', { calculate: () => 2 })
    m2.registerMetric('libp2p_peers', { calculate: () => 3 })
    m1.registerCounter('libp2p_n_total').increment()
    m2.registerCounter('libp2p_n_total').increment()
    const parsed = parsePrometheus(await r.render())
    expect([sample(parsed, 'libp2p_peers'), sample(parsed, 'libp2p_n_total')]).toEqual([5, 2])
  })

  it('traces nothing', () => {
    const m = new Libp2pMetrics(new Registry())
    const fn = (): number => 1
    expect(m.traceFunction('f', fn)).toBe(fn)
    expect(m.createTrace()).toBeUndefined()
  })
})
