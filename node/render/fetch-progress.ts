/**
 * A fetch's progress as a person reads it: bytes, rate, and an ETA when the
 * DAG declared its size. The declared size is the DAG author's claim (see
 * FetchProgress.declaredBytes), so it is shown as approximate ("~") and the
 * ETA is dropped once the fetch has passed it.
 */
import { terminalSafe } from '../../src/text/terminal-safe.ts'
import type { FetchProgress } from '../../src/content/fetch-progress.ts'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export function formatBytes (n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`
  if (n >= KiB) return `${(n / KiB).toFixed(1)} KiB`
  return `${n} B`
}

export function formatDuration (ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/**
 * "12.0 MiB of ~549.3 MiB (2 %), 45.1 MiB/s, ETA 12 s" while it runs;
 * "549.3 MiB in 12 s (45.8 MiB/s)" once done. The rate is the mean since the
 * fetch began: steadier than the last interval's, and honest about stalls.
 */
export function fetchProgressLine (p: FetchProgress): string {
  const secs = p.elapsedMs / 1000
  const rate = secs > 0 ? p.bytes / secs : 0
  const rateText = secs > 0 ? `${formatBytes(rate)}/s` : '…'
  if (p.done) return `${formatBytes(p.bytes)} in ${formatDuration(p.elapsedMs)} (${rateText})`
  const parts = [formatBytes(p.bytes)]
  const declared = p.declaredBytes
  if (declared != null && declared > 0 && p.bytes <= declared) {
    parts[0] += ` of ~${formatBytes(declared)} (${Math.floor(100 * p.bytes / declared)} %)`
    parts.push(rateText)
    if (rate > 0) parts.push(`ETA ${formatDuration(1000 * (declared - p.bytes) / rate)}`)
  } else {
    parts.push(rateText)
  }
  return parts.join(', ')
}

/**
 * One line rewritten in place on a terminal (carriage return, clear to end of
 * line); nothing at all elsewhere, where a log would fill with partial lines.
 */
export class StatusLine {
  private readonly stream: NodeJS.WriteStream
  private shown = false

  constructor (stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream
  }

  get enabled (): boolean {
    return this.stream.isTTY === true
  }

  update (text: string): void {
    if (!this.enabled) return
    // cut to the terminal's width: a wrapped line cannot be rewritten by \r
    // (a pseudo-terminal may report 0 columns: then $COLUMNS, else 80)
    const width = (this.stream.columns ?? 0) > 0 ? this.stream.columns : Number(process.env.COLUMNS) > 0 ? Number(process.env.COLUMNS) : 80
    this.stream.write(`\r\x1b[K${terminalSafe(text).slice(0, Math.max(10, width - 1))}`)
    this.shown = true
  }

  /** leave the line as it is and move below it */
  end (text?: string): void {
    if (!this.enabled) return
    if (text != null) this.update(text)
    if (this.shown) this.stream.write('\n')
    this.shown = false
  }
}
