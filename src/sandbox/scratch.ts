import { chmod, lstat, mkdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SandboxScratchError } from './errors.ts'

export interface ScratchRootOptions {
  /** directory to create the scratch root in; default $TMPDIR, or /tmp when that is private */
  base?: string
}

const STICKY = 0o1000

/**
 * A per-user directory for what the sandbox must read after it dropped its
 * uid (the generated /etc, the job's inputs) and for build outputs before
 * they are imported: `<base>/concur-sandbox-<uid>`.
 *
 * It must be private. A scratch directory another local user created (or can
 * write to) lets that user swap entries under the worker (inotify plus
 * renameat2(RENAME_EXCHANGE)): a root worker would then write where they
 * choose, and any worker could be fed other inputs than the job's. So it is
 * created 0700, and an existing one is used only if it is a real directory
 * owned by this user that nobody else can write; otherwise the worker
 * refuses, naming the remedy. A root worker's builds run as a fresh random
 * uid each (run.ts), which must pass through to the inputs it binds: there
 * the directory is 0711 (others may pass through to names they know, never
 * list or write; what it holds is the job's public inputs and outputs).
 *
 * `os.tmpdir()` follows $TMPDIR, which a volunteer may point at a private
 * 0700 directory that the unprivileged sandbox uid cannot enter; then /tmp
 * is used instead.
 */
export async function sandboxScratchRoot (options: ScratchRootOptions = {}): Promise<string> {
  const uid = process.getuid?.() ?? 0
  const isRoot = uid === 0
  let base = options.base ?? tmpdir()
  if (options.base == null && isRoot) {
    // the sandbox uid must be able to pass through the base
    const st = await stat(base).catch(() => null)
    if (st == null || (st.mode & 0o001) === 0) base = '/tmp'
  }
  const baseStat = await stat(base).catch(() => null)
  if (baseStat?.isDirectory() !== true) {
    throw new SandboxScratchError(`the scratch base ${base} is not a directory`, 'set TMPDIR to a directory you own')
  }
  // in a directory others may write to, only the sticky bit stops them from
  // renaming our directory away and putting theirs in its place
  if ((baseStat.mode & 0o022) !== 0 && (baseStat.mode & STICKY) === 0) {
    throw new SandboxScratchError(`the scratch base ${base} is writable by other users and not sticky`, 'set TMPDIR to a directory you own, or use /tmp')
  }
  const root = join(base, `concur-sandbox-${uid}`)
  const mode = isRoot ? 0o711 : 0o700
  try {
    await mkdir(root, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new SandboxScratchError(`cannot create the scratch directory ${root}: ${(err as Error).message}`, `check that ${base} is writable, or set TMPDIR to a directory you own`)
    }
  }
  // lstat: a symlink planted at this name must not be followed
  const st = await lstat(root)
  const remedy = `remove it (rm -rf ${root}; as root if another user owns it) or set TMPDIR to a directory you own, then start the worker again`
  if (st.isSymbolicLink()) throw new SandboxScratchError(`the scratch directory ${root} is a symlink`, remedy)
  if (!st.isDirectory()) throw new SandboxScratchError(`the scratch directory ${root} is not a directory`, remedy)
  if (st.uid !== uid) throw new SandboxScratchError(`the scratch directory ${root} belongs to uid ${st.uid}, not to this user (uid ${uid}): another user may have created it to swap files under the worker`, remedy)
  if ((st.mode & 0o022) !== 0) {
    // someone could already have put entries in it: do not adopt it
    throw new SandboxScratchError(`the scratch directory ${root} is writable by other users (mode ${(st.mode & 0o7777).toString(8)})`, remedy)
  }
  if ((st.mode & 0o7777) !== mode) await chmod(root, mode)
  return root
}
