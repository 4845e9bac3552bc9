/**
 * The command-chain builder and the end-of-run classifier are pure: no
 * awaits, no processes, no files, no clock, no randomness in their source.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const dir = resolve(fileURLToPath(import.meta.url), '../../../src/sandbox')

it.each(['command-chain.ts', 'classify-run.ts'])('%s does no I/O', (file) => {
  const code = readFileSync(resolve(dir, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
  expect(code).not.toMatch(/\basync\b|\bawait\b|Promise|spawn|exec(File)?\(|node:fs|node:child_process|node:crypto|Date\.now|new Date\(|Math\.random|setTimeout|setInterval|process\./)
  for (const m of code.matchAll(/from\s+'([^']+)'/g)) {
    // bwrap-args.ts also holds bwrapRootEntries (I/O), only its pure bwrapArgs is used
    expect(['./bwrap-args.ts', './errors.ts', './host-tools.ts', './types.ts', './classify-run.ts', 'node:os']).toContain(m[1])
  }
})
