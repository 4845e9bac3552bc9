/**
 * Writes a UnixFS directory DAG to disk. The DAG may come from an untrusted
 * peer, so the writer assumes hostile names and layouts:
 * - entry names "", ".", "..", or containing "/" or NUL are refused, so every
 *   entry lands directly inside the directory being written;
 * - every directory is created fresh (mkdir without `recursive`) and every
 *   file with O_CREAT|O_EXCL|O_NOFOLLOW ('wx'), which fails on anything
 *   already there, including a symlink written earlier in this export: the
 *   writer never writes THROUGH a symlink (a DAG holding `a -> /etc` and a
 *   file `a/passwd` fails instead of overwriting /etc/passwd);
 * - symlinks are recreated as symlinks with their stored target text; they
 *   are never followed or resolved while writing;
 * - three caps bound what a DAG can make the writer do, whatever it declares
 *   (see FetchLimits): file bytes, counted as they stream; entries created;
 *   bytes of DAG structure read (directory and HAMT blocks, file nodes, a
 *   floor per file leaf; see read-file.ts). Blocks are addressed by hash, so one
 *   block can be linked any number of times: two blocks of ~0.3 MB can name
 *   25 million empty files, and HAMT shards linking one shard over and over
 *   name none while their walk never ends. So entries and directory bytes are
 *   counted per visit, not per block, and each is checked before the entry
 *   that would exceed it is created;
 * - the tree is written into a fresh sibling of the target and renamed into
 *   place only when complete: a failed export (a cap, a bad name, an abort)
 *   leaves no partial tree, and an existing target is replaced only by a
 *   complete export, never emptied by a failed one.
 * No mtime is stored, and of modes only whether a file is executable
 * (profile.ts): files get 0755 if so, else 0644, whatever the umask;
 * directories 0755 (minus umask).
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { chmod, lstat, mkdir, open, opendir, rename, rm, symlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { exporter } from 'ipfs-unixfs-exporter'
import { NotADirectoryError, ContentTooLargeError, TargetNotEmptyError, UnsafePathError, UnsupportedFileTypeError, UnsupportedNameError } from './errors.ts'
import type { SizeLimitUnit } from './errors.ts'
import { DEFAULT_FETCH_LIMITS, BLOCK_VISIT_MIN_BYTES } from './limits.ts'
import { readFile } from './read-file.ts'
import type { FileRoot } from './read-file.ts'
import type { FetchLimits } from './limits.ts'
import { prefetchBounds, prefetchDag } from './prefetch.ts'
import { trackFetchProgress } from './fetch-progress.ts'
import { TransferFeed } from './transfer-feed.ts'
import type { LocalHas } from './transfer-feed.ts'
import type { FetchProgress } from './fetch-progress.ts'
import type { ReadableBlockstore } from './stores.ts'
import type { ExporterProgressEvents, IdentityNode, RawNode, ReadableStorage, UnixFSDirectory, UnixFSEntry, UnixFSFile } from 'ipfs-unixfs-exporter'
import type { FileHandle } from 'node:fs/promises'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { EXECUTABLE_MODE, isExecutableMode } from './profile.ts'

export { DEFAULT_FETCH_LIMITS, BLOCK_VISIT_MIN_BYTES }
export type { FetchLimits }

export interface ExportOptions extends Partial<FetchLimits> {
  signal?: AbortSignal
  onProgress?: (evt: ExporterProgressEvents) => void
  /**
   * How the caller's user raises each cap (a flag, a config key), appended to
   * the ContentTooLargeError's message: the export does not know who called it.
   */
  remedy?: Partial<Record<SizeLimitUnit, string>>
  /** called as each entry is created (before a file's bytes are written) */
  onEntry?: (kind: 'file' | 'directory' | 'symlink', path: string) => void
  /** replace a non-empty target (once the export is complete) instead of failing with TargetNotEmptyError */
  overwrite?: boolean
  /**
   * Mode of every regular file written, instead of the tree's own (0o755 for
   * a file the DAG marks executable, else 0o644). A root filesystem added
   * before executables were marked (issue 18) holds programs with no mark:
   * environments are still exported with 0o755 throughout.
   */
  fileMode?: number
  /**
   * Fetch the DAG's blocks this many at a time before writing (prefetch.ts),
   * within what the caps allow: over the network the export's one-block-at-a-
   * time reads are round trips (a 549 MB tree of 12,627 files took minutes).
   * Absent or 0: none (blocks are read as the export needs them).
   */
  prefetch?: number
  /**
   * Fetch the DAG first by a faster path than block-by-block reads (the node's
   * DAG transfer: one stream per providing peer, src/net/dag-transfer/),
   * within the bounds the caps allow. What it leaves missing, the prefetch and
   * the export fetch as before: it may fail or stop short without harm.
   */
  transfer?: (root: CID, bounds: { maxBlocks: number, maxBytes: number }, options: { signal?: AbortSignal, onBlock: (cid: CID, block: Uint8Array) => void }) => Promise<{ complete: boolean }>
  /** the fetch's progress (blocks and bytes read, the DAG's declared size), at most every 250 ms and once when complete */
  onFetchProgress?: (p: FetchProgress) => void
}

