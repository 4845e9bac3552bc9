/**
 * `npm run cycles`: exits 1, naming the files, if any import cycle exists in
 * the given directories (default: every source directory of the repository).
 */
import { findCycles, importGraph } from './imports.ts'

const dirs = process.argv.slice(2)
const graph = await importGraph(dirs.length > 0 ? dirs : ['node', 'src', 'protocol', 'bootstrap', 'test'])
const cycles = findCycles(graph)
if (cycles.length === 0) {
  process.stdout.write(`no import cycle in ${graph.size} files\n`)
} else {
  process.stderr.write(`${cycles.length} import cycle(s):\n${cycles.map((c, i) => `${i + 1}) ${c.join(' ↔ ')}`).join('\n')}\n`)
  process.exitCode = 1
}
