/**
 * Dispute diagnosis: two artifact trees that trusted keys disagree on are
 * compared by CID, the differing files (and only those) are exported, and
 * diffoscope explains each pair when installed. The result is written as
 * report.json (for tools) and report.txt (for people) in `workDir`.
 */
import { blockBudget, fileRootOf, readFile as readUnixFSFile } from '../../content/read-file.ts'
import { DEFAULT_FETCH_LIMITS } from '../../content/limits.ts'
import { ContentTooLargeError } from '../../content/errors.ts'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { exporter } from 'ipfs-unixfs-exporter'
import type { ReadableStorage } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { diffTrees } from './diff-trees.ts'
import type { TreeDiffEntry } from './diff-trees.ts'
import { DIFFOSCOPE_HINT, diffoscopeReport, findExecutable } from './diffoscope.ts'
import { NotAFileError } from './errors.ts'
import { hintsFor, hintsFromDiffoscopeText } from './hints.ts'
import type { Hint } from './hints.ts'
import { terminalSafe } from '../../text/terminal-safe.ts'

export interface DiagnoseOptions {
  signal?: AbortSignal
  /** files larger than this are not exported or diffed (default 256 MiB) */
  maxFileBytes?: number
  /** at most this many file pairs are exported and diffed (default 32) */
  maxFiles?: number
  /** set false to skip diffoscope even when installed */
  diffoscope?: boolean
  /** per pair (default 5 min) */
  diffoscopeTimeoutMs?: number
  /** diffoscope executable (default: "diffoscope" on PATH) */
  diffoscopeCommand?: string
  /** cap on listed differences (default 100 000) */
  maxEntries?: number
  /** lines of each diffoscope text report copied into report.txt (default 200) */
  excerptLines?: number
  /** set false to skip the hints (hints.ts) */
  hints?: boolean
  /** at most this many bytes of each file are read for the hints (default {@link HINT_MAX_BYTES}) */
  hintMaxBytes?: number
}

/**
 * The hints read at most this much of each exported file (64 MiB): headers
 * (gzip, tar, ELF program headers) come first, and two files of the largest
 * exported size (256 MiB) must not take half a gigabyte of memory each.
 */
export const HINT_MAX_BYTES = 64 * 1024 * 1024

/** diffoscope's text report is read for hints up to this size (4 MiB); it is on disk in full. */
const DIFFOSCOPE_HINT_BYTES = 4 * 1024 * 1024

export interface DisputeFileReport {
  path: string
  cidA: string
  cidB: string
  sizeA?: number
  sizeB?: number
  /** exported copies, relative to workDir */
  fileA?: string
  fileB?: string
  diffoscope?: { differ: boolean, text: string, json: string }
  /** known causes of unreproducible builds seen in this pair, with their usual remedy (hints.ts) */
  hints?: Hint[]
  /** why this pair was not exported or diffed */
  skipped?: string
  error?: string
}

export interface DisputeReport {
  version: 1
  a: string
  b: string
  entries: TreeDiffEntry[]
  blocksRead: number
  truncated: boolean
  diffoscope: { installed: boolean, hint?: string }
  files: DisputeFileReport[]
  /** absolute paths of the written reports */
  reportJson: string
  reportText: string
}

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/**
 * Names come from untrusted DAGs: only a sanitised basename is used on disk,
 * inside a directory this code creates, so no entry name can choose where a
 * file lands.
 */
function safeName (path: string): string {
  const base = path.split('/').pop() ?? ''
  const clean = base.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '_').slice(0, 100)
  return clean === '' ? 'file' : clean
}

/**
 * report.txt is read with `cat`: a hostile name (or a diffoscope line quoting
 * a file's bytes) could otherwise forge lines of it or drive the terminal.
 */
export function printable (s: string): string {
  return terminalSafe(s, { singleLine: true })
}

/** write-then-rename: a report is never seen half written */
export async function atomicWrite (path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 })
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** Writes the content of a file node to `path`, refusing more than `maxBytes` however the DAG declares its size. */
async function exportFile (blockstore: ReadableStorage, cid: CID, path: string, maxBytes: number, signal?: AbortSignal): Promise<number> {
  const entry = await exporter(cid, blockstore, { signal })
  const root = fileRootOf(entry)
  if (root == null) throw new NotAFileError(cid.toString(), entry.type === 'file' ? `a unixfs ${entry.unixfs.type}` : `a ${entry.type} node`)
  const handle = await open(path, FILE_FLAGS, 0o644)
  let written = 0
  // one block at a time, well-formed files only (read-file.ts), and the
  // structure read within the same budget a fetch has
  const onBlock = blockBudget(DEFAULT_FETCH_LIMITS.maxDirectoryBytes, () => new ContentTooLargeError(DEFAULT_FETCH_LIMITS.maxDirectoryBytes, 'directory-bytes', `reading file ${cid.toString()}`))
  try {
    for await (const chunk of readUnixFSFile(blockstore, root, { signal, onBlock })) {
      written += chunk.byteLength
      if (written > maxBytes) throw new ContentTooLargeError(maxBytes, 'bytes', 'raise the maxFileBytes option')
      let offset = 0
      while (offset < chunk.byteLength) offset += (await handle.write(chunk, offset, chunk.byteLength - offset)).bytesWritten
    }
  } finally {
    await handle.close()
  }
  return written
}