export interface ExportResult {
  bytes: number
  files: number
  directories: number
  symlinks: number
}

interface ExportState extends ExportResult {
  entries: number
  directoryBytes: number
  blockstore: ReadableStorage
  limits: FetchLimits
  options: ExportOptions
}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const utf8 = new TextDecoder('utf-8', { fatal: true })

const LIMIT_OPTION: Record<SizeLimitUnit, keyof FetchLimits> = { bytes: 'maxBytes', entries: 'maxEntries', 'directory-bytes': 'maxDirectoryBytes' }

function overLimit (state: ExportState, unit: SizeLimitUnit): ContentTooLargeError {
  const option = LIMIT_OPTION[unit]
  return new ContentTooLargeError(state.limits[option], unit, state.options.remedy?.[unit] ?? `raise the ${option} option`)
}

/**
 * The blockstore as one entry sees it: counts the bytes of every block read
 * through it (at least BLOCK_VISIT_MIN_BYTES each). An entry is resolved
 * through its own tap; once it is known to be a directory or a file node, what
 * was read (its block) and everything read later through it (the HAMT shards
 * a listing walks) count as structure bytes, per visit. A file's children are
 * read and counted by read-file.ts.
 */
class BlockTap {
  private readonly store: ReadableStorage
  private pending = 0
  private counting: ((n: number) => void) | undefined

  constructor (store: ReadableStorage) {
    this.store = store
  }

  async * get (cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    let size = 0
    for await (const chunk of this.store.get(cid, options)) {
      size += chunk.byteLength
      this.count(chunk.byteLength)
      yield chunk
    }
    if (size < BLOCK_VISIT_MIN_BYTES) this.count(BLOCK_VISIT_MIN_BYTES - size)
  }

  private count (n: number): void {
    if (this.counting != null) this.counting(n)
    else this.pending += n
  }

  /** count what was read so far, and from now on, with `add` */
  countAs (add: (n: number) => void): void {
    this.counting = add
    const n = this.pending
    this.pending = 0
    add(n)
  }
}

function countDirectoryBytes (state: ExportState, n: number): void {
  state.directoryBytes += n
  if (state.directoryBytes > state.limits.maxDirectoryBytes) throw overLimit(state, 'directory-bytes')
}

/** Resolves `cid` through a tap of its own; a directory's block bytes are counted before it is returned. */
async function resolveEntry (cid: CID, state: ExportState): Promise<UnixFSEntry> {
  const { signal, onProgress } = state.options
  const tap = new BlockTap(state.blockstore)
  const entry = await exporter(cid, tap, { signal, onProgress })
  // directories (and the HAMT shards their listing reads later) and the root
  // node of a file or symlink count their bytes; a raw or identity file is a
  // leaf: a visit's worth, its bytes are file bytes
  if (entry.type === 'directory' || entry.type === 'file') tap.countAs(n => { countDirectoryBytes(state, n) })
  else countDirectoryBytes(state, BLOCK_VISIT_MIN_BYTES)
  return entry
}

function checkName (name: string, parent: string): void {
  // each of these would place the entry somewhere other than directly in
  // `parent` (or fail obscurely): ".." climbs out, "/" descends into or
  // through something else, NUL truncates the path in the kernel
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnsafePathError(join(parent, name), 'entry name must be a single path component')
  }
}

