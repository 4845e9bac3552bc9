/**
 * Compares two UnixFS trees by CID. Equal CIDs mean identical content, so an
 * identical subtree is skipped without fetching a single block of it: on a
 * dispute over a large artifact only the differing paths cost bandwidth.
 */
import { exporter } from 'ipfs-unixfs-exporter'
import type { ReadableStorage, UnixFSEntry } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import { UnsupportedNodeError } from './errors.ts'

export type TreeChange = 'added' | 'removed' | 'modified' | 'type-changed'
export type NodeKind = 'file' | 'directory' | 'symlink'

export interface TreeDiffEntry {
  /** relative path, "/"-separated; "." for the roots themselves */
  path: string
  change: TreeChange
  kindA?: NodeKind
  kindB?: NodeKind
  /** file size in bytes (symlink: target length); absent for directories */
  sizeA?: number
  sizeB?: number
  cidA?: string
  cidB?: string
}

export interface DiffTreesOptions {
  signal?: AbortSignal
  /** stop after this many differences (default 100 000): a hostile tree must not exhaust memory */
  maxEntries?: number
}

export interface DiffTreesResult {
  /** in depth-first, name-sorted order */
  entries: TreeDiffEntry[]
  /** blockstore reads made: shows how little of two mostly-equal trees was fetched */
  blocksRead: number
  /** true when maxEntries was reached and the listing is incomplete */
  truncated: boolean
}

interface Node {
  cid: CID
  kind: NodeKind
  size?: number
  entry: UnixFSEntry
}

class Truncated extends Error {}

function childPath (parent: string, name: string): string {
  return parent === '.' ? name : `${parent}/${name}`
}

function byteOrder (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/**
 * Lists the differences between the UnixFS trees `a` and `b`, descending
 * only into entries whose CIDs differ. Added/removed directories are listed
 * as one entry, not expanded.
 */
export async function diffTrees (blockstore: ReadableStorage, a: CID, b: CID, options: DiffTreesOptions = {}): Promise<DiffTreesResult> {
  const { signal } = options
  const maxEntries = options.maxEntries ?? 100_000
  let blocksRead = 0
  // counts every read the exporter makes, so callers (and tests) can see that
  // identical subtrees were never touched
  const store: ReadableStorage = {
    get (cid, opts) {
      blocksRead++
      return blockstore.get(cid, opts)
    }
  }
  const entries: TreeDiffEntry[] = []
  const push = (e: TreeDiffEntry): void => {
    if (entries.length >= maxEntries) throw new Truncated()
    entries.push(e)
  }

  const resolveNode = async (cid: CID, path: string): Promise<Node> => {
    signal?.throwIfAborted()
    const entry = await exporter(cid, store, { signal })
    switch (entry.type) {
      case 'directory':
        return { cid, kind: 'directory', entry }
      case 'raw':
      case 'identity':
        return { cid, kind: 'file', size: Number(entry.size), entry }
      case 'file': {
        const t = entry.unixfs.type
        if (t === 'symlink') return { cid, kind: 'symlink', size: entry.unixfs.data?.byteLength ?? 0, entry }
        if (t === 'file' || t === 'raw') return { cid, kind: 'file', size: Number(entry.size), entry }
        throw new UnsupportedNodeError(path, `unixfs ${t}`)
      }
      default:
        throw new UnsupportedNodeError(path, `a ${entry.type} node`)
    }
  }

  const listing = async (node: Node): Promise<Map<string, CID>> => {
    const out = new Map<string, CID>()
    if (node.entry.type !== 'directory') return out
    // entries() gives names and CIDs from the directory's own block(s); the
    // children themselves are not fetched
    for await (const child of node.entry.entries({ signal })) out.set(child.name, child.cid)
    return out
  }

  const one = (node: Node, side: 'A' | 'B'): Partial<TreeDiffEntry> => side === 'A'
    ? { kindA: node.kind, ...(node.size !== undefined ? { sizeA: node.size } : {}), cidA: node.cid.toString() }
    : { kindB: node.kind, ...(node.size !== undefined ? { sizeB: node.size } : {}), cidB: node.cid.toString() }

  const compare = async (ca: CID, cb: CID, path: string): Promise<void> => {
    if (ca.equals(cb)) return
    const na = await resolveNode(ca, path)
    const nb = await resolveNode(cb, path)
    if (na.kind !== nb.kind) {
      push({ path, change: 'type-changed', ...one(na, 'A'), ...one(nb, 'B') })
      return
    }
    if (na.kind !== 'directory') {
      push({ path, change: 'modified', ...one(na, 'A'), ...one(nb, 'B') })
      return
    }
    const [la, lb] = [await listing(na), await listing(nb)]
    const names = [...new Set([...la.keys(), ...lb.keys()])].sort(byteOrder)
    for (const name of names) {
      signal?.throwIfAborted()
      const p = childPath(path, name)
      const xa = la.get(name)
      const xb = lb.get(name)
      if (xa !== undefined && xb !== undefined) {
        await compare(xa, xb, p)
      } else if (xa !== undefined) {
        push({ path: p, change: 'removed', ...one(await resolveNode(xa, p), 'A') })
      } else if (xb !== undefined) {
        push({ path: p, change: 'added', ...one(await resolveNode(xb, p), 'B') })
      }
    }
  }

  let truncated = false
  try {
    await compare(a, b, '.')
  } catch (err) {
    if (!(err instanceof Truncated)) throw err
    truncated = true
  }
  return { entries, blocksRead, truncated }
}
