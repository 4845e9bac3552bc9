/**
 * Build environments by CID, exported once and shared read-only by every job
 * that names them (issue 18). A 549 MB Debian build root used to be exported
 * again for each job, 22–53 s per job per worker, before any build began.
 *
 * An entry is `<dir>/<cid>`: the UnixFS tree of that CID, written by
 * exportToDirectory, which stages it beside its target and renames it into
 * place only when complete, so an entry that exists is whole (a SIGKILL
 * mid-export leaves a `.concur-partial-*` sibling, removed at the next
 * start); `<dir>/<cid>.json` beside it holds its sizes and last use, so a
 * start neither walks every tree nor forgets which was used last. The
 * sandbox binds an entry read-only (`--ro-bind`), so no build can
 * change what the next one sees; the directory is the worker's own (0711
 * under the sandbox scratch root), so no other local user can either.
 *
 * Bounded: the entries not in use are evicted least recently used first once
 * the cache holds more than `maxBytes` (an entry in use is never removed; one
 * larger than the bound alone goes once its last job ends). `maxBytes` 0
 * turns caching off: each job exports its environment into its own work
 * directory, as before.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { logger } from '@libp2p/logger'
import type { AbortOptions } from '@libp2p/interface'
import { exportToDirectory } from '../content/index.ts'
import type { ExportOptions, ReadableBlockstore } from '../content/index.ts'

const log = logger('concur:worker:env-cache')

/** the default bound of the cache (`--env-cache`): a few Debian build roots */
export const DEFAULT_ENV_CACHE_BYTES = 4 * 1024 ** 3

export interface EnvCacheInit {
  dir: string
  maxBytes: number
  now?: () => number
}

export interface EnvEntry {
  cid: string
  /** file bytes, as exported */
  bytes: number
  files: number
  lastUsed: number
  /** jobs using it now */
  users: number
}

/** what `acquire` hands a job: the tree's path, read-only to it, and how it got there */
export interface EnvLease {
  path: string
  /** true: it was already here, nothing was fetched or written */
  cached: boolean
  /** the job is done with it (idempotent) */
  release: () => void
}

export type EnvExportOptions = Omit<ExportOptions, 'overwrite'> & AbortOptions

/** names of entries: canonical CID strings (what a job names), never a path */
function entryName (cid: string): string {
  const parsed = CID.parse(cid)
  // the canonical string, so one tree has one entry whatever base the job used
  return parsed.toString()
}

export class EnvCache {
  private readonly init: EnvCacheInit
  private readonly entries = new Map<string, EnvEntry>()
  private readonly exporting = new Map<string, Promise<EnvEntry>>()
  /** entries being removed: an export of the same CID waits for the removal */
  private readonly removing = new Map<string, Promise<void>>()
  private readonly now: () => number

