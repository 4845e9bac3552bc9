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
import { lstat, mkdir, readdir, readlink, symlink, copyFile, chmod, lutimes, utimes, constants } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxOutputError } from './errors.ts'

export async function copyTreeNoFollow (root: FileHandle, dest: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const st = await root.stat()
  if (!st.isDirectory()) throw new SandboxOutputError('the build directory is not a directory')
  // the handle's magic link: a path into the detached mount that only this process holds
  const src = `/proc/self/fd/${root.fd}`
  try {
    await mkdir(dest, { mode: 0o755 })
  } catch (err: any) {
    throw new SandboxOutputError(`cannot create output dir ${dest}: ${String(err?.message ?? err)}`)
  }
  await walk(src, dest, opts.signal)
  await utimes(dest, st.atime, st.mtime)
}

async function walk (src: string, dest: string, signal?: AbortSignal): Promise<void> {
  for (const name of (await readdir(src)).sort()) {
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
        await walk(s, d, signal)
        await chmod(d, st.mode & 0o777)
        await utimes(d, st.atime, st.mtime)
      } else if (st.isFile()) {
        await copyFile(s, d, constants.COPYFILE_EXCL)
        await chmod(d, st.mode & 0o777)
        await utimes(d, st.atime, st.mtime)
      }
    } catch (err: any) {
      throw new SandboxOutputError(`cannot copy ${s} to ${d}: ${String(err?.message ?? err)}`)
    }
  }
}
