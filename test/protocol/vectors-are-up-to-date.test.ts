import { readFileSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { expect, it } from 'vitest'
import { VECTORS_DIR, buildVectors, vectorFileText } from './generate-vectors.ts'

it('the generator is deterministic and the committed vector files are exactly its output', () => {
  const a = buildVectors()
  const b = buildVectors()
  expect(b).toEqual(a)
  for (const [name, vec] of Object.entries(a.signature)) {
    expect(readFileSync(resolve(VECTORS_DIR, `${name}.json`), 'utf8'), name).toBe(vectorFileText(vec))
  }
  for (const [name, vec] of Object.entries(a.pae)) {
    expect(readFileSync(resolve(VECTORS_DIR, 'pae', `${name}.json`), 'utf8'), name).toBe(vectorFileText(vec))
  }
  for (const [name, vec] of Object.entries(a.verdict)) {
    expect(readFileSync(resolve(VECTORS_DIR, 'verdict', `${name}.json`), 'utf8'), name).toBe(vectorFileText(vec))
  }
  for (const [name, vec] of Object.entries(a.equivocation)) {
    expect(readFileSync(resolve(VECTORS_DIR, 'equivocation', `${name}.json`), 'utf8'), name).toBe(vectorFileText(vec))
  }
  for (const [name, vec] of Object.entries(a.commitment)) {
    expect(readFileSync(resolve(VECTORS_DIR, 'commitment', `${name}.json`), 'utf8'), name).toBe(vectorFileText(vec))
  }
  // No stale files left behind by an older generator.
  expect(readdirSync(VECTORS_DIR).filter(f => f.endsWith('.json')).sort()).toEqual(Object.keys(a.signature).map(n => `${n}.json`).sort())
  expect(readdirSync(resolve(VECTORS_DIR, 'equivocation')).filter(f => f.endsWith('.json')).sort()).toEqual(Object.keys(a.equivocation).map(n => `${n}.json`).sort())
  expect(readdirSync(resolve(VECTORS_DIR, 'commitment')).filter(f => f.endsWith('.json')).sort()).toEqual(Object.keys(a.commitment).map(n => `${n}.json`).sort())
  expect(readdirSync(resolve(VECTORS_DIR, 'verdict')).filter(f => f.endsWith('.json')).sort()).toEqual(Object.keys(a.verdict).map(n => `${n}.json`).sort())
})
