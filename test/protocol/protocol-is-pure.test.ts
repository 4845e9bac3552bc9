/**
 * protocol/ is pure: no node: built-ins, no libp2p or helia, no clock reads,
 * no ambient randomness — checked on the source, and transitively on every
 * module the protocol package loads (so a dependency's node build cannot sneak
 * node:crypto in, as multiformats/hashes/sha2 would).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const dir = resolve(fileURLToPath(import.meta.url), '../../../protocol')
const files = readdirSync(dir).filter(f => f.endsWith('.ts'))
const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm
const ALLOWED = [/^\.\/[\w-]+\.ts$/, /^@noble\/ed25519$/, /^@noble\/hashes\/[\w.]+$/, /^multiformats\/[\w/]+$/, /^@ipld\/dag-cbor$/]

it('every protocol/*.ts import is relative or an allowed pure package', () => {
  expect(files.length).toBeGreaterThanOrEqual(10)
  for (const f of files) {
    const src = readFileSync(resolve(dir, f), 'utf8')
    for (const m of src.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2] ?? m[3])!
      expect(spec, `${f}: ${spec}`).not.toMatch(/^node:|libp2p|helia|^(fs|path|crypto|os|child_process)$/)
      expect(ALLOWED.some(r => r.test(spec)), `${f}: ${spec} is not in the allow-list`).toBe(true)
    }
  }
})

it('no clock reads or ambient randomness in protocol/*.ts', () => {
  for (const f of files) {
    const code = readFileSync(resolve(dir, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
    expect(code, f).not.toMatch(/Date\.now\(|new Date\(\)|performance\.now|Math\.random|process\.|setTimeout|setInterval/)
  }
})

it('the transitive module graph of protocol/index.ts loads no node: built-in', () => {
  // A fresh Node process records every module resolution while importing the protocol.
  const script = `
    import { registerHooks } from 'node:module'
    const seen = new Set()
    registerHooks({ resolve (spec, ctx, next) { const r = next(spec, ctx); if (!ctx.parentURL?.startsWith('data:')) seen.add(r.url); return r } })
    await import(${JSON.stringify(resolve(dir, 'index.ts'))})
    console.log(JSON.stringify([...seen]))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: resolve(dir, '..'), encoding: 'utf8' })
  const urls = JSON.parse(out.trim().split('\n').pop()!) as string[]
  expect(urls.some(u => u.includes('@noble/ed25519'))).toBe(true)
  expect(urls.filter(u => u.startsWith('node:'))).toEqual([])
  expect(urls.filter(u => /libp2p|helia/.test(u))).toEqual([])
})
