/**
 * Copies the finished /build tree out of the sandbox, once no process of the
 * build is left (see build-mount.ts: the tree is read through a handle on the
 * /build mount taken before the job ran, after its pid namespace is gone).
 *
 * The source is reached through /proc/self/fd/N, which resolves absolute
 * symlinks against the *host* root: so nothing here ever follows a link.
 * Every entry is lstat'ed; links are recreated verbatim, regular files copied,
 * directories walked, anything else (fifos, sockets, devices) skipped.
 * Mode bits are kept except setuid/setgid/sticky.
 */
import { lstat, mkdir, opendir, readlink, rm, symlink, copyFile, chmod, lutimes, utimes, constants } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxOutputError } from './errors.ts'

/**
 * Most entries (files, directories, links) copied out of one build by
 * default. A tmpfs of a few MiB holds millions of empty files, which would
 * become millions of files on the worker's disk: the copy stops first.
 */
export const DEFAULT_MAX_OUTPUT_ENTRIES = 250_000

/**
 * Deepest directory nesting copied out. The walk holds one open directory
 * per level; a build nesting thousands of levels would hold thousands of the
 * worker's descriptors. No real build output comes near it.
 */
export const MAX_OUTPUT_DEPTH = 256

export interface CopyOutOptions {
  signal?: AbortSignal
  /** default DEFAULT_MAX_OUTPUT_ENTRIES */
  maxEntries?: number
  /**
   * most bytes copied, counting every name of a hard-linked file and the
   * apparent size of a sparse one (what the copy would write); default no cap
   */
  maxBytes?: number
}

interface Budget { entries: number, bytes: number, maxEntries: number, maxBytes: number }

/**
 * Copies are private to the worker whatever modes the build chose: a build
 * could otherwise leave a world-writable directory in its output (another
 * user adds files before the import) or one the worker cannot delete (0500,
 * for a worker that is not root). Modes are not part of an artifact's CID.
 */
const DIR_MODE = 0o700
const FILE_MODE = 0o600
const EXECUTABLE_FILE_MODE = 0o700

export async function copyTreeNoFollow (root: FileHandle, dest: string, opts: CopyOutOptions = {}): Promise<void> {
  const st = await root.stat()
  if (!st.isDirectory()) throw new SandboxOutputError('the build directory is not a directory')
  // the handle's magic link: a path into the detached mount that only this process holds
  const src = `/proc/self/fd/${root.fd}`
  try {
    await mkdir(dest, { mode: DIR_MODE })
  } catch (caught) {
    const err = caught as NodeJS.ErrnoException
    throw new SandboxOutputError(`cannot create output dir ${dest}: ${String(err?.message ?? err)}`)
  }
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_OUTPUT_ENTRIES
  const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY
  const budget: Budget = { entries: 0, bytes: 0, maxEntries, maxBytes }
  try {
    await walk(src, dest, budget, 0, opts.signal)
    await chmod(dest, DIR_MODE)
    await utimes(dest, st.atime, st.mtime)
  } catch (err) {
    // nothing half-copied stays on the worker's disk
    await rm(dest, { recursive: true, force: true }).catch(() => {})
    throw err
  }
}

async function walk (src: string, dest: string, budget: Budget, depth: number, signal?: AbortSignal): Promise<void> {
  if (depth > MAX_OUTPUT_DEPTH) throw new SandboxOutputError(`the build nested directories more than ${MAX_OUTPUT_DEPTH} levels deep: not copied`)
  // streamed, not read whole: a directory of millions of names stops at the
  // cap without first holding every name in memory. The order does not
  // matter: the importer sorts names.
  const dir = await opendir(src, { bufferSize: 64 })
  try {
    for await (const entry of dir) {
      signal?.throwIfAborted()
      if (++budget.entries > budget.maxEntries) throw new SandboxOutputError(`the build left more than ${budget.maxEntries} entries in its directory: not copied`)
      const s = join(src, entry.name)
      const d = join(dest, entry.name)
      const st = await lstat(s)
      try {
        if (st.isSymbolicLink()) {
          await symlink(await readlink(s), d)
          await lutimes(d, st.atime, st.mtime)
        } else if (st.isDirectory()) {
          await mkdir(d, { mode: DIR_MODE })
          await walk(s, d, budget, depth + 1, signal)
          await chmod(d, DIR_MODE)
          await utimes(d, st.atime, st.mtime)
        } else if (st.isFile()) {
          budget.bytes += st.size
          if (budget.bytes > budget.maxBytes) throw new SandboxOutputError(`the build left more than ${budget.maxBytes} bytes in its directory (hard links and sparse files count in full): not copied`)
          await copyFile(s, d, constants.COPYFILE_EXCL)
          // private to the worker, but whether it is executable is kept: it
          // is part of the artifact's identity (src/content/profile.ts)
          await chmod(d, (st.mode & 0o111) !== 0 ? EXECUTABLE_FILE_MODE : FILE_MODE)
          await utimes(d, st.atime, st.mtime)
        }
      } catch (caught) {
        const err = caught as NodeJS.ErrnoException
        if (err instanceof SandboxOutputError) throw err
        throw new SandboxOutputError(`cannot copy ${s} to ${d}: ${String(err?.message ?? err)}`)
      }
    }
  } finally {
    await dir.close().catch(() => {})
  }
}
