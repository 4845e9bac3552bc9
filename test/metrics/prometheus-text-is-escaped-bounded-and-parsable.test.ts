/**
 * The registry's text is what a Prometheus server parses: HELP and TYPE per
 * metric, escaped HELP text and label values, cumulative histogram buckets
 * ending in +Inf with _sum and _count. A metric keeps at most N label sets
 * (label values may come from peers), and a collect that fails leaves its
 * metric out of the scrape, not the whole scrape.
 */
import { describe, expect, it } from 'vitest'
import { Registry, sanitizeLabelName, sanitizeMetricName } from '../../src/metrics/registry.ts'
import { DuplicateMetricError, InvalidMetricError, METRICS_ERROR_CODES, isMetricsError } from '../../src/metrics/errors.ts'
import { parsePrometheus, sample } from './parse-prometheus.ts'

describe('exposition format', () => {
  it('writes HELP and TYPE once per metric, in registration order, with HELP escaped', async () => {
    const r = new Registry()
    r.gauge({ name: 'b_gauge', help: 'a back\\slash and a\nnewline' }).set(2)
    r.counter({ name: 'a_total', help: 'counts' }).inc()
    const text = await r.render()
    expect(text).toContain('# HELP b_gauge a back\\\\slash and a\\nnewline\n# TYPE b_gauge gauge\nb_gauge 2\n')
    expect(text).toContain('# HELP a_total counts\n# TYPE a_total counter\na_total 1\n')
    expect(text.indexOf('b_gauge')).toBeLessThan(text.indexOf('a_total'))
    expect(text.endsWith('\n')).toBe(true)
  })

  it('escapes backslash, double quote and newline in label values, and they read back', async () => {
    const r = new Registry()
    const c = r.counter({ name: 'errors_total', help: 'errors by code', labelNames: ['code'] })
    c.inc(3, { code: 'a"b\\c\nd' })
    const text = await r.render()
    expect(text).toContain('errors_total{code="a\\"b\\\\c\\nd"} 3\n')
    const parsed = parsePrometheus(text)
    expect(sample(parsed, 'errors_total', { code: 'a"b\\c\nd' })).toBe(3)
  })

  it('writes histogram buckets cumulative, ending in +Inf, then _sum and _count', async () => {
    const r = new Registry()
    const h = r.histogram({ name: 'latency_seconds', help: 'latency', labelNames: ['op'], buckets: [0.1, 1, 10] })
    for (const v of [0.05, 0.5, 0.5, 5, 50]) h.observe(v, { op: 'get' })
    h.observe(NaN, { op: 'get' })
    const parsed = parsePrometheus(await r.render())
    expect([...parsed].filter(([k]) => k.startsWith('latency_seconds'))).toEqual([
      ['latency_seconds_bucket{op="get",le="0.1"}', 1],
      ['latency_seconds_bucket{op="get",le="1"}', 3],
      ['latency_seconds_bucket{op="get",le="10"}', 4],
      ['latency_seconds_bucket{op="get",le="+Inf"}', 5],
      ['latency_seconds_sum{op="get"}', 56.05],
      ['latency_seconds_count{op="get"}', 5]
    ])
  })

  it('sorts and deduplicates buckets (libraries compute theirs: gossipsub\'s may all be 0)', async () => {
    const r = new Registry()
    r.histogram({ name: 'h', help: 'h', buckets: [0, 0, 2, 1, Infinity] }).observe(1.5)
    expect([...parsePrometheus(await r.render())].filter(([k]) => k.startsWith('h_'))).toEqual([
      ['h_bucket{le="0"}', 0],
      ['h_bucket{le="1"}', 0],
      ['h_bucket{le="2"}', 1],
      ['h_bucket{le="+Inf"}', 1],
      ['h_sum', 1.5],
      ['h_count', 1]
    ])
  })

  it('writes an unlabelled metric as 0 before any update, and a counter never goes down', async () => {
    const r = new Registry()
    const c = r.counter({ name: 'n_total', help: 'n' })
    r.histogram({ name: 'h', help: 'h', buckets: [1] })
    c.inc(-5)
    const parsed = parsePrometheus(await r.render())
    expect(sample(parsed, 'n_total')).toBe(0)
    expect(sample(parsed, 'h_count')).toBe(0)
    expect(sample(parsed, 'h_bucket', { le: '+Inf' })).toBe(0)
  })

  it('writes NaN and infinities as Prometheus spells them', async () => {
    const r = new Registry()
    const g = r.gauge({ name: 'g', help: 'g', labelNames: ['k'] })
    g.set(NaN, { k: 'nan' })
    g.set(Infinity, { k: 'inf' })
    g.set(-Infinity, { k: 'ninf' })
    g.set(1e21, { k: 'big' })
    const text = await r.render()
    expect(text).toContain('g{k="nan"} NaN\ng{k="inf"} +Inf\ng{k="ninf"} -Inf\ng{k="big"} 1e+21\n')
    expect(parsePrometheus(text).get('g{k="inf"}')).toBe(Infinity)
  })

  it('refuses names and label names outside the grammar, and a name twice', () => {
    const r = new Registry()
    expect(() => r.gauge({ name: 'has-dash', help: 'x' })).toThrow(InvalidMetricError)
    expect(() => r.gauge({ name: '1st', help: 'x' })).toThrow(InvalidMetricError)
    expect(() => r.gauge({ name: 'ok', help: 'x', labelNames: ['a:b'] })).toThrow(InvalidMetricError)
    expect(() => r.gauge({ name: 'ok', help: 'x', labelNames: ['__reserved'] })).toThrow(InvalidMetricError)
    expect(() => r.histogram({ name: 'ok', help: 'x', labelNames: ['le'] })).toThrow(InvalidMetricError)
    expect(() => r.histogram({ name: 'ok', help: 'x', buckets: [1, NaN] })).toThrow(InvalidMetricError)
    r.histogram({ name: 'h', help: 'x' })
    expect(() => r.counter({ name: 'h', help: 'x' })).toThrow(DuplicateMetricError)
    expect(() => r.counter({ name: 'h_count', help: 'x' })).toThrow(DuplicateMetricError)
    // the failed registrations left nothing behind
    expect(r.has('ok')).toBe(false)
  })

  it('sanitizes foreign names into the grammar', () => {
    expect(sanitizeMetricName('libp2p_tcp-dialer.events total')).toBe('libp2p_tcp_dialer_events_total')
    expect(sanitizeMetricName('9lives')).toBe('_9lives')
    expect(sanitizeMetricName('a:b')).toBe('a:b')
    expect(sanitizeLabelName('a:b')).toBe('a_b')
    expect(sanitizeLabelName('__x')).toBe('_x')
    expect(sanitizeLabelName('0x')).toBe('_0x')
  })

  it('its errors are MetricsErrors with the module\'s codes', () => {
    const errors = [new InvalidMetricError('m', 'why'), new DuplicateMetricError('m')]
    expect(errors.map(e => [e.name, e.code, isMetricsError(e)])).toEqual([
      ['InvalidMetricError', 'ERR_INVALID_METRIC', true],
      ['DuplicateMetricError', 'ERR_DUPLICATE_METRIC', true]
    ])
    expect([...METRICS_ERROR_CODES].sort()).toEqual(errors.map(e => e.code).sort())
    expect(isMetricsError(new Error('x'))).toBe(false)
  })
})

