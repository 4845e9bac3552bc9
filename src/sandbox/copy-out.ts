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
export const DEFAULT_MAX_OUTPUT_ENTRIES = 1_000_000

export interface CopyOutOptions {
  signal?: AbortSignal
  /** default DEFAULT_MAX_OUTPUT_ENTRIES */
  maxEntries?: number
}

export async function copyTreeNoFollow (root: FileHandle, dest: string, opts: CopyOutOptions = {}): Promise<void> {
  const st = await root.stat()
  if (!st.isDirectory()) throw new SandboxOutputError('the build directory is not a directory')
  // the handle's magic link: a path into the detached mount that only this process holds
  const src = `/proc/self/fd/${root.fd}`
  try {
    await mkdir(dest, { mode: 0o755 })
  } catch (err: any) {
    throw new SandboxOutputError(`cannot create output dir ${dest}: ${String(err?.message ?? err)}`)
  }
  const budget = { left: opts.maxEntries ?? DEFAULT_MAX_OUTPUT_ENTRIES, max: opts.maxEntries ?? DEFAULT_MAX_OUTPUT_ENTRIES }
  try {
    await walk(src, dest, budget, opts.signal)
    await utimes(dest, st.atime, st.mtime)
  } catch (err) {
    // nothing half-copied stays on the worker's disk
    await rm(dest, { recursive: true, force: true }).catch(() => {})
    throw err
  }
}

/** a directory's names, read as a stream so that a huge one stops at the budget, sorted */
async function names (dir: string, budget: { left: number, max: number }): Promise<string[]> {
  const out: string[] = []
  for await (const entry of await opendir(dir, { bufferSize: 256 })) {
    if (out.length >= budget.left) throw new SandboxOutputError(`the build left more than ${budget.max} entries in its directory: not copied`)
    out.push(entry.name)
  }
  budget.left -= out.length
  return out.sort()
}

async function walk (src: string, dest: string, budget: { left: number, max: number }, signal?: AbortSignal): Promise<void> {
  for (const name of await names(src, budget)) {
    signal?.throwIfAborted()
    const s = join(src, name)
    const d = join(dest, name)
    const st = await lstat(s)
    try {
      if (st.isSymbolicLink()) {
        await symlink(await readlink(s), d)
        await lutimes(d, st.atime, st.mtime)
      } else if (st.isDirectory()) {
        await mkdir(d, { mode: 0o700 })
        await walk(s, d, budget, signal)
        await chmod(d, st.mode & 0o777)
        await utimes(d, st.atime, st.mtime)
      } else if (st.isFile()) {
        await copyFile(s, d, constants.COPYFILE_EXCL)
        await chmod(d, st.mode & 0o777)
        await utimes(d, st.atime, st.mtime)
      }
    } catch (err: any) {
      if (err instanceof SandboxOutputError) throw err
      throw new SandboxOutputError(`cannot copy ${s} to ${d}: ${String(err?.message ?? err)}`)
    }
  }
}
