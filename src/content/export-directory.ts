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
 * - bytes are counted as they stream, so `maxBytes` holds even when the DAG
 *   lies about file sizes.
 * Nothing is stored about mtime/mode: files get 0644, directories 0755
 * (minus umask).
 */
import { constants } from 'node:fs'
import { lstat, mkdir, open, readdir, rm, rmdir, symlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { exporter } from 'ipfs-unixfs-exporter'
import { NotADirectoryError, SizeLimitError, TargetNotEmptyError, UnsafePathError, UnsupportedFileTypeError, UnsupportedNameError } from './errors.ts'
import type { ExporterProgressEvents, IdentityNode, RawNode, ReadableStorage, UnixFSDirectory, UnixFSEntry, UnixFSFile } from 'ipfs-unixfs-exporter'
import type { FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'

export interface ExportOptions {
  signal?: AbortSignal
  /** fail with SizeLimitError (unit 'bytes') once more file bytes than this were written */
  maxBytes?: number
  /** fail with SizeLimitError (unit 'entries') once more entries than this were met: caps empty-file bombs */
  maxEntries?: number
  onProgress?: (evt: ExporterProgressEvents) => void
  /** empty a non-empty target first instead of failing with TargetNotEmptyError */
  overwrite?: boolean
  /** blocks of one file node read at once (default 8) */
  blockReadConcurrency?: number
  /**
   * Mode of every regular file written (default 0o644). Modes are not part of
   * the CID (unixfs-v1-2025 without metadata), so a tree that must hold
   * programs, such as a rootfs environment, is exported with 0o755.
   */
  fileMode?: number
}

export interface ExportResult {
  bytes: number
  files: number
  directories: number
  symlinks: number
}

interface ExportState extends ExportResult {
  entries: number
  blockstore: ReadableStorage
  options: ExportOptions
}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const utf8 = new TextDecoder('utf-8', { fatal: true })

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
  const max = state.options.maxBytes
  if (max != null && state.bytes > max) throw new SizeLimitError(max, 'bytes')
}

async function writeFileEntry (entry: UnixFSFile | RawNode | IdentityNode, path: string, state: ExportState): Promise<void> {
  const { maxBytes, signal, onProgress } = state.options
  // the exporter's default is unbounded: it would start reading all 1024
  // children of a file node at once, holding up to 1 GiB in memory
  const blockReadConcurrency = state.options.blockReadConcurrency ?? 8
  // fail early on a declared size over the cap; the streamed count below is
  // what actually enforces it
  if (maxBytes != null && state.bytes + Number(entry.size) > maxBytes) throw new SizeLimitError(maxBytes, 'bytes')
  let handle: FileHandle
  try {
    handle = await open(path, FILE_FLAGS, state.options.fileMode ?? 0o644)
  } catch (err) {
    if (isExists(err)) throw new UnsafePathError(path, 'already exists (duplicate entry name?)')
    throw err
  }
  try {
    for await (const chunk of entry.content({ signal, onProgress, blockReadConcurrency })) {
      signal?.throwIfAborted()
      countBytes(state, chunk.byteLength)
      await writeAll(handle, chunk)
    }
  } finally {
    await handle.close()
  }
  state.files++
}

async function writeEntry (entry: UnixFSEntry, path: string, state: ExportState): Promise<void> {
  state.options.signal?.throwIfAborted()
  state.entries++
  const maxEntries = state.options.maxEntries
  if (maxEntries != null && state.entries > maxEntries) throw new SizeLimitError(maxEntries, 'entries')

  switch (entry.type) {
    case 'directory':
      try {
        await mkdir(path, 0o755)
      } catch (err) {
        if (isExists(err)) throw new UnsafePathError(path, 'already exists (duplicate entry name?)')
        throw err
      }
      state.directories++
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
}

async function writeDirectoryContents (dir: UnixFSDirectory, path: string, state: ExportState): Promise<void> {
  const { signal, onProgress } = state.options
  for await (const child of dir.entries({ signal, onProgress })) {
    checkName(child.name, path)
    const entry = await exporter(child.cid, state.blockstore, { signal, onProgress })
    await writeEntry(entry, join(path, child.name), state)
  }
}

/** Prepares an empty directory at `target`; returns whether it was created here. */
async function prepareTarget (target: string, overwrite: boolean): Promise<boolean> {
  let st
  try {
    st = await lstat(target)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    await mkdir(target, { recursive: true, mode: 0o755 })
    return true
  }
  if (st.isSymbolicLink()) throw new UnsafePathError(target, 'export target is a symlink')
  if (!st.isDirectory()) throw new NotADirectoryError(target, 'an existing non-directory')
  const names = await readdir(target)
  if (names.length > 0) {
    if (!overwrite) throw new TargetNotEmptyError(target)
    // fs.rm removes symlinks themselves, never what they point to
    await Promise.all(names.map(async name => rm(join(target, name), { recursive: true, force: true })))
  }
  return false
}

async function clearTarget (target: string, created: boolean): Promise<void> {
  const names = await readdir(target).catch(() => [])
  await Promise.allSettled(names.map(async name => rm(join(target, name), { recursive: true, force: true })))
  if (created) await rmdir(target).catch(() => {})
}

/**
 * Writes the UnixFS directory `cid` into `dir` (created if missing; must be
 * empty unless `overwrite`). On failure the partial output is removed, so a
 * directory left behind is always a complete export.
 */
export async function exportToDirectory (blockstore: ReadableStorage, cid: CID, dir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const { signal, onProgress } = options
  signal?.throwIfAborted()
  const root = await exporter(cid, blockstore, { signal, onProgress })
  if (root.type !== 'directory') throw new NotADirectoryError(cid.toString(), `a ${root.type === 'file' ? `unixfs ${root.unixfs.type}` : root.type} node`)
  const target = resolve(dir)
  const created = await prepareTarget(target, options.overwrite === true)
  const state: ExportState = { bytes: 0, files: 0, directories: 0, symlinks: 0, entries: 0, blockstore, options }
  try {
    await writeDirectoryContents(root, target, state)
  } catch (err) {
    await clearTarget(target, created)
    throw err
  }
  return { bytes: state.bytes, files: state.files, directories: state.directories, symlinks: state.symlinks }
}
