/**
 * Adding local content under the pinned profile.
 *
 * The directory walk is done here, not with globSource: globSource follows
 * symlinks (a build could then publish /etc/passwd by planting a link), has
 * its own ideas about hidden files, and reads with 64 KiB chunks. Here:
 * - entries are visited in byte order of their names (the DAG sorts links
 *   anyway, this only makes progress and errors deterministic);
 * - regular files are opened with O_NOFOLLOW and read in 1 MiB reads, the
 *   chunk size, which is ~2x faster than 64 KiB reads;
 * - symlinks become UnixFS symlink nodes holding the target text, as kubo
 *   stores them, and are never followed;
 * - hidden files are included: they are part of the build output;
 * - devices, sockets and FIFOs are refused with UnsupportedFileTypeError,
 *   or skipped and counted with `specialFiles: 'skip'` (a build environment's
 *   /dev: the sandbox provides its own);
 * - entries the caller's `exclude` names are left out (a source's VCS
 *   directories and .concurignore: src/requester/source-filter.ts);
 * - no mtime is stored, and no mode except that a file is executable
 *   (EXECUTABLE_MODE, see profile.ts).
 */
import { constants } from 'node:fs'
import { lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { BlockWriter } from './block-writer.ts'
import { ContentTooLargeError, ImportFailedError, UnsupportedFileTypeError, UnsupportedNameError, UnsafePathError, NotADirectoryError } from './errors.ts'
import { CHUNK_SIZE, importedMode, importerOptions } from './profile.ts'
import type { WritableBlockstore } from './block-writer.ts'
import type { ImportTuning } from './profile.ts'
import type { Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type { ImportCandidate, ImporterProgressEvents, ImportResult } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'

export type { WritableBlockstore } from './block-writer.ts'

export interface AddOptions extends ImportTuning {
  signal?: AbortSignal
  /** importer progress events (file read, block written...) */
  onProgress?: (evt: ImporterProgressEvents) => void
  /** fail with ContentTooLargeError once more file bytes than this have been read */
  maxBytes?: number
  /** devices, sockets and FIFOs: refused (default) or skipped and counted */
  specialFiles?: 'refuse' | 'skip'
  /** added to the message of a refused special file: how the caller skips them */
  specialFilesRemedy?: string
  /**
   * Leave an entry (and, for a directory, everything under it) out. `path`
   * is relative to the added root, "/"-separated. Asked before the entry is
   * read, so nothing of it is opened.
   */
  exclude?: (path: string, isDirectory: boolean) => boolean
}

export interface AddDirectoryResult {
  cid: CID
  /** total bytes of regular files */
  bytes: number
  /** regular files */
  files: number
  /** directories below the root */
  directories: number
  symlinks: number
  /** special files skipped (`specialFiles: 'skip'`): how many, and the first few paths */
  skippedSpecial: { count: number, paths: string[] }
  /** entries `exclude` left out (a directory counts once) */
  excluded: number
}

/** how many skipped special files are named in AddDirectoryResult (the rest are counted) */
const LISTED_SKIPPED = 16

export interface AddFileResult {
  cid: CID
  bytes: number
}

interface WalkState {
  bytes: number
  declaredBytes: number
  files: number
  directories: number
  symlinks: number
  maxBytes: number | undefined
  signal: AbortSignal | undefined
  specialFiles: 'refuse' | 'skip'
  specialFilesRemedy: string | undefined
  exclude: ((path: string, isDirectory: boolean) => boolean) | undefined
  skippedSpecial: { count: number, paths: string[] }
  excluded: number
  // handles of files being read; closed on failure, when the importer
  // abandons its in-flight readers without finishing them
  open: Set<FileHandle>
}

// names and link targets are bytes on POSIX; UnixFS stores strings. A
// non-UTF-8 name would be mangled by a lossy decode, so it is refused.
const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeName (bytes: Uint8Array, where: string, what: string): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new UnsupportedNameError(where, `${what} is not valid UTF-8`)
  }
}

