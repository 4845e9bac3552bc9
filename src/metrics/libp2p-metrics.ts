/**
 * libp2p's `Metrics` (and gossipsub's `MetricsRegister`) on the registry of
 * registry.ts, so a node's libp2p, helia and gossipsub metrics come out of
 * the same `render()` as concur's own, under the same cardinality cap.
 *
 *   const registry = new Registry()
 *   const node = await createLibp2p({ metrics: libp2pMetrics(registry), … })
 *   const text = await registry.render()
 *
 * Mapping (modelled on @libp2p/prometheus-metrics, without prom-client):
 * - registerMetric → gauge; registerMetricGroup → gauge with one label
 *   (the group's `label`, `key` by default) whose values are the group's keys
 * - registerCounter(Group) → counter(s) the same way
 * - registerHistogram(Group) → histogram (the given buckets, or the default)
 * - registerSummary(Group) → a histogram with the default buckets: a real
 *   summary needs a sliding-window quantile estimator (t-digest); a
 *   histogram gives `_sum`, `_count` and quantiles by histogram_quantile()
 *   on the server side, which is enough for the timings libp2p reports
 * - `{ calculate }` variants are called at scrape. A name registered twice
 *   (two components, or two nodes on one registry) is the same metric, and
 *   its calculators are summed, as prometheus-metrics does.
 *
 * Names: libp2p's already start `libp2p_` and helia's `helia_`; those are
 * kept, anything else gets `libp2p_` in front. Gossipsub registers nothing
 * through this interface (it takes a prom-client-like `metricsRegister`
 * option instead): see {@link gossipsubMetricsRegister}; its names start
 * `gossipsub_` and are kept.
 */
import type {
  CalculateMetric,
  CalculatedHistogramOptions,
  CalculatedMetricOptions,
  CalculatedSummaryOptions,
  Counter,
  CounterGroup,
  Histogram,
  HistogramGroup,
  HistogramOptions,
  Metric,
  MetricGroup,
  MetricOptions,
  Metrics,
  MultiaddrConnection,
  StopTimer,
  Stream,
  Summary,
  SummaryGroup,
  SummaryOptions
} from '@libp2p/interface'
import type { MetricsRegister } from '@libp2p/gossipsub/metrics'
import { DuplicateMetricError } from './errors.ts'
import { sanitizeLabelName, sanitizeMetricName } from './registry.ts'
import type { CounterMetric, GaugeMetric, HistogramMetric, Registry } from './registry.ts'

/** Prefixes kept as they are; any other name gets `libp2p_`. */
const KEPT_PREFIXES = ['libp2p_', 'helia_', 'gossipsub_']

/** The Prometheus name of a libp2p metric name. */
export function libp2pMetricName (name: string): string {
  const s = sanitizeMetricName(name)
  return KEPT_PREFIXES.some(p => s.startsWith(p)) ? s : `libp2p_${s}`
}

type Kind = 'metric' | 'metricGroup' | 'counter' | 'counterGroup' | 'histogram' | 'histogramGroup'

/** One registered name: its handle, and the calculators added by every registration of it. */
interface Entry<H, V> {
  kind: Kind
  handle: H
  calculators: Array<CalculateMetric<V>>
}

type Group = Record<string, number>

/** what the options of every register* call may carry */
interface AnyOptions extends MetricOptions {
  calculate?: CalculateMetric<number> | CalculateMetric<Group>
  buckets?: number[]
}

function seconds (start: number): number {
  return (performance.now() - start) / 1000
}

/** a group's increment value: a number, or anything else for 1 (libp2p passes `true`) */
function step (value: unknown): number {
  return typeof value === 'number' ? value : 1
}

async function sumOf (calculators: Array<CalculateMetric<number>>): Promise<number> {
  let sum = 0
  for (const c of calculators) sum += await c()
  return sum
}

async function sumByKey (calculators: Array<CalculateMetric<Group>>): Promise<Map<string, number>> {
  const sums = new Map<string, number>()
  for (const c of calculators) {
    for (const [key, value] of Object.entries(await c())) sums.set(key, (sums.get(key) ?? 0) + value)
  }
  return sums
}

/**
 * What every Libp2pMetrics of one registry shares: the registry refuses a
 * name twice, and two nodes (or two instances libp2p makes) on one registry
 * register the same names; they share the metric, as prometheus-metrics
 * does with its module-wide map.
 */
interface Shared {
  entries: Map<string, Entry<unknown, unknown>>
  connections: CounterMetric<'direction'>
  streams: CounterMetric<'protocol' | 'direction'>
}

const sharedByRegistry = new WeakMap<Registry, Shared>()