function describeEntry (e: TreeDiffEntry): string {
  const size = (n: number | undefined): string => n === undefined ? '-' : String(n)
  const kinds = e.change === 'type-changed' ? ` ${e.kindA ?? '?'} -> ${e.kindB ?? '?'}` : ''
  return `${e.change.padEnd(12)} ${printable(e.path)}${kinds} (${size(e.sizeA)} vs ${size(e.sizeB)} bytes)`
}

export function diffoscopeMissing (hint = DIFFOSCOPE_HINT): string {
  return `diffoscope is not installed; for a byte-level explanation: ${hint}`
}

/** One line per hint: what was seen, then the likely cause and remedy. */
export function describeHint (h: Hint): string {
  return `hint (${h.kind}): ${printable(h.detail)}; ${printable(h.remedy)} [${h.see}]`
}

/**
 * The body of a comparison's text report (differences, then each exported
 * pair with its hints and diffoscope excerpt), its paths shown relative to
 * `shownFrom` (the directory the reader is in). `workDir` is the
 * comparison's own directory, which the report's file paths are relative to.
 */
export async function renderComparison (report: DisputeReport, workDir: string, shownFrom: string, excerptLines: number): Promise<string[]> {
  const shown = (p: string): string => relative(shownFrom, join(workDir, p))
  const lines: string[] = [
    `${report.entries.length} difference(s)${report.truncated ? ' (listing truncated)' : ''}; ${report.blocksRead} block(s) read`,
    ''
  ]
  for (const e of report.entries) lines.push(describeEntry(e))
  lines.push('')
  for (const f of report.files) {
    lines.push(`--- ${printable(f.path)} ---`)
    if (f.fileA !== undefined && f.fileB !== undefined) lines.push(`exported: ${shown(f.fileA)}  ${shown(f.fileB)}`)
    if (f.skipped !== undefined) lines.push(`skipped: ${f.skipped}`)
    if (f.error !== undefined) lines.push(`error: ${printable(f.error)}`)
    for (const h of f.hints ?? []) lines.push(describeHint(h))
    if (f.diffoscope !== undefined) {
      lines.push(`diffoscope: ${relative(shownFrom, f.diffoscope.text)} (${f.diffoscope.differ ? 'files differ' : 'no difference found'})`)
      const text = await readFile(f.diffoscope.text, 'utf8').catch(() => '')
      const all = text.split('\n')
      lines.push(...all.slice(0, excerptLines).map(printable))
      if (all.length > excerptLines) lines.push(`[... ${all.length - excerptLines} more lines in ${relative(shownFrom, f.diffoscope.text)}]`)
    }
    lines.push('')
  }
  return lines
}

async function renderText (report: DisputeReport, workDir: string, excerptLines: number): Promise<string> {
  return [
    'concur dispute report',
    `A: ${report.a}`,
    `B: ${report.b}`,
    ...await renderComparison(report, workDir, workDir, excerptLines),
    ...report.diffoscope.installed ? [] : [diffoscopeMissing(report.diffoscope.hint), '']
  ].join('\n')
}

/** The first `maxBytes` bytes of a file (all of it when smaller). */
async function readPrefix (path: string, maxBytes: number): Promise<Uint8Array> {
  let handle: FileHandle | undefined
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    const size = Math.min((await handle.stat()).size, maxBytes)
    const buf = new Uint8Array(size)
    let at = 0
    while (at < size) {
      const { bytesRead } = await handle.read(buf, at, size - at, at)
      if (bytesRead === 0) break
      at += bytesRead
    }
    return buf.subarray(0, at)
  } finally {
    await handle?.close()
  }
}

/**
 * diffTrees(a, b), then for each file modified in both trees: export both
 * versions under `<workDir>/files/<n>/{a,b}/` and run diffoscope on them.
 * `<workDir>/files` is this function's own scratch area and is replaced on
 * every run. Failures of a single pair are recorded in its entry, not thrown.
 */