describe('bounded cardinality', () => {
  it('5000 distinct label values from "peers" make at most N + 1 series; the excess is counted under "other"', async () => {
    const N = 100
    const r = new Registry({ maxSeriesPerMetric: N })
    const byTopic = r.counter({ name: 'messages_total', help: 'by topic', labelNames: ['topic', 'peer'] })
    const sizes = r.histogram({ name: 'size_bytes', help: 'by topic', labelNames: ['topic'], buckets: [10] })
    for (let i = 0; i < 5000; i++) {
      byTopic.inc(1, { topic: `attacker-topic-${i}`, peer: `p${i}` })
      sizes.observe(i, { topic: `attacker-topic-${i}` })
    }
    // an existing series keeps counting by its own labels
    byTopic.inc(1, { topic: 'attacker-topic-0', peer: 'p0' })
    const parsed = parsePrometheus(await r.render())
    const series = [...parsed.keys()].filter(k => k.startsWith('messages_total{'))
    expect(series.length).toBeLessThanOrEqual(N + 1)
    expect(sample(parsed, 'messages_total')).toBe(5001)
    expect(sample(parsed, 'messages_total', { topic: 'other', peer: 'other' })).toBe(5000 - N)
    expect(sample(parsed, 'messages_total', { topic: 'attacker-topic-0' })).toBe(2)
    expect([...parsed.keys()].filter(k => k.startsWith('size_bytes_count{')).length).toBeLessThanOrEqual(N + 1)
    expect(sample(parsed, 'size_bytes_count')).toBe(5000)
    // the folding is itself visible
    expect(sample(parsed, 'concur_metrics_series_folded_total', { metric: 'messages_total' })).toBe(5000 - N)
  })

  it('a label value longer than 128 characters (a made-up gossip topic of megabytes) is counted under "other", never kept', async () => {
    const r = new Registry()
    const byTopic = r.counter({ name: 'received_total', help: 'by topic', labelNames: ['topic'] })
    for (let i = 0; i < 50; i++) byTopic.inc(1, { topic: `t${i}-` + 'x'.repeat(64 * 1024) })
    byTopic.inc(1, { topic: 'y'.repeat(128) })
    const text = await r.render()
    // 50 topics of 64 KiB would be 3 MiB of series text (and of memory kept for good)
    expect(text.length).toBeLessThan(64 * 1024)
    const parsed = parsePrometheus(text)
    expect(sample(parsed, 'received_total', { topic: 'other' })).toBe(50)
    expect(sample(parsed, 'received_total', { topic: 'y'.repeat(128) })).toBe(1)
  })

  it('the default cap is 1000 series per metric', async () => {
    const r = new Registry()
    const g = r.gauge({ name: 'g', help: 'g', labelNames: ['k'] })
    for (let i = 0; i < 1500; i++) g.set(1, { k: String(i) })
    const parsed = parsePrometheus(await r.render())
    expect([...parsed.keys()].filter(k => k.startsWith('g{')).length).toBe(1001)
  })
})

