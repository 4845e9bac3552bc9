/**
 * The layers: protocol/ (pure rules) ← src/ (services) ← node/ (wiring and
 * rendering) ← bootstrap/ only for its peer list. An import never points up:
 * protocol/ imports nothing of ours outside protocol/, src/ nothing from
 * node/, and nothing imports test/. (Cycles are `npm run cycles`; purity of
 * protocol/ is test/protocol/protocol-is-pure.test.ts.)
 */
import { readFile, readdir } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

async function tsFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) out.push(relative(ROOT, join(e.parentPath, e.name)))
  }
  return out
}

/** the top-level directory of each relative import of a file */
async function importedLayers (file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8')
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map(m => m[1] ?? m[2] ?? '')
  return specs.map(s => relative(ROOT, resolve(ROOT, dirname(file), s)).split('/')[0] ?? '')
}

const ALLOWED: Record<string, string[]> = {
  protocol: ['protocol'],
  src: ['src', 'protocol'],
  bootstrap: ['bootstrap'],
  node: ['node', 'src', 'protocol', 'bootstrap']
}

describe('imports point down the layers', () => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`${layer}/ imports only from ${allowed.join(', ')}`, async () => {
      const bad: string[] = []
      for (const file of await tsFiles(layer)) {
        for (const target of await importedLayers(file)) if (!allowed.includes(target)) bad.push(`${file} → ${target}/`)
      }
      expect(bad).toEqual([])
    })
  }

  it('the check sees an upward import (it can fail)', async () => {
    // node/daemon.ts imports from src/: seen from src/, that would be upward
    const targets = await importedLayers('node/daemon.ts')
    expect(targets).toContain('src')
    expect(ALLOWED.src).not.toContain('node')
  })
})