export async function diagnoseDispute (blockstore: ReadableStorage, a: CID, b: CID, workDir: string, options: DiagnoseOptions = {}): Promise<DisputeReport> {
  const { signal } = options
  const maxFileBytes = options.maxFileBytes ?? 256 * 1024 * 1024
  const maxFiles = options.maxFiles ?? 32
  const excerptLines = options.excerptLines ?? 200
  await mkdir(workDir, { recursive: true })
  const diff = await diffTrees(blockstore, a, b, { signal, ...(options.maxEntries !== undefined ? { maxEntries: options.maxEntries } : {}) })

  const wantDiffoscope = options.diffoscope !== false
  const installed = wantDiffoscope && (await findExecutable(options.diffoscopeCommand ?? 'diffoscope')) !== undefined
  const filesDir = join(workDir, 'files')
  await rm(filesDir, { recursive: true, force: true })

  const files: DisputeFileReport[] = []
  const pairs = diff.entries.filter(e => e.change === 'modified' && e.kindA === 'file' && e.kindB === 'file' && e.cidA !== undefined && e.cidB !== undefined)
  for (const [i, e] of pairs.entries()) {
    signal?.throwIfAborted()
    const f: DisputeFileReport = { path: e.path, cidA: e.cidA as string, cidB: e.cidB as string }
    if (e.sizeA !== undefined) f.sizeA = e.sizeA
    if (e.sizeB !== undefined) f.sizeB = e.sizeB
    files.push(f)
    if (i >= maxFiles) { f.skipped = `more than ${maxFiles} differing files`; continue }
    if ((e.sizeA ?? 0) > maxFileBytes || (e.sizeB ?? 0) > maxFileBytes) { f.skipped = `larger than ${maxFileBytes} bytes`; continue }
    const pairDir = join(filesDir, String(i + 1).padStart(4, '0'))
    const name = safeName(e.path)
    const pathA = join(pairDir, 'a', name)
    const pathB = join(pairDir, 'b', name)
    try {
      await mkdir(join(pairDir, 'a'), { recursive: true })
      await mkdir(join(pairDir, 'b'), { recursive: true })
      await exportFile(blockstore, CID.parse(f.cidA), pathA, maxFileBytes, signal)
      await exportFile(blockstore, CID.parse(f.cidB), pathB, maxFileBytes, signal)
      f.fileA = relative(workDir, pathA)
      f.fileB = relative(workDir, pathB)
      if (options.hints !== false) {
        const hintMax = options.hintMaxBytes ?? HINT_MAX_BYTES
        const hints = hintsFor(await readPrefix(pathA, hintMax), await readPrefix(pathB, hintMax))
        if (hints.length > 0) f.hints = hints
      }
      if (installed) {
        const r = await diffoscopeReport(pathA, pathB, pairDir, {
          ...(signal !== undefined ? { signal } : {}),
          ...(options.diffoscopeTimeoutMs !== undefined ? { timeoutMs: options.diffoscopeTimeoutMs } : {}),
          ...(options.diffoscopeCommand !== undefined ? { command: options.diffoscopeCommand } : {})
        })
        if (r.installed) {
          f.diffoscope = { differ: r.differ, text: r.text, json: r.json }
          if (options.hints !== false && r.differ) {
            // diffoscope sees inside formats hints.ts reads only as bytes (xz, .deb, class files…)
            const text = Buffer.from(await readPrefix(r.text, DIFFOSCOPE_HINT_BYTES).catch(() => new Uint8Array())).toString('utf8')
            // a timestamp already named from the archive's own header is what file(1)'s
            // "last modified" line in diffoscope's output shows: not a second cause
            const stamped = (f.hints ?? []).some(x => x.kind === 'gzip-mtime' || x.kind === 'tar-mtime' || x.kind === 'zip-timestamp')
            const more = hintsFromDiffoscopeText(text).filter(h => !(f.hints ?? []).some(x => x.kind === h.kind) && !(stamped && h.kind === 'embedded-date'))
            if (more.length > 0) f.hints = [...(f.hints ?? []), ...more]
          }
        }
      }
    } catch (err) {
      signal?.throwIfAborted()
      f.error = err instanceof Error ? err.message : String(err)
    }
  }

  const report: DisputeReport = {
    version: 1,
    a: a.toString(),
    b: b.toString(),
    entries: diff.entries,
    blocksRead: diff.blocksRead,
    truncated: diff.truncated,
    diffoscope: installed ? { installed: true } : { installed: false, hint: DIFFOSCOPE_HINT },
    files,
    reportJson: join(workDir, 'report.json'),
    reportText: join(workDir, 'report.txt')
  }
  await atomicWrite(report.reportJson, JSON.stringify(report, null, 2) + '\n')
  await atomicWrite(report.reportText, await renderText(report, workDir, excerptLines))
  return report
}