  constructor (init: EnvCacheInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  /** where the entries are */
  get dir (): string {
    return this.init.dir
  }

  /** the bound on the entries' bytes (0: nothing is kept) */
  get maxBytes (): number {
    return this.init.maxBytes
  }

  get enabled (): boolean {
    return this.init.maxBytes > 0
  }

  /** removes what a crash left half-written and reads back the complete entries */
  async start (): Promise<void> {
    if (!this.enabled) return
    await mkdir(this.init.dir, { recursive: true, mode: 0o711 })
    for (const name of await readdir(this.init.dir)) {
      const path = join(this.init.dir, name)
      if (name.includes('.concur-partial-')) {
        log('removing a half-written environment %s', name)
        await rm(path, { recursive: true, force: true })
        continue
      }
      let cid: string
      try { cid = entryName(name) } catch { continue }
      if (cid !== name) continue
      // sizes and last use from the entry's note; walking the tree (every
      // file's stat, ~12,600 for one Debian build root) only when it is
      // missing or torn (a crash while it was written)
      const kept = await readMeta(this.metaPath(cid))
      const entry = kept != null ? { cid, ...kept, users: 0 } : { cid, ...(await treeSize(path)), lastUsed: (await stat(path)).mtimeMs, users: 0 }
      this.entries.set(cid, entry)
      if (kept == null) await this.writeMeta(entry)
    }
    // notes whose entry is gone
    for (const name of await readdir(this.init.dir)) {
      if (name.endsWith(META) && !this.entries.has(name.slice(0, -META.length))) await rm(join(this.init.dir, name), { force: true })
    }
  }

  /** beside each entry: its sizes and when a job last used it (so the least recently used survives a restart) */
  private metaPath (cid: string): string {
    return join(this.init.dir, `${cid}${META}`)
  }

  private async writeMeta (e: EnvEntry): Promise<void> {
    await writeFile(this.metaPath(e.cid), JSON.stringify({ bytes: e.bytes, files: e.files, lastUsed: e.lastUsed }))
  }

  list (): EnvEntry[] {
    return [...this.entries.values()].map(e => ({ ...e }))
  }

  bytes (): number {
    let n = 0
    for (const e of this.entries.values()) n += e.bytes
    return n
  }

  /**
   * The environment `cid`, exported from `blockstore` if it is not here yet
   * (one export per CID at a time: a second job waits for the first's). The
   * caller must `release()` it when its build ends.
   */
  async acquire (blockstore: ReadableBlockstore, cid: string, options: EnvExportOptions = {}): Promise<EnvLease> {
    const name = entryName(cid)
    let cached = true
    let entry = this.entries.get(name)
    while (entry == null) {
      const running = this.exporting.get(name)
      if (running != null) {
        // another job is exporting it: its result, or, if it failed, our own try
        entry = await running.catch(() => undefined)
        entry = this.entries.get(name)
        continue
      }
      cached = false
      const p = this.export(blockstore, name, options)
      this.exporting.set(name, p)
      try {
        entry = await p
      } finally {
        this.exporting.delete(name)
      }
    }
    entry.users++
    entry.lastUsed = this.now()
    // only now, with this job counted as a user: the entry just exported is never the one to go
    if (!cached) await this.evict().catch((err: Error) => { log.error('evicting environments failed: %e', err) })
    let released = false
    const held = entry
    return {
      path: join(this.init.dir, name),
      cached,
      release: () => {
        if (released) return
        released = true
        held.users--
        held.lastUsed = this.now()
        void this.writeMeta(held).catch(() => { /* the next start walks the tree instead */ })
        void this.evict().catch((err: Error) => { log.error('evicting environments failed: %e', err) })
      }
    }
  }

  private async export (blockstore: ReadableBlockstore, name: string, options: EnvExportOptions): Promise<EnvEntry> {
    await mkdir(this.init.dir, { recursive: true, mode: 0o711 })
    await this.removing.get(name)
    const r = await exportToDirectory(blockstore, CID.parse(name), join(this.init.dir, name), options)
    const entry: EnvEntry = { cid: name, bytes: r.bytes, files: r.files, lastUsed: this.now(), users: 0 }
    await this.writeMeta(entry)
    this.entries.set(name, entry)
    log('environment %s exported: %d files, %d bytes', name, r.files, r.bytes)
    return entry
  }

  /** least recently used first, never one in use, until the cache is within its bound */
  private async evict (): Promise<void> {
    let total = this.bytes()
    if (total <= this.init.maxBytes) return
    const idle = [...this.entries.values()].filter(e => e.users === 0).sort((a, b) => a.lastUsed - b.lastUsed)
    for (const e of idle) {
      if (total <= this.init.maxBytes) break
      // gone from the map first: a job asking for it now exports it again
      this.entries.delete(e.cid)
      total -= e.bytes
      log('evicting environment %s (%d bytes, cache over %d)', e.cid, e.bytes, this.init.maxBytes)
      const gone = Promise.all([rm(join(this.init.dir, e.cid), { recursive: true, force: true }), rm(this.metaPath(e.cid), { force: true })])
        .then(() => {}).finally(() => { this.removing.delete(e.cid) })
      this.removing.set(e.cid, gone)
      await gone
    }
  }
}

const META = '.json'

async function readMeta (path: string): Promise<{ bytes: number, files: number, lastUsed: number } | null> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
    const ok = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0
    return ok(m.bytes) && ok(m.files) && ok(m.lastUsed) ? { bytes: m.bytes, files: m.files, lastUsed: m.lastUsed } : null
  } catch {
    return null
  }
}

async function treeSize (dir: string): Promise<{ bytes: number, files: number }> {
  let bytes = 0
  let files = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    files++
    bytes += (await stat(join(e.parentPath, e.name))).size
  }
  return { bytes, files }
}