function isExists (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'EEXIST'
}

async function writeAll (handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    offset += bytesWritten
  }
}

function countBytes (state: ExportState, n: number): void {
  state.bytes += n
  if (state.bytes > state.limits.maxBytes) throw overLimit(state, 'bytes')
}

async function writeFileEntry (entry: UnixFSFile | RawNode | IdentityNode, path: string, state: ExportState): Promise<void> {
  const { signal } = state.options
  // fail early on a declared size over the cap; the streamed count below is
  // what actually enforces it
  if (state.bytes + Number(entry.size) > state.limits.maxBytes) throw overLimit(state, 'bytes')
  let handle: FileHandle
  try {
    handle = await open(path, FILE_FLAGS, 0o600)
  } catch (err) {
    if (isExists(err)) throw new UnsafePathError(path, 'already exists (duplicate entry name?)')
    throw err
  }
  state.options.onEntry?.('file', path)
  const root: FileRoot = entry.type === 'file'
    ? { kind: 'pb', cid: entry.cid, node: entry.node, unixfs: entry.unixfs }
    : { kind: 'bytes', cid: entry.cid, bytes: entry.node }
  try {
    // not the exporter's content(): see read-file.ts. Every block of the
    // file's structure counts toward the same budget as directory blocks, per
    // visit, so a file DAG that shares its nodes cannot buy unbounded reads.
    for await (const chunk of readFile(state.blockstore, root, { signal, onBlock: (n) => { countDirectoryBytes(state, n) } })) {
      countBytes(state, chunk.byteLength)
      await writeAll(handle, chunk)
    }
    // set explicitly, not through open()'s mode: the worker's umask must not
    // decide whether a program in a source or an environment can run
    const executable = entry.type === 'file' && isExecutableMode(entry.unixfs.mode)
    await handle.chmod(state.options.fileMode ?? (executable ? EXECUTABLE_MODE : 0o644))
  } finally {
    await handle.close()
  }
  state.files++
}

async function writeEntry (entry: UnixFSEntry, path: string, state: ExportState): Promise<void> {
  state.options.signal?.throwIfAborted()
  // counted before anything is created: the entry over the cap never exists
  if (state.entries + 1 > state.limits.maxEntries) throw overLimit(state, 'entries')
  state.entries++

  switch (entry.type) {
    case 'directory':
      try {
        await mkdir(path, 0o755)
      } catch (err) {
        if (isExists(err)) throw new UnsafePathError(path, 'already exists (duplicate entry name?)')
        throw err
      }
      state.directories++
      state.options.onEntry?.('directory', path)
      await writeDirectoryContents(entry, path, state)
      return
    case 'raw':
    case 'identity':
      await writeFileEntry(entry, path, state)
      return
    case 'file': {
      const kind = entry.unixfs.type
      if (kind === 'symlink') {
        await writeSymlink(entry.unixfs.data ?? new Uint8Array(0), path, state)
        return
      }
      if (kind === 'file' || kind === 'raw') {
        await writeFileEntry(entry, path, state)
        return
      }
      throw new UnsupportedFileTypeError(path, `unixfs ${kind}`)
    }
    default:
      throw new UnsupportedFileTypeError(path, entry.type)
  }
}

async function writeSymlink (data: Uint8Array, path: string, state: ExportState): Promise<void> {
  let target: string
  try {
    target = utf8.decode(data)
  } catch {
    throw new UnsupportedNameError(path, 'symlink target is not valid UTF-8')
  }
  if (target === '' || target.includes('\0')) throw new UnsafePathError(path, 'symlink target is empty or contains NUL')
  try {
    // written as-is: whether a link points outside the tree is for whoever
    // follows it later to judge; this writer never follows it
    await symlink(target, path)
  } catch (err) {
    if (isExists(err)) throw new UnsafePathError(path, 'already exists (duplicate entry name?)')
    throw err
  }
  state.symlinks++
  state.options.onEntry?.('symlink', path)
}

async function writeDirectoryContents (dir: UnixFSDirectory, path: string, state: ExportState): Promise<void> {
  const { signal, onProgress } = state.options
  for await (const child of dir.entries({ signal, onProgress })) {
    checkName(child.name, path)
    const entry = await resolveEntry(child.cid, state)
    await writeEntry(entry, join(path, child.name), state)
  }
}

