/**
 * What of a project's directory becomes its source (issue 18): version
 * control directories are left out by default (a `.git` is often larger
 * than the project, holds its whole history and local settings, and changes
 * with every commit, so the same sources would get a new buildId each time),
 * and a `.concurignore` at the root (gitignore syntax) leaves out more. The
 * rules stay in the tree (the `.concurignore` file itself is kept), so
 * whoever reads the source CID sees what was left out; every worker gets the
 * same tree, since the job names its CID.
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import ignore from 'ignore'
import { BadSourceError } from './errors.ts'

/** version control directories (or, for git worktrees and submodules, files) left out by default */
export const VCS_NAMES: ReadonlySet<string> = new Set(['.git', '.hg', '.svn', '.bzr', '_darcs', 'CVS', '.jj', '.pijul', '.fslckout', '_FOSSIL_'])

export const IGNORE_FILE = '.concurignore'

/** a rules file longer than this is refused: rules are a few lines, and all of them are matched against every entry */
export const MAX_IGNORE_FILE_BYTES = 256 * 1024

export interface SourceFilter {
  /** for addDirectory's `exclude`: path relative to the source root, "/"-separated */
  exclude: (path: string, isDirectory: boolean) => boolean
  /** the rules read from `.concurignore` (comments and blank lines dropped) */
  rules: string[]
  /** whether VCS directories are left out */
  vcs: boolean
}

export interface SourceFilterOptions {
  /** keep VCS directories (default false: left out) */
  includeVcs?: boolean
}

async function readRules (dir: string): Promise<string | undefined> {
  let handle
  try {
    // not followed if a symlink: the rules are the project's own file
    handle = await open(join(dir, IGNORE_FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new BadSourceError(`${IGNORE_FILE} is a symlink: it must be a regular file at the root of the source`)
    throw err
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new BadSourceError(`${IGNORE_FILE} must be a regular file at the root of the source`)
    if (st.size > MAX_IGNORE_FILE_BYTES) throw new BadSourceError(`${IGNORE_FILE} is ${st.size} bytes; at most ${MAX_IGNORE_FILE_BYTES} are read`)
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

/** The filter for the source at `dir`: VCS directories (unless kept) and the root's `.concurignore`. */
export async function sourceFilter (dir: string, options: SourceFilterOptions = {}): Promise<SourceFilter> {
  const text = await readRules(dir)
  const rules = (text ?? '').split(/\r?\n/).filter(l => l.trim() !== '' && !l.startsWith('#'))
  const ig = ignore().add(rules)
  const vcs = options.includeVcs !== true
  return {
    rules,
    vcs,
    exclude: (path, isDirectory) => {
      const name = path.slice(path.lastIndexOf('/') + 1)
      if (vcs && VCS_NAMES.has(name)) return true
      // the rules file itself is kept: it says what was left out
      if (path === IGNORE_FILE) return false
      // gitignore: a pattern ending in "/" matches directories only
      return ig.ignores(isDirectory ? `${path}/` : path)
    }
  }
}
