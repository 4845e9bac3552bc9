/**
 * Errors of the metrics registry (src/metrics). Both are programming errors
 * of whoever registers a metric (a name Prometheus cannot parse, a name used
 * twice): the registry refuses at registration, so a scrape never produces
 * text a Prometheus server rejects as a whole.
 */
import { CodedError } from '../coded-error.ts'

/** Every code a {@link MetricsError} can carry. */
export const METRICS_ERROR_CODES = [
  'ERR_INVALID_METRIC',
  'ERR_DUPLICATE_METRIC'
] as const

export type MetricsErrorCode = typeof METRICS_ERROR_CODES[number]

/** The base of every error of src/metrics: never thrown itself, only its subclasses. */
export class MetricsError extends CodedError<MetricsErrorCode> {}

export function isMetricsError (e: unknown): e is MetricsError {
  return e instanceof MetricsError
}

/** A metric name, label name or bucket list the exposition format cannot carry. */
export class InvalidMetricError extends MetricsError {
  override readonly code = 'ERR_INVALID_METRIC' as const
  override name = 'InvalidMetricError'
  readonly metric: string

  constructor (metric: string, reason: string) {
    super('ERR_INVALID_METRIC', `metric ${JSON.stringify(metric)}: ${reason}`)
    this.metric = metric
  }
}

/** A metric name registered twice in one registry (two families of one name are not valid exposition text). */
export class DuplicateMetricError extends MetricsError {
  override readonly code = 'ERR_DUPLICATE_METRIC' as const
  override name = 'DuplicateMetricError'
  readonly metric: string

  constructor (metric: string) {
    super('ERR_DUPLICATE_METRIC', `metric ${JSON.stringify(metric)} is already registered`)
    this.metric = metric
  }
}