async function isEmptyDirectory (path: string): Promise<boolean> {
  // one entry is enough to know: a huge existing target is not listed whole
  const dir = await opendir(path)
  try {
    return (await dir.read()) == null
  } finally {
    await dir.close()
  }
}

type TargetState = { kind: 'absent' } | { kind: 'directory', empty: boolean, mode: number }

/** What is at `target` now; refuses what an export must never replace. */
async function inspectTarget (target: string, overwrite: boolean): Promise<TargetState> {
  let st
  try {
    st = await lstat(target)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return { kind: 'absent' }
  }
  if (st.isSymbolicLink()) throw new UnsafePathError(target, 'export target is a symlink')
  if (!st.isDirectory()) throw new NotADirectoryError(target, 'an existing non-directory')
  const empty = await isEmptyDirectory(target)
  if (!empty && !overwrite) throw new TargetNotEmptyError(target)
  return { kind: 'directory', empty, mode: st.mode & 0o7777 }
}

/** Moves every entry of `staged` (a directory inside `target`) into `target`, then removes `staged`. */
async function moveEntriesUp (staged: string, target: string): Promise<void> {
  const dir = await opendir(staged)
  const names: string[] = []
  for await (const e of dir) names.push(e.name)
  for (const name of names) await rename(join(staged, name), join(target, name))
  await rm(staged, { recursive: true, force: true })
}

/**
 * Puts the complete tree `staged` at `target`. rename(2) replaces an absent
 * target or an empty directory in one step; a non-empty one (overwrite) is
 * first moved aside and removed only once the new tree is in place.
 */
async function putInPlace (staged: string, target: string, was: TargetState, tag: string): Promise<void> {
  // an existing target keeps its mode (a user's 0700 directory stays 0700)
  if (was.kind === 'directory') await chmod(staged, was.mode)
  if (was.kind === 'absent' || was.empty) {
    await rename(staged, target)
    return
  }
  const aside = join(dirname(target), `${basename(target)}.concur-old-${tag}`)
  await rename(target, aside)
  try {
    await rename(staged, target)
  } catch (err) {
    await rename(aside, target).catch(() => {})
    throw err
  }
  await rm(aside, { recursive: true, force: true })
}

/**
 * Writes the UnixFS directory `cid` into `dir` (created if missing; must be
 * empty unless `overwrite`), within the caps of `options` (each defaulting to
 * DEFAULT_FETCH_LIMITS). Over a cap: ContentTooLargeError (ERR_CONTENT_TOO_LARGE)
 * naming it. On any failure `dir` is as it was before the call.
 */
export async function exportToDirectory (blockstore: ReadableStorage, cid: CID, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  options.signal?.throwIfAborted()
  const limits: FetchLimits = {
    maxBytes: options.maxBytes ?? DEFAULT_FETCH_LIMITS.maxBytes,
    maxEntries: options.maxEntries ?? DEFAULT_FETCH_LIMITS.maxEntries,
    maxDirectoryBytes: options.maxDirectoryBytes ?? DEFAULT_FETCH_LIMITS.maxDirectoryBytes
  }
  // what the store holds locally: its own `has` (never the progress wrapper's, which has none)
  const has = (blockstore as Partial<LocalHas>).has?.bind(blockstore)
  const tracker = options.onFetchProgress != null ? trackFetchProgress(blockstore, cid, options.onFetchProgress) : undefined
  if (tracker != null) blockstore = tracker.store
  // the transfer and the prefetch after it run beside the export (transfer-feed.ts), which reads what they bring as it comes
  const fetching = startFetching(blockstore, has, cid, limits, options, (c, block) => { tracker?.count(c, block) })
  try {
    // without a feed, the export begins once the fetching has ended, as it always did
    if (fetching.store == null) await fetching.done()
    const result = await exportTree(fetching.store ?? blockstore, cid, dir, limits, options)
    // the tree is written: how the fetching ends no longer matters to it, but
    // nothing of it may outlive this call
    await fetching.done().catch(() => {})
    tracker?.finish()
    return result
  } catch (err) {
    await fetching.stop(err as Error)
    throw err
  } finally {
    fetching.close()
  }
}

