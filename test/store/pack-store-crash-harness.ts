/**
 * The parent side of the pack store's crash tests: runs
 * pack-store-crash-child.ts under the same Node as the tests, reads what it
 * acknowledged line by line, SIGKILLs it when told to, and checks a reopened
 * store against those acknowledgements.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { CID } from 'multiformats/cid'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { hashesTo, readBlock } from './pack-store-helpers.ts'
import type { PackBlockstoreInit, RecoveryReport } from '../../src/store/pack/index.ts'

const CHILD = fileURLToPath(new URL('./pack-store-crash-child.ts', import.meta.url))

/** What the store promised, from the children's lines, across rounds. */
export class Ledger {
  readonly acked = new Set<string>()
  readonly deleting = new Set<string>()
  readonly deleted = new Set<string>()

  read (line: string): void {
    const [word, cid] = line.split(' ')
    if (cid == null) return
    if (word === 'ack') this.acked.add(cid)
    else if (word === 'deleting') this.deleting.add(cid)
    else if (word === 'deleted') this.deleted.add(cid)
  }
}

export interface ChildRun { lines: string[], signal: NodeJS.Signals | null, code: number | null, stderr: string }

/**
 * Runs the child; `killWhen` sees each line as it arrives and returns true to
 * SIGKILL the child right then (the store is usually mid-write by the time
 * the signal lands). Bounded by `timeoutMs`.
 */
export async function runChild (args: string[], ledger: Ledger, killWhen: (line: string, count: number) => boolean, timeoutMs = 30_000): Promise<ChildRun> {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  let killed = false
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  child.stdout.on('data', (c: Buffer) => {
    partial += c.toString()
    const parts = partial.split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      ledger.read(line)
      if (!killed && killWhen(line, lines.length)) {
        killed = true
        child.kill('SIGKILL')
      }
    }
  })
  const guard = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => { child.on('close', (c, s) => { resolve([c, s]) }) })
  clearTimeout(guard)
  // the pipe may still hold lines written just before the kill
  if (partial !== '') { lines.push(partial); ledger.read(partial) }
  return { lines, signal, code, stderr }
}

/**
 * Reopens the store and checks it against the ledger: it opens without an
 * error; every acknowledged block not being deleted is there with bytes that
 * hash to its CID; every acknowledged delete stuck; every block it serves at
 * all hashes to its CID; no record failed its check.
 */
export async function checkAgainstLedger (dir: string, init: PackBlockstoreInit, ledger: Ledger): Promise<{ recovery: RecoveryReport, blocks: number }> {
  const store = new PackBlockstore(dir, init)
  await store.open()
  try {
    const recovery = store.recovery as RecoveryReport
    expect(recovery.corrupt).toEqual([])
    const missing: string[] = []
    const wrong: string[] = []
    const resurrected: string[] = []
    for (const s of ledger.acked) {
      const cid = CID.parse(s)
      if (ledger.deleted.has(s)) {
        if (store.has(cid)) resurrected.push(s)
        continue
      }
      if (ledger.deleting.has(s)) continue
      if (!store.has(cid)) { missing.push(s); continue }
      if (!hashesTo(cid, await readBlock(store, cid))) wrong.push(s)
    }
    expect({ missing, wrong, resurrected }).toEqual({ missing: [], wrong: [], resurrected: [] })
    let blocks = 0
    for await (const { cid } of store.getAll()) {
      expect(hashesTo(cid, await readBlock(store, cid))).toBe(true)
      blocks++
    }
    expect(store.stats().blocks).toBe(blocks)
    return { recovery, blocks }
  } finally {
    await store.close()
  }
}
