/**
 * This repository's import graph, read from the sources: every relative
 * `import … from`, `export … from`, `import type` and `import('…')` of every
 * .ts file (type-only imports included: a cycle through types is still a
 * cycle a reader has to untangle). Used by `npm run cycles` and by
 * test/layers-point-down.test.ts.
 */
import { readFile, readdir } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export async function tsFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts') && !e.parentPath.includes('node_modules')) out.push(relative(ROOT, join(e.parentPath, e.name)))
  }
  return out.sort()
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

/** the repository-relative paths a file imports */
export async function importsOf (file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8')
  return [...text.matchAll(IMPORT)].map(m => relative(ROOT, resolve(ROOT, dirname(file), m[1] ?? m[2] ?? m[3] ?? '')))
}

export async function importGraph (dirs: string[]): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>()
  for (const dir of dirs) {
    for (const f of await tsFiles(dir)) graph.set(f, await importsOf(f))
  }
  return graph
}

/** Every cycle, as the files of one strongly connected component (Tarjan), each listed once. */
export function findCycles (graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      const selfLoop = (graph.get(v) ?? []).includes(v)
      if (scc.length > 1 || selfLoop) cycles.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return cycles
}