function sharedOf (registry: Registry): Shared {
  let shared = sharedByRegistry.get(registry)
  if (shared == null) {
    shared = {
      entries: new Map(),
      connections: registry.counter({
        name: 'libp2p_connections_opened_total',
        help: 'Connections opened (before upgrade), by direction.',
        labelNames: ['direction']
      }),
      streams: registry.counter({
        name: 'libp2p_streams_opened_total',
        help: 'Protocol streams opened, by negotiated protocol and direction.',
        labelNames: ['protocol', 'direction']
      })
    }
    sharedByRegistry.set(registry, shared)
  }
  return shared
}

/**
 * libp2p's `Metrics` on a {@link Registry}. `trackMultiaddrConnection` and
 * `trackProtocolStream` only count (connections, and streams by protocol):
 * wrapping each stream's data path to count bytes, as prometheus-metrics
 * does, would cost on every chunk of every transfer.
 */
export class Libp2pMetrics implements Metrics {
  private readonly registry: Registry
  private readonly shared: Shared

  constructor (registry: Registry) {
    this.registry = registry
    this.shared = sharedOf(registry)
  }

  readonly [Symbol.toStringTag] = '@concur/libp2p-metrics'

  trackMultiaddrConnection (maConn: MultiaddrConnection): void {
    this.shared.connections.inc(1, { direction: maConn.direction })
  }

  trackProtocolStream (stream: Stream): void {
    // libp2p calls this after negotiation; a protocol is one we or the remote
    // handle, and the registry's cap bounds the rest
    this.shared.streams.inc(1, { protocol: stream.protocol ?? 'unnegotiated', direction: stream.direction })
  }

  registerMetric (name: string, options: CalculatedMetricOptions): void
  registerMetric (name: string, options?: MetricOptions): Metric
  registerMetric (name: string, options: AnyOptions = {}): Metric | undefined {
    const entry = this.entry<GaugeMetric, number>(name, 'metric', options, (full, calculators) => this.registry.gauge({
      name: full,
      help: options.help ?? name,
      collect: async (g) => { if (calculators.length > 0) g.set(await sumOf(calculators)) }
    }))
    if (options.calculate != null) return undefined
    const g = entry.handle
    return {
      update: (v) => { g.set(v) },
      increment: (v = 1) => { g.inc(v) },
      decrement: (v = 1) => { g.dec(v) },
      reset: () => { g.reset() },
      timer: (): StopTimer => { const t = performance.now(); return () => { g.set(seconds(t)) } }
    }
  }

  registerMetricGroup (name: string, options: CalculatedMetricOptions<Group>): void
  registerMetricGroup (name: string, options?: MetricOptions): MetricGroup
  registerMetricGroup (name: string, options: AnyOptions = {}): MetricGroup | undefined {
    const label = sanitizeLabelName(options.label ?? 'key')
    const entry = this.entry<GaugeMetric<string>, Group>(name, 'metricGroup', options, (full, calculators) => this.registry.gauge<string>({
      name: full,
      help: options.help ?? name,
      labelNames: [label],
      collect: async (g) => {
        if (calculators.length === 0) return
        const sums = await sumByKey(calculators)
        // keys gone since the last scrape (a protocol no longer open) must not linger
        g.reset()
        for (const [key, value] of sums) g.set(value, { [label]: key })
      }
    }))
    if (options.calculate != null) return undefined
    const g = entry.handle
    return {
      update: (values) => { for (const [k, v] of Object.entries(values)) if (typeof v === 'number') g.set(v, { [label]: k }) },
      increment: (values) => { for (const [k, v] of Object.entries(values)) g.inc(step(v), { [label]: k }) },
      decrement: (values) => { for (const [k, v] of Object.entries(values)) g.dec(step(v), { [label]: k }) },
      reset: () => { g.reset() },
      timer: (key): StopTimer => { const t = performance.now(); return () => { g.set(seconds(t), { [label]: key }) } }
    }
  }

  registerCounter (name: string, options: CalculatedMetricOptions): void
  registerCounter (name: string, options?: MetricOptions): Counter
  registerCounter (name: string, options: AnyOptions = {}): Counter | undefined {
    const entry = this.entry<CounterMetric, number>(name, 'counter', options, (full, calculators) => this.registry.counter({
      name: full,
      help: options.help ?? name,
      collect: async (c) => {
        if (calculators.length === 0) return
        const total = await sumOf(calculators)
        c.reset()
        c.inc(total)
      }
    }))
    if (options.calculate != null) return undefined
    const c = entry.handle
    return {
      increment: (v = 1) => { c.inc(v) },
      reset: () => { c.reset() }
    }
  }

