import { lstat, readdir, readlink } from 'node:fs/promises'
import { isAbsolute, join, normalize, relative, sep, dirname } from 'node:path'

export type OutputProblem =
  | { kind: 'missing', path: string }
  | { kind: 'not-a-directory', path: string }
  | { kind: 'escapes', path: string }
  | { kind: 'special-file', path: string }
  | { kind: 'symlink-outside', path: string, target: string }

/**
 * Check a build's output tree before it is imported and attested. The rules
 * exist so that an artifact CID only ever names bytes the build produced
 * inside its own output directory: no device files or FIFOs (meaningless on
 * another host), and no symlink whose target leaves the tree (a consumer that
 * follows it would read the consumer's own files, not the artifact).
 */
export async function checkOutputTree (buildRoot: string, output: string): Promise<{ ok: true, path: string } | { ok: false, problem: OutputProblem, reason: string }> {
  const path = normalize(join(buildRoot, output))
  const rel = relative(buildRoot, path)
  if (rel.startsWith('..') || isAbsolute(rel) || rel === '') {
    if (rel !== '') return { ok: false, problem: { kind: 'escapes', path: output }, reason: `output path ${output} escapes the build directory` }
  }
  let st
  try {
    st = await lstat(path)
  } catch {
    return { ok: false, problem: { kind: 'missing', path: output }, reason: `output directory ${output} does not exist after the build` }
  }
  if (st.isSymbolicLink()) return { ok: false, problem: { kind: 'escapes', path: output }, reason: `output path ${output} is a symlink` }
  if (!st.isDirectory()) return { ok: false, problem: { kind: 'not-a-directory', path: output }, reason: `output path ${output} is not a directory` }
  // every intermediate component must be a real directory too (a symlinked
  // parent would make the output resolve somewhere else)
  for (let p = dirname(path); p.length > buildRoot.length; p = dirname(p)) {
    const s = await lstat(p)
    if (s.isSymbolicLink()) return { ok: false, problem: { kind: 'escapes', path: output }, reason: `a parent of ${output} is a symlink` }
  }
  const problem = await walk(path, path)
  if (problem != null) {
    const reason = problem.kind === 'special-file'
      ? `output contains a device file, FIFO or socket: ${problem.path}`
      : problem.kind === 'symlink-outside'
        ? `output contains a symlink pointing outside the output tree: ${problem.path} -> ${problem.target}`
        : `bad output: ${problem.path}`
    return { ok: false, problem, reason }
  }
  return { ok: true, path }
}

async function walk (root: string, dir: string): Promise<OutputProblem | null> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name)
    const rel = relative(root, full)
    if (entry.isSymbolicLink()) {
      const target = await readlink(full)
      if (isAbsolute(target)) return { kind: 'symlink-outside', path: rel, target }
      const resolved = normalize(join(dirname(full), target))
      const r = relative(root, resolved)
      if (r === '..' || r.startsWith('..' + sep) || isAbsolute(r)) return { kind: 'symlink-outside', path: rel, target }
    } else if (entry.isDirectory()) {
      const p = await walk(root, full)
      if (p != null) return p
    } else if (!entry.isFile()) {
      return { kind: 'special-file', path: rel }
    }
  }
  return null
}