interface Fetching {
  /** what the export reads through, beside the fetching (none: no feed, so the export waits for the fetching to end) */
  store?: ReadableStorage
  /** resolves once the transfer and the prefetch have ended */
  done: () => Promise<void>
  /** ends them early (the export failed) and waits for that */
  stop: (reason: Error) => Promise<void>
  /** the export has ended: the feed lets go of what it holds, and any read through it fails */
  close: () => void
}

/**
 * Starts the transfer, then the prefetch if the transfer left blocks
 * missing. With a store that can tell what it holds locally (`has`), the
 * export begins at once, through a TransferFeed; without, it begins once they
 * have ended, as before.
 */
function startFetching (blockstore: ReadableStorage, has: LocalHas['has'] | undefined, cid: CID, limits: FetchLimits, options: ExportOptions, onBlock: (cid: CID, block: Uint8Array) => void): Fetching {
  const transfer = options.transfer
  const prefetch = options.prefetch ?? 0
  if (transfer == null && prefetch <= 0) return { done: async () => {}, stop: async () => {}, close: () => {} }
  const ac = new AbortController()
  const abort = (): void => { ac.abort(options.signal?.reason) }
  options.signal?.addEventListener('abort', abort, { once: true })
  const signal = ac.signal
  const feed = transfer != null && has != null ? new TransferFeed(blockstore as ReadableBlockstore, { has }) : undefined
  const run = (async () => {
    let complete = false
    try {
      if (transfer != null) {
        try {
          complete = (await transfer(cid, prefetchBounds(limits), { signal, onBlock: (c, block) => { onBlock(c, block); feed?.arrived(c, block) } })).complete
        } catch (err) {
          if (signal.aborted) throw err
          // the blocks it did not bring are read by the prefetch and the export, from bitswap
        }
      }
      // a complete transfer left nothing to prefetch: walking the DAG again would read (and check) every block once more
      if (!complete && prefetch > 0) {
        await prefetchDag(blockstore as ReadableBlockstore, cid, { concurrency: prefetch, ...prefetchBounds(limits), signal })
      }
    } finally {
      // only now may the export ask the network for a block itself: while the
      // prefetch runs, the blocks it wants are on their way already
      feed?.ended()
      options.signal?.removeEventListener('abort', abort)
    }
  })()
  // reported by done() or stop(); never unhandled while the export runs
  run.catch(() => {})
  return {
    ...(feed != null ? { store: feed.store as ReadableStorage } : {}),
    done: async () => { await run },
    stop: async (reason) => { ac.abort(reason); await run.catch(() => {}) },
    close: () => { feed?.close() }
  }
}

async function exportTree (blockstore: ReadableStorage, cid: CID, dir: string, limits: FetchLimits, options: ExportOptions): Promise<ExportResult> {
  const state: ExportState = { bytes: 0, files: 0, directories: 0, symlinks: 0, entries: 0, directoryBytes: 0, blockstore, limits, options }
  const root = await resolveEntry(cid, state)
  if (root.type !== 'directory') throw new NotADirectoryError(cid.toString(), `a ${root.type === 'file' ? `unixfs ${root.unixfs.type}` : root.type} node`)
  const target = resolve(dir)
  const was = await inspectTarget(target, options.overwrite === true)
  await mkdir(dirname(target), { recursive: true, mode: 0o755 })
  const tag = randomBytes(6).toString('hex')
  // An existing empty directory stays the one the user named (it may be a
  // mount point, or sit in a directory only root may write): the tree is
  // staged inside it and its entries moved up when complete. Otherwise a
  // sibling: same filesystem, so the final rename is atomic.
  const inside = was.kind === 'directory' && was.empty
  const staged = inside ? join(target, `.concur-partial-${tag}`) : join(dirname(target), `${basename(target)}.concur-partial-${tag}`)
  await mkdir(staged, 0o755)
  try {
    await writeDirectoryContents(root, staged, state)
    if (inside) await moveEntriesUp(staged, target)
    else await putInPlace(staged, target, was, tag)
  } catch (err) {
    await rm(staged, { recursive: true, force: true })
    throw err
  }
  return { bytes: state.bytes, files: state.files, directories: state.directories, symlinks: state.symlinks }
}