function fileTypeOf (st: Stats): string {
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFile()) return 'regular file'
  return 'unknown'
}

function newState (options: AddOptions): WalkState {
  return {
    bytes: 0,
    declaredBytes: 0,
    files: 0,
    directories: 0,
    symlinks: 0,
    maxBytes: options.maxBytes,
    signal: options.signal,
    open: new Set(),
    specialFiles: options.specialFiles ?? 'refuse',
    specialFilesRemedy: options.specialFilesRemedy,
    exclude: options.exclude,
    skippedSpecial: { count: 0, paths: [] },
    excluded: 0
  }
}

function checkDeclaredSize (state: WalkState, size: number): void {
  // fail before reading anything when lstat sizes already exceed the cap;
  // the streamed count below still catches files that grow while read
  state.declaredBytes += size
  if (state.maxBytes != null && state.declaredBytes > state.maxBytes) throw new ContentTooLargeError(state.maxBytes)
}

/**
 * Reads a regular file in CHUNK_SIZE reads. O_NOFOLLOW: if the entry was
 * swapped for a symlink after lstat, open fails instead of reading the link
 * target; O_NONBLOCK: a FIFO swapped in cannot hang the open. The fstat check
 * then refuses anything that is not the regular file that was listed.
 */
async function * readRegularFile (path: string, listed: Stats, state: WalkState): AsyncGenerator<Uint8Array, void, undefined> {
  state.signal?.throwIfAborted()
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafePathError(path, 'replaced by a symlink while being added')
    throw err
  }
  state.open.add(handle)
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new UnsupportedFileTypeError(path, fileTypeOf(st))
    if (st.ino !== listed.ino || st.dev !== listed.dev) throw new UnsafePathError(path, 'replaced while being added')
    while (true) {
      state.signal?.throwIfAborted()
      const buffer = Buffer.allocUnsafe(CHUNK_SIZE)
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_SIZE, null)
      if (bytesRead === 0) break
      state.bytes += bytesRead
      if (state.maxBytes != null && state.bytes > state.maxBytes) throw new ContentTooLargeError(state.maxBytes)
      // a short read of a fresh 1 MiB buffer is copied out, so thousands of
      // small files queued for writing do not each pin a 1 MiB allocation
      yield bytesRead < CHUNK_SIZE / 2 ? Uint8Array.prototype.slice.call(buffer, 0, bytesRead) : buffer.subarray(0, bytesRead)
    }
  } finally {
    state.open.delete(handle)
    await handle.close()
  }
}

function byteOrder (a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b)
}

/**
 * Import candidates for the tree under `root`, paths relative to it, in
 * depth-first, byte-sorted order. Only empty directories are emitted as
 * directory candidates: non-empty ones are created by the importer from
 * their children's paths (a directory candidate arriving after its children
 * would replace them).
 */
async function * walk (root: string, state: WalkState): AsyncGenerator<ImportCandidate, void, undefined> {
  const stack: string[] = ['']
  while (stack.length > 0) {
    state.signal?.throwIfAborted()
    const rel = stack.pop() as string
    const abs = rel === '' ? root : join(root, rel)
    const names = (await readdir(abs, { encoding: 'buffer' })).sort(byteOrder)
    if (names.length === 0 && rel !== '') {
      yield { path: rel }
      continue
    }
    const subdirs: string[] = []
    // what of this directory goes into the DAG: one whose every entry was
    // left out (skipped, excluded) is still there, empty, as on disk
    let kept = 0
    for (const raw of names) {
      state.signal?.throwIfAborted()
      const name = decodeName(raw, join(abs, raw.toString('latin1')), 'file name')
      const childRel = rel === '' ? name : `${rel}/${name}`
      const childAbs = join(abs, name)
      const st = await lstat(childAbs)
      if (state.exclude?.(childRel, st.isDirectory()) === true) {
        state.excluded++
        continue
      }
      if (st.isDirectory()) {
        // the importer splits paths on "/" not preceded by "\": a directory
        // named "x\" would swallow its children's separator
        if (name.endsWith('\\')) throw new UnsupportedNameError(childAbs, 'directory names ending in a backslash are not supported')
        state.directories++
        subdirs.push(childRel)
        kept++
      } else if (st.isFile()) {
        checkDeclaredSize(state, st.size)
        state.files++
        kept++
        const mode = importedMode(st.mode)
        yield { path: childRel, content: readRegularFile(childAbs, st, state), ...(mode != null ? { mode } : {}) }
      } else if (st.isSymbolicLink()) {
        const target = decodeName(await readlink(childAbs, { encoding: 'buffer' }), childAbs, 'symlink target')
        state.symlinks++
        kept++
        yield { path: childRel, link: target }
      } else if (state.specialFiles === 'skip') {
        state.skippedSpecial.count++
        if (state.skippedSpecial.paths.length < LISTED_SKIPPED) state.skippedSpecial.paths.push(childRel)
      } else {
        throw new UnsupportedFileTypeError(childAbs, fileTypeOf(st), state.specialFilesRemedy)
      }
    }
    if (kept === 0 && rel !== '') yield { path: rel }
    // reversed so that subdirectories are popped in sorted order
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i] as string)
  }
}

