/**
 * Times on the wire are RFC 3339 timestamps in UTC with a `Z` suffix, e.g.
 * `2025-01-01T00:00:00Z` or `2025-01-01T00:00:00.123Z`. Offsets other than Z are
 * refused so that one instant has few text forms and string comparison of
 * same-precision stamps is meaningful. No function here reads the clock.
 */
import { SchemaError } from './errors.ts'

const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/

/** Default tolerated clock skew between peers for "not in the future" checks. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60 * 1000

/** Parses an RFC 3339 UTC timestamp to ms since the epoch; throws SchemaError(path). */
export function parseTime (value: unknown, path: string): number {
  if (typeof value !== 'string' || value.length > 40) throw new SchemaError(path, 'expected an RFC 3339 UTC timestamp')
  const m = RFC3339_UTC.exec(value)
  if (m == null) throw new SchemaError(path, 'expected an RFC 3339 UTC timestamp like 2025-01-01T00:00:00Z')
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number]
  const frac = m[7] ?? ''
  const ms = frac === '' ? 0 : Number(frac.padEnd(3, '0').slice(0, 3))
  // Date.UTC silently rolls 2025-02-30 over to March; refuse any component out of range instead.
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms)
  const back = new Date(t)
  if (y < 1970 || Number.isNaN(t) || back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 ||
      back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    throw new SchemaError(path, `not a valid UTC date-time: ${value}`)
  }
  return t
}

/** Formats ms since the epoch as RFC 3339 UTC with millisecond precision. */
export function formatTime (ms: number): string {
  return new Date(ms).toISOString()
}
