/** Small statistics helpers for the benchmark harness: medians and spread, never a single sample; and the import rows' shared baseline and input. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'

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

/** The import rows' baseline: sha256 of the file, read in 1 MiB chunks */
export async function sha256File (path: string): Promise<void> {
  const h = createHash('sha256')
  for await (const c of createReadStream(path, { highWaterMark: MiB })) h.update(c as Buffer)
  h.digest()
}

/** The import rows' input: `size` bytes of distinct 1 MiB blocks (each a fill of its index, its first word the index) */
export async function writeImportFile (path: string, size: number): Promise<void> {
  const fh = await open(path, 'w')
  try {
    const buf = Buffer.alloc(MiB)
    for (let i = 0; i < size / MiB; i++) { buf.fill(i & 0xff); buf.writeUInt32LE(i, 0); await fh.write(buf) }
  } finally {
    await fh.close()
  }
}