describe('collected metrics', () => {
  it('calls collect callbacks (sync and async) at each scrape', async () => {
    const r = new Registry()
    let peers = 3
    r.gauge({ name: 'peers', help: 'peers', collect: (g) => { g.set(peers) } })
    r.gauge({
      name: 'store_bytes',
      help: 'store size',
      labelNames: ['kind'],
      collect: async (g) => { await Promise.resolve(); g.set(42, { kind: 'blocks' }) }
    })
    expect(sample(parsePrometheus(await r.render()), 'peers')).toBe(3)
    peers = 5
    const parsed = parsePrometheus(await r.render())
    expect(sample(parsed, 'peers')).toBe(5)
    expect(sample(parsed, 'store_bytes', { kind: 'blocks' })).toBe(42)
  })

  it('a collect that throws or rejects leaves out its metric only, and is counted', async () => {
    const r = new Registry()
    r.gauge({ name: 'before', help: 'b', collect: (g) => { g.set(1) } })
    r.gauge({ name: 'throws', help: 't', collect: () => { throw new Error('boom') } })
    r.gauge({ name: 'rejects', help: 'r', collect: async () => { throw new Error('boom') } })
    r.gauge({ name: 'after', help: 'a', collect: (g) => { g.set(2) } })
    const text = await r.render()
    const parsed = parsePrometheus(text)
    expect(text).not.toMatch(/^(# (HELP|TYPE) )?(throws|rejects)\b/m)
    expect(sample(parsed, 'before')).toBe(1)
    expect(sample(parsed, 'after')).toBe(2)
    expect(sample(parsed, 'concur_metrics_collect_errors_total', { metric: 'throws' })).toBe(1)
    expect(sample(parsed, 'concur_metrics_collect_errors_total', { metric: 'rejects' })).toBe(1)
    // and the next scrape still works
    expect(sample(parsePrometheus(await r.render()), 'concur_metrics_collect_errors_total')).toBe(4)
  })

  it('a collect that never settles is given up after the time limit: the scrape and the next ones answer', async () => {
    const r = new Registry({ collectTimeoutMs: 50 })
    r.gauge({ name: 'hangs', help: 'h', collect: async () => { await new Promise(() => {}) } })
    r.gauge({ name: 'fine', help: 'f', collect: (g) => { g.set(7) } })
    for (let i = 1; i <= 2; i++) {
      const parsed = parsePrometheus(await r.render())
      expect(sample(parsed, 'fine')).toBe(7)
      expect(parsed.has('hangs')).toBe(false)
      expect(sample(parsed, 'concur_metrics_collect_errors_total', { metric: 'hangs' })).toBe(i)
    }
  })

  it('concurrent scrapes each see a whole collect', async () => {
    const r = new Registry()
    let n = 0
    r.gauge({
      name: 'g',
      help: 'g',
      labelNames: ['k'],
      collect: async (g) => { g.reset(); await Promise.resolve(); g.set(++n, { k: 'a' }) }
    })
    const [a, b] = await Promise.all([r.render(), r.render()])
    expect(sample(parsePrometheus(a!), 'g')).toBe(1)
    expect(sample(parsePrometheus(b!), 'g')).toBe(2)
  })
})

describe('the parser is strict (it can fail)', () => {
  it.each([
    ['a bad name', 'my-metric 1\n'],
    ['an unescaped quote', 'm{a="x"y"} 1\n'],
    ['a bad value', 'm 1.2.3\n'],
    ['a missing value', 'm{a="x"}\n'],
    ['a sample twice', 'm 1\nm 2\n'],
    ['a bad TYPE', '# TYPE m counterz\n'],
    ['a label name with a colon', 'm{a:b="x"} 1\n']
  ])('refuses %s', (_, text) => {
    expect(() => parsePrometheus(text)).toThrow()
  })
})
