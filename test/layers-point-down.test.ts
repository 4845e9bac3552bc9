/**
 * The layers: protocol/ (pure rules) ← src/ (services) ← node/ (wiring and
 * rendering), bootstrap/ beside node/ for its peer list. An import never
 * points up: protocol/ imports nothing of ours outside protocol/, src/
 * nothing from node/, and no source imports test/. And no import cycle
 * anywhere (`npm run cycles` is the same check from the command line).
 * Purity of protocol/ is test/protocol/protocol-is-pure.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { findCycles, importGraph, importsOf, tsFiles } from './tools/imports.ts'

const ALLOWED: Record<string, string[]> = {
  protocol: ['protocol'],
  src: ['src', 'protocol'],
  bootstrap: ['bootstrap'],
  node: ['node', 'src', 'protocol', 'bootstrap']
}

describe('imports point down the layers, and never in a circle', () => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`${layer}/ imports only from ${allowed.join(', ')}`, async () => {
      const bad: string[] = []
      for (const file of await tsFiles(layer)) {
        for (const target of await importsOf(file)) {
          const top = target.split('/')[0] ?? ''
          if (!allowed.includes(top)) bad.push(`${file} → ${target}`)
        }
      }
      expect(bad).toEqual([])
    })
  }

  it('the layer check sees imports (it can fail)', async () => {
    // node/daemon.ts imports from src/: seen from src/, that would be upward
    expect((await importsOf('node/daemon.ts')).some(t => t.startsWith('src/'))).toBe(true)
  })

  it('no import cycle in node/, src/, protocol/, bootstrap/ or test/', async () => {
    expect(findCycles(await importGraph(['node', 'src', 'protocol', 'bootstrap', 'test']))).toEqual([])
  })

  it('the cycle check finds a cycle, type-only and through dynamic imports too (it can fail)', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts', 'd.ts']],
      ['e.ts', []]
    ])
    expect(findCycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts'], ['d.ts']])
  })

  it('reads type-only, re-export and dynamic imports', async () => {
    // node/api/types.ts has only `import type` and `export type … from`
    expect(await importsOf('node/api/types.ts')).toContain('src/requester/types.ts')
    // node/daemon.ts loads the worker service with import()
    expect(await importsOf('node/daemon.ts')).toContain('node/worker-service.ts')
  })
})
