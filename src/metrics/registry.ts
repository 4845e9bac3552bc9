/**
 * A Prometheus metrics registry with no dependency: counters, gauges and
 * histograms with optional labels, rendered in the text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Why not prom-client: it is a large dependency (with its own cluster and
 * default-metrics machinery) for what is here a few hundred lines, and its
 * label sets grow without bound. Label values here may come from peers
 * (topics, protocols, error codes), so every metric is capped (see
 * `maxSeriesPerMetric`).
 *
 * Values are collected lazily where they are expensive or owned elsewhere:
 * a metric registered with `collect` has it called at each scrape, before
 * any text is written (so one collect may set other metrics too, as
 * gossipsub's does). A collect that throws skips its own metric only.
 */
import { DuplicateMetricError, InvalidMetricError } from './errors.ts'

/** `Content-Type` of {@link Registry.render}'s text, for an HTTP handler. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Prometheus' client default buckets (seconds): for latencies when nothing better is known. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The default cap of distinct label sets per metric (see {@link RegistryOptions.maxSeriesPerMetric}). */
export const DEFAULT_MAX_SERIES_PER_METRIC = 1000

/** The value every label of the folded series carries once a metric is at its cap. */
export const OVERFLOW_LABEL_VALUE = 'other'

/** The longest label value kept as it is (longer ones are counted under "other"). */
export const MAX_LABEL_VALUE_LENGTH = 128

/** How long one collect callback may take before the scrape goes on without its metric (ms). */
export const DEFAULT_COLLECT_TIMEOUT_MS = 5000

export type LabelValue = string | number

/** One value per label name; a missing one is written as the empty string. */
export type LabelValues<L extends string> = Readonly<Partial<Record<L, LabelValue>>>

export interface MetricInit<L extends string> {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; use {@link sanitizeMetricName} on names from elsewhere */
  name: string
  help: string
  /** `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` */
  labelNames?: readonly L[]
}

/** Called at each scrape with the metric, to set its values; may be async. */
export type Collect<M> = (metric: M) => void | Promise<void>

export interface CounterInit<L extends string> extends MetricInit<L> {
  collect?: Collect<CounterMetric<L>>
}

export interface GaugeInit<L extends string> extends MetricInit<L> {
  collect?: Collect<GaugeMetric<L>>
}

export interface HistogramInit<L extends string> extends MetricInit<L> {
  /** upper bounds (sorted and deduplicated here); `+Inf` is always added. Default {@link DEFAULT_BUCKETS} */
  buckets?: readonly number[]
  collect?: Collect<HistogramMetric<L>>
}

/** Only goes up (a reset aside): an increment below zero is ignored. */
export interface CounterMetric<L extends string = never> {
  readonly name: string
  inc (value?: number, labels?: LabelValues<L>): void
  /** forget every label set (an unlabelled counter goes back to 0) */
  reset (): void
}

export interface GaugeMetric<L extends string = never> {
  readonly name: string
  set (value: number, labels?: LabelValues<L>): void
  inc (value?: number, labels?: LabelValues<L>): void
  dec (value?: number, labels?: LabelValues<L>): void
  reset (): void
}

export interface HistogramMetric<L extends string = never> {
  readonly name: string
  /** NaN is ignored (it would make `_sum` NaN for good) */
  observe (value: number, labels?: LabelValues<L>): void
  reset (): void
}