async function closeAll (state: WalkState): Promise<void> {
  await Promise.allSettled([...state.open].map(async h => h.close()))
  state.open.clear()
}

async function lastResult (results: AsyncIterable<ImportResult>): Promise<ImportResult> {
  let last: ImportResult | undefined
  for await (const result of results) last = result
  if (last == null) throw new ImportFailedError('the importer yielded no root entry')
  return last
}

/**
 * Adds the tree under `dir` as one UnixFS directory (the root CID is `dir`
 * itself, like `ipfs add -r dir`). The root path itself is resolved once (it
 * is the caller's explicit choice); nothing inside it is ever followed.
 */
export async function addDirectory (blockstore: WritableBlockstore, dir: string, options: AddOptions = {}): Promise<AddDirectoryResult> {
  const root = await realpath(dir)
  const rootStat = await stat(root)
  if (!rootStat.isDirectory()) throw new NotADirectoryError(dir, fileTypeOf(rootStat))
  const state = newState(options)
  const writer = new BlockWriter(blockstore, { signal: options.signal })
  try {
    const opts = importerOptions(options, { wrapWithDirectory: true, onProgress: options.onProgress })
    const result = await lastResult(importer(walk(root, state), writer, opts))
    await writer.flush()
    return { cid: result.cid, bytes: state.bytes, files: state.files, directories: state.directories, symlinks: state.symlinks, skippedSpecial: state.skippedSpecial, excluded: state.excluded }
  } finally {
    await closeAll(state)
  }
}

/** Adds one regular file (not a symlink, not a directory) as a UnixFS file. */
export async function addFile (blockstore: WritableBlockstore, path: string, options: AddOptions = {}): Promise<AddFileResult> {
  const st = await lstat(path)
  if (!st.isFile()) throw new UnsupportedFileTypeError(path, fileTypeOf(st))
  const state = newState(options)
  checkDeclaredSize(state, st.size)
  const writer = new BlockWriter(blockstore, { signal: options.signal })
  try {
    const opts = importerOptions(options, { onProgress: options.onProgress })
    const mode = importedMode(st.mode)
    const result = await lastResult(importer([{ content: readRegularFile(path, st, state), ...(mode != null ? { mode } : {}) }], writer, opts))
    await writer.flush()
    return { cid: result.cid, bytes: state.bytes }
  } finally {
    await closeAll(state)
  }
}

/** Adds bytes held in memory (build logs, small manifests) as a UnixFS file. */
export async function addBytes (blockstore: WritableBlockstore, bytes: Uint8Array, options: Omit<AddOptions, 'maxBytes'> = {}): Promise<CID> {
  const writer = new BlockWriter(blockstore, { signal: options.signal })
  const opts = importerOptions(options, { onProgress: options.onProgress })
  const result = await lastResult(importer([{ content: bytes }], writer, opts))
  await writer.flush()
  return result.cid
}