  registerCounterGroup (name: string, options: CalculatedMetricOptions<Group>): void
  registerCounterGroup (name: string, options?: MetricOptions): CounterGroup
  registerCounterGroup (name: string, options: AnyOptions = {}): CounterGroup | undefined {
    const label = sanitizeLabelName(options.label ?? 'key')
    const entry = this.entry<CounterMetric<string>, Group>(name, 'counterGroup', options, (full, calculators) => this.registry.counter<string>({
      name: full,
      help: options.help ?? name,
      labelNames: [label],
      collect: async (c) => {
        if (calculators.length === 0) return
        const sums = await sumByKey(calculators)
        c.reset()
        for (const [key, value] of sums) c.inc(value, { [label]: key })
      }
    }))
    if (options.calculate != null) return undefined
    const c = entry.handle
    return {
      increment: (values) => { for (const [k, v] of Object.entries(values)) c.inc(step(v), { [label]: k }) },
      reset: () => { c.reset() }
    }
  }

  registerHistogram (name: string, options: CalculatedHistogramOptions): void
  registerHistogram (name: string, options?: HistogramOptions): Histogram
  registerHistogram (name: string, options: AnyOptions = {}): Histogram | undefined {
    return this.histogram(name, 'histogram', options)
  }

  registerHistogramGroup (name: string, options: CalculatedHistogramOptions<Group>): void
  registerHistogramGroup (name: string, options?: HistogramOptions): HistogramGroup
  registerHistogramGroup (name: string, options: AnyOptions = {}): HistogramGroup | undefined {
    return this.histogramGroup(name, 'histogramGroup', options)
  }

  /** a histogram with the default buckets: see the module's comment */
  registerSummary (name: string, options: CalculatedSummaryOptions): void
  registerSummary (name: string, options?: SummaryOptions): Summary
  registerSummary (name: string, options: AnyOptions = {}): Summary | undefined {
    return this.histogram(name, 'histogram', { label: options.label, help: options.help, calculate: options.calculate })
  }

  registerSummaryGroup (name: string, options: CalculatedSummaryOptions<Group>): void
  registerSummaryGroup (name: string, options?: SummaryOptions): SummaryGroup
  registerSummaryGroup (name: string, options: AnyOptions = {}): SummaryGroup | undefined {
    return this.histogramGroup(name, 'histogramGroup', { label: options.label, help: options.help, calculate: options.calculate })
  }

  /** no tracing: the function itself */
  traceFunction<F> (_name: string, fn: F): F {
    return fn
  }

  /** no tracing context */
  createTrace (): undefined {
    return undefined
  }

  private histogram (name: string, kind: Kind, options: AnyOptions): Histogram | undefined {
    const entry = this.entry<HistogramMetric, number>(name, kind, options, (full, calculators) => this.registry.histogram({
      name: full,
      help: options.help ?? name,
      ...(options.buckets != null ? { buckets: options.buckets } : {}),
      collect: async (h) => { for (const c of calculators) h.observe(await c()) }
    }))
    if (options.calculate != null) return undefined
    const h = entry.handle
    return {
      observe: (v) => { h.observe(v) },
      reset: () => { h.reset() },
      timer: (): StopTimer => { const t = performance.now(); return () => { h.observe(seconds(t)) } }
    }
  }

  private histogramGroup (name: string, kind: Kind, options: AnyOptions): HistogramGroup | undefined {
    const label = sanitizeLabelName(options.label ?? 'key')
    const entry = this.entry<HistogramMetric<string>, Group>(name, kind, options, (full, calculators) => this.registry.histogram<string>({
      name: full,
      help: options.help ?? name,
      labelNames: [label],
      ...(options.buckets != null ? { buckets: options.buckets } : {}),
      collect: async (h) => {
        for (const c of calculators) {
          for (const [key, value] of Object.entries(await c())) h.observe(value, { [label]: key })
        }
      }
    }))
    if (options.calculate != null) return undefined
    const h = entry.handle
    return {
      observe: (values) => { for (const [k, v] of Object.entries(values)) if (typeof v === 'number') h.observe(v, { [label]: k }) },
      reset: () => { h.reset() },
      timer: (key): StopTimer => { const t = performance.now(); return () => { h.observe(seconds(t), { [label]: key }) } }
    }
  }