export interface RegistryOptions {
  /**
   * Distinct label sets kept per metric; beyond it, new label sets are all
   * counted in one series whose label values are all "other". Default 1000.
   */
  maxSeriesPerMetric?: number
  /** how long one collect callback may take (default {@link DEFAULT_COLLECT_TIMEOUT_MS}); past it, its metric is left out */
  collectTimeoutMs?: number
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A name Prometheus accepts: every other character becomes `_`, and a leading digit gets a `_` before it. */
export function sanitizeMetricName (name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_')
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`
}

/** A label name Prometheus accepts (no `:`, and `__` is reserved: one `_` is kept). */
export function sanitizeLabelName (name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_]/g, '_')
  if (!/^[a-zA-Z_]/.test(s)) s = `_${s}`
  return s.startsWith('__') ? s.replace(/^_+/, '_') : s
}

/** HELP text: backslash and newline are escaped (exposition format 0.0.4). */
export function escapeHelp (text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

/** A label value: backslash, double quote and newline are escaped. */
export function escapeLabelValue (value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A sample value as Prometheus parses it (Go's ParseFloat, plus `+Inf`, `-Inf`, `NaN`). */
export function formatValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

type MetricType = 'counter' | 'gauge' | 'histogram'

/** What the registry needs of a family at scrape time. */
interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  /** run the collect callback, if any; may throw */
  collect (): Promise<void>
  /** sample lines, without HELP/TYPE */
  lines (): string[]
}

interface Folding {
  maxSeries: number
  /** told each time an update is folded into the overflow series */
  onFold (metric: string): void
}

/**
 * The label sets of one metric and the cap on how many it keeps. A series is
 * keyed by its label values in label-name order (JSON, so no separator can
 * collide with a value).
 */
abstract class Base<L extends string, S> {
  readonly name: string
  readonly help: string
  abstract readonly type: MetricType
  protected readonly labelNames: readonly L[]
  protected readonly series = new Map<string, { labels: string[], value: S }>()
  private readonly folding: Folding
  private readonly overflowKey: string

  constructor (init: MetricInit<L>, folding: Folding) {
    if (!METRIC_NAME.test(init.name)) throw new InvalidMetricError(init.name, 'the name must match [a-zA-Z_:][a-zA-Z0-9_:]*')
    const labelNames = init.labelNames ?? []
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new InvalidMetricError(init.name, `label name ${JSON.stringify(label)} must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __`)
    }
    if (new Set(labelNames).size !== labelNames.length) throw new InvalidMetricError(init.name, 'a label name is listed twice')
    this.name = init.name
    this.help = init.help === '' ? init.name : init.help
    this.labelNames = labelNames
    this.folding = folding
    this.overflowKey = JSON.stringify(labelNames.map(() => OVERFLOW_LABEL_VALUE))
  }

  protected abstract zero (): S

  abstract collect (): Promise<void>
  abstract lines (): string[]

  /**
   * An unlabelled metric shows 0 from the start, as prom-client's do: a
   * dashboard sees the metric exists. Called by each subclass's constructor
   * once its own fields (a histogram's buckets) are set.
   */
  protected initDefault (): void {
    if (this.labelNames.length === 0) this.series.set('[]', { labels: [], value: this.zero() })
  }

  reset (): void {
    this.series.clear()
    this.initDefault()
  }

  protected seriesOf (labels: LabelValues<L> | undefined): { labels: string[], value: S } {
    // WHY the length cap: the series cap bounds how many label sets, not how
    // big each is; a gossip topic a peer made up can be megabytes, kept for
    // good in the series map and written at every scrape. A value that long is
    // no useful breakdown: it is counted under "other".
    const values = this.labelNames.map(n => {
      const v = String(labels?.[n] ?? '')
      return v.length > MAX_LABEL_VALUE_LENGTH ? OVERFLOW_LABEL_VALUE : v
    })
    let key = JSON.stringify(values)
    let found = this.series.get(key)
    if (found != null) return found
    // WHY the cap: label values may come from peers (a topic, a protocol, an
    // error code); each new value would be a new series kept until the
    // process ends, so a peer sending made-up values could grow the daemon's
    // memory (and every scrape's size) without bound. Beyond the cap, new
    // label sets share one series labelled "other": totals stay right, the
    // breakdown is lost only for the excess. At most maxSeries + 1 series.
    if (this.series.size >= this.folding.maxSeries) {
      this.folding.onFold(this.name)
      key = this.overflowKey
      found = this.series.get(key)
      if (found != null) return found
      const overflow = { labels: this.labelNames.map(() => OVERFLOW_LABEL_VALUE), value: this.zero() }
      this.series.set(key, overflow)
      return overflow
    }
    const created = { labels: values, value: this.zero() }
    this.series.set(key, created)
    return created
  }

  protected labelText (values: readonly string[], extra?: [string, string]): string {
    const pairs = this.labelNames.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`)
    if (extra != null) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`)
    return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
  }
}

/** A counter's or a gauge's series: one number each, written as one sample line. */
abstract class ScalarBase<L extends string> extends Base<L, { v: number }> {
  constructor (init: MetricInit<L>, folding: Folding) {
    super(init, folding)
    this.initDefault()
  }

  protected zero (): { v: number } { return { v: 0 } }

  /** the metric's own collect callback, called with the metric itself */
  protected abstract runCollect (): void | Promise<void>

  async collect (): Promise<void> { await this.runCollect() }

  lines (): string[] {
    return [...this.series.values()].map(s => `${this.name}${this.labelText(s.labels)} ${formatValue(s.value.v)}`)
  }
}

class CounterImpl<L extends string> extends ScalarBase<L> implements CounterMetric<L>, Family {
  readonly type = 'counter'
  private readonly collector: Collect<CounterMetric<L>> | undefined

  constructor (init: CounterInit<L>, folding: Folding) {
    super(init, folding)
    this.collector = init.collect
  }

  protected runCollect (): void | Promise<void> { return this.collector?.(this) }

  inc (value = 1, labels?: LabelValues<L>): void {
    // a counter that goes down reads as a restart to Prometheus' rate()
    if (!(value >= 0)) return
    this.seriesOf(labels).value.v += value
  }
}

class GaugeImpl<L extends string> extends ScalarBase<L> implements GaugeMetric<L>, Family {
  readonly type = 'gauge'
  private readonly collector: Collect<GaugeMetric<L>> | undefined

  constructor (init: GaugeInit<L>, folding: Folding) {
    super(init, folding)
    this.collector = init.collect
  }

  protected runCollect (): void | Promise<void> { return this.collector?.(this) }

  set (value: number, labels?: LabelValues<L>): void { this.seriesOf(labels).value.v = value }
  inc (value = 1, labels?: LabelValues<L>): void { this.seriesOf(labels).value.v += value }
  dec (value = 1, labels?: LabelValues<L>): void { this.seriesOf(labels).value.v -= value }
}

interface HistogramSeries {
  /** per bucket, not cumulative (made cumulative when written) */
  counts: number[]
  sum: number
  count: number
}

class HistogramImpl<L extends string> extends Base<L, HistogramSeries> implements HistogramMetric<L>, Family {
  readonly type = 'histogram'
  private readonly buckets: readonly number[]
  private readonly collector: Collect<HistogramMetric<L>> | undefined

  constructor (init: HistogramInit<L>, folding: Folding) {
    super(init, folding)
    if (this.labelNames.some(n => n === 'le')) throw new InvalidMetricError(init.name, 'a histogram may not have a label "le" (its buckets use it)')
    this.buckets = validBuckets(init.name, init.buckets ?? DEFAULT_BUCKETS)
    this.collector = init.collect
    this.initDefault()
  }

  protected zero (): HistogramSeries {
    return { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }
  }

  observe (value: number, labels?: LabelValues<L>): void {
    if (Number.isNaN(value)) return
    const s = this.seriesOf(labels).value
    const i = this.buckets.findIndex(b => value <= b)
    if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1
    s.sum += value
    s.count++
  }

  async collect (): Promise<void> { await this.collector?.(this) }

  lines (): string[] {
    const out: string[] = []
    for (const { labels, value: s } of this.series.values()) {
      let cumulative = 0
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i] ?? 0
        out.push(`${this.name}_bucket${this.labelText(labels, ['le', formatValue(b)])} ${cumulative}`)
      })
      out.push(`${this.name}_bucket${this.labelText(labels, ['le', '+Inf'])} ${s.count}`)
      out.push(`${this.name}_sum${this.labelText(labels)} ${formatValue(s.sum)}`)
      out.push(`${this.name}_count${this.labelText(labels)} ${s.count}`)
    }
    return out
  }
}

function validBuckets (name: string, buckets: readonly number[]): number[] {
  // +Inf is always the last bucket: drop it if given
  const finite = buckets.filter(b => b !== Infinity)
  if (finite.some(b => !Number.isFinite(b))) throw new InvalidMetricError(name, 'a bucket bound is NaN or -Inf')
  // sorted and deduplicated rather than refused: libraries compute their
  // bounds (gossipsub's behaviour-penalty buckets are all 0 with the default
  // threshold), and two equal `le` would be one sample written twice
  return [...new Set(finite)].sort((x, y) => x - y)
}

/**
 * Metrics by name, rendered in registration order. Registering a name twice
 * (or a name a histogram's `_bucket`/`_sum`/`_count` already uses) throws
 * {@link DuplicateMetricError}.
 */
export class Registry {
  readonly maxSeriesPerMetric: number
  private readonly collectTimeoutMs: number
  private readonly families: Family[] = []
  /** every sample name in use, histograms' suffixed names included */
  private readonly sampleNames = new Set<string>()
  private readonly collectErrors: CounterMetric<'metric'>
  private readonly folded: CounterMetric<'metric'>
  private readonly folding: Folding
  /** scrapes run one after the other: two interleaved collects could reset each other's values */
  private rendering: Promise<unknown> = Promise.resolve()

  constructor (options: RegistryOptions = {}) {
    const max = options.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES_PER_METRIC
    if (!Number.isInteger(max) || max < 1) throw new InvalidMetricError('maxSeriesPerMetric', 'must be an integer ≥ 1')
    this.maxSeriesPerMetric = max
    this.collectTimeoutMs = options.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS
    this.folding = {
      maxSeries: max,
      // the folded counter folds too (past `max` metrics): it does not count itself, or it would recurse
      onFold: (metric) => { if (metric !== this.folded.name) this.folded.inc(1, { metric }) }
    }
    this.collectErrors = this.counter({
      name: 'concur_metrics_collect_errors_total',
      help: 'Scrapes where a metric\'s collect callback threw or rejected; that metric was left out of the scrape.',
      labelNames: ['metric']
    })
    this.folded = this.counter({
      name: 'concur_metrics_series_folded_total',
      help: 'Updates counted in a metric\'s "other" series because the metric was at its cap of distinct label sets.',
      labelNames: ['metric']
    })
  }

  counter<L extends string = never> (init: CounterInit<L>): CounterMetric<L> {
    return this.add(new CounterImpl(init, this.folding), [init.name])
  }

  gauge<L extends string = never> (init: GaugeInit<L>): GaugeMetric<L> {
    return this.add(new GaugeImpl(init, this.folding), [init.name])
  }

  histogram<L extends string = never> (init: HistogramInit<L>): HistogramMetric<L> {
    return this.add(new HistogramImpl(init, this.folding), [init.name, `${init.name}_bucket`, `${init.name}_sum`, `${init.name}_count`])
  }

  /** whether a metric of this name is registered */
  has (name: string): boolean {
    return this.families.some(f => f.name === name)
  }

  /**
   * The text exposition format 0.0.4 of every metric: collect callbacks run
   * first (one after the other, in registration order), then the text is
   * written. A metric whose collect throws is left out of this scrape.
   */
  render (): Promise<string> {
    const next = this.rendering.then(() => this.renderNow())
    this.rendering = next.catch(() => {})
    return next
  }

  private async renderNow (): Promise<string> {
    const failed = new Set<Family>()
    for (const family of this.families) {
      // WHY the time limit: scrapes run one after the other, so one collect
      // that never settles (a component's calculate hung on I/O) would hold
      // every later scrape, and each waiting scrape holds a connection
      let timer: ReturnType<typeof setTimeout> | undefined
      try {
        await Promise.race([
          family.collect(),
          new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('collect timed out')) }, this.collectTimeoutMs) })
        ])
      } catch {
        failed.add(family)
        this.collectErrors.inc(1, { metric: family.name })
      } finally {
        clearTimeout(timer)
      }
    }
    const out: string[] = []
    for (const family of this.families) {
      if (failed.has(family)) continue
      out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
      out.push(`# TYPE ${family.name} ${family.type}`)
      out.push(...family.lines())
    }
    return out.join('\n') + '\n'
  }

  private add<F extends Family> (family: F, names: string[]): F {
    const taken = names.find(n => this.sampleNames.has(n))
    if (taken != null) throw new DuplicateMetricError(taken)
    for (const n of names) this.sampleNames.add(n)
    this.families.push(family)
    return family
  }
}
