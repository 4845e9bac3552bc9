/** Looking at the worker's host from the test: what is left running. */
import { readFile, readdir } from 'node:fs/promises'

/** pids on this host whose command line contains `marker` (the test process itself excluded) */
export async function processesWith (marker: string): Promise<number[]> {
  const pids: number[] = []
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const cmd = (await readFile(`/proc/${d}/cmdline`)).toString().replaceAll('\0', ' ')
      // a build's `sh -c <script>` carries the marker too, and counts as left behind
      if (cmd.includes(marker)) pids.push(Number(d))
    } catch { /* gone meanwhile */ }
  }
  return pids
}
