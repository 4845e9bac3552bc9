/** Small statistics helpers for the benchmark harness: medians and spread, never a single sample. */

/** One figure of the bench table (run.ts and the modes it dispatches to) */
export interface Row {
  id: string
  measure: string
  baseline: string
  figure: string
  ratio: number
  target: string
  pass: boolean
  detail: Record<string, unknown>
}

export function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo)
}

export const median = (xs: number[]): number => quantile(xs, 0.5)

export interface Spread { median: number, min: number, max: number, p10: number, p90: number, n: number }

export function spread (xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), n: xs.length }
}

/** Run `fn` `warmup` times unmeasured, then `runs` times; returns the measured values. */
export async function repeat (runs: number, warmup: number, fn: () => Promise<number>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn()
  const out: number[] = []
  for (let i = 0; i < runs; i++) out.push(await fn())
  return out
}

export const MiB = 1024 * 1024

export async function timeMs (fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}