  /**
   * The entry of a name, created on its first registration. Later
   * registrations of the same name and kind share it (and add their
   * calculator); of another kind, they throw: one name cannot be two types.
   */
  private entry<H, V> (name: string, kind: Kind, options: AnyOptions, create: (full: string, calculators: Array<CalculateMetric<V>>) => H): Entry<H, V> {
    const full = libp2pMetricName(name)
    let entry = this.shared.entries.get(full) as Entry<H, V> | undefined
    if (entry == null) {
      const calculators: Array<CalculateMetric<V>> = []
      entry = { kind, handle: create(full, calculators), calculators }
      this.shared.entries.set(full, entry as Entry<unknown, unknown>)
    } else if (entry.kind !== kind) {
      throw new DuplicateMetricError(full)
    }
    if (options.calculate != null) entry.calculators.push(options.calculate as CalculateMetric<V>)
    return entry
  }
}

/** For `createLibp2p({ metrics: libp2pMetrics(registry) })`: libp2p calls it with its components, which are not needed. */
export function libp2pMetrics (registry: Registry): () => Metrics {
  return () => new Libp2pMetrics(registry)
}

type GossipLabels = Record<string, string | number>

/** the runtime shape of gossipsub's Gauge: `inc(labels, value)` or `inc(value)` */
interface GossipGauge {
  inc (a?: GossipLabels | number, b?: number): void
  set (a: GossipLabels | number, b?: number): void
  addCollect (fn: (metric: GossipGauge) => void): void
}

function isLabels (a: unknown): a is GossipLabels {
  return typeof a === 'object' && a != null && !Array.isArray(a)
}

/**
 * Gossipsub's metrics on a {@link Registry}: gossipsub (v17) registers no
 * metric through libp2p's `Metrics`; it builds its own (~100, all named
 * `gossipsub_…`) on a prom-client-like register given as an option:
 *
 *   gossipsub({ metricsRegister: gossipsubMetricsRegister(registry), metricsTopicStrToLabel: new Map() })
 *
 * `metricsTopicStrToLabel` is required with it (gossipsub throws otherwise);
 * a topic missing from the map is labelled with the topic itself, which may
 * be a peer's choice: the registry's cap bounds those series.
 * An `avgMinMax` is three gauges, `<name>_avg`, `<name>_min`, `<name>_max`
 * (all 0 for no values).
 */
export function gossipsubMetricsRegister (registry: Registry): MetricsRegister {
  const register = {
    gauge (config: { name: string, help: string, labelNames?: string[] }): GossipGauge {
      const collectors: Array<(metric: GossipGauge) => void> = []
      const g = registry.gauge<string>({
        name: config.name,
        help: config.help,
        labelNames: config.labelNames ?? [],
        collect: () => { for (const c of collectors) c(gauge) }
      })
      const gauge: GossipGauge = {
        inc: (a, b) => { if (isLabels(a)) g.inc(b ?? 1, a); else g.inc(a ?? 1) },
        set: (a, b) => { if (isLabels(a)) g.set(b ?? 0, a); else g.set(a) },
        addCollect: (fn) => { collectors.push(fn) }
      }
      return gauge
    },
    histogram (config: { name: string, help: string, labelNames?: string[], buckets?: number[] }) {
      const h = registry.histogram<string>({
        name: config.name,
        help: config.help,
        labelNames: config.labelNames ?? [],
        ...(config.buckets != null ? { buckets: config.buckets } : {})
      })
      return {
        startTimer: () => { const t = performance.now(); return () => { h.observe(seconds(t)) } },
        observe: (a: GossipLabels | number, b?: number) => { if (isLabels(a)) h.observe(b ?? 0, a); else h.observe(a) },
        reset: () => { h.reset() }
      }
    },
    avgMinMax (config: { name: string, help: string, labelNames?: string[] }) {
      const labelNames = config.labelNames ?? []
      const [avg, min, max] = (['avg', 'min', 'max'] as const).map(stat => registry.gauge<string>({
        name: `${config.name}_${stat}`,
        help: `${config.help} (${stat})`,
        labelNames
      }))
      const setAll = (values: number[], labels?: GossipLabels): void => {
        const n = values.length
        avg!.set(n === 0 ? 0 : values.reduce((x, y) => x + y, 0) / n, labels)
        // reduce, not Math.min(...values): a spread of a long array overflows the stack
        min!.set(n === 0 ? 0 : values.reduce((x, y) => Math.min(x, y), Infinity), labels)
        max!.set(n === 0 ? 0 : values.reduce((x, y) => Math.max(x, y), -Infinity), labels)
      }
      return {
        set: (a: GossipLabels | number[], b?: number[]) => { if (isLabels(a)) setAll(b ?? [], a); else setAll(a) }
      }
    }
  }
  // gossipsub's types make each method's arguments depend on its Labels
  // parameter; the shapes above take both forms at run time
  return register as unknown as MetricsRegister
}
