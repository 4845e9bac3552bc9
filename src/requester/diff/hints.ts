/**
 * Hints for a dispute: given the two versions of one differing file, name the
 * differences that are known causes of unreproducible builds, with the usual
 * remedy, the way https://reproducible-builds.org/docs/ documents them.
 *
 * Pure functions over bytes (no I/O): they work without diffoscope (which may
 * not be installed), and each recogniser is one function that reads only the
 * structure it knows (a tar header, a gzip header, an ELF note…), so a
 * recogniser that does not apply answers nothing rather than guessing. The
 * bytes come from artifacts anyone may have built: every parser is bounded by
 * the input's length and by the caps below, and never trusts a length field
 * to be in range.
 *
 * `detail` may quote the files' bytes: a caller showing it to a person runs
 * it through terminalSafe (src/text/terminal-safe.ts) like every other
 * network-derived string.
 */
import { constants as zlibConstants, gunzipSync } from 'node:zlib'

export type HintKind =
  | 'gzip-mtime'
  | 'gzip-name'
  | 'tar-mtime'
  | 'tar-order'
  | 'tar-owner'
  | 'tar-mode'
  | 'zip-timestamp'
  | 'zip-order'
  | 'elf-build-id'
  | 'build-path'
  | 'embedded-date'
  | 'random'

export interface Hint {
  /** stable identifier, for tools */
  kind: HintKind
  /** what was seen in these two files (may quote their bytes) */
  detail: string
  /** the likely cause and the usual remedy */
  remedy: string
  /** where reproducible-builds.org explains it */
  see: string
}

const DOCS = 'https://reproducible-builds.org/docs/'
const SEE = {
  timestamps: `${DOCS}timestamps/`,
  sourceDateEpoch: `${DOCS}source-date-epoch/`,
  archives: `${DOCS}archives/`,
  buildPath: `${DOCS}build-path/`,
  randomness: `${DOCS}randomness/`,
  deterministicBuildSystems: `${DOCS}deterministic-build-systems/`
} as const

/**
 * Decompressed gzip payloads are inspected up to this size (64 MiB): a small
 * hostile .gz may inflate to gigabytes, and these hints must not cost more
 * memory than the exported files themselves.
 */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024

/** A hostile tar or zip may declare millions of members: at most this many (100 000) are read. */
export const MAX_MEMBERS = 100_000

/**
 * Printable strings (at most 100 000 per file) are what the text recognisers
 * compare: bounded so a file of many short lines cannot make them quadratic
 * or fill memory.
 */
export const MAX_STRINGS = 100_000

/** Lines quoted in a hint are cut to this many characters (120): a hint is one line. */
const QUOTE_CHARS = 120

function quote (s: string): string {
  const t = s.trim()
  return JSON.stringify(t.length > QUOTE_CHARS ? `${t.slice(0, QUOTE_CHARS)}…` : t)
}

function latin1 (bytes: Uint8Array, start = 0, end = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, Math.max(0, Math.min(end, bytes.length) - start)).toString('latin1')
}

function startsWith (bytes: Uint8Array, magic: readonly number[], at = 0): boolean {
  if (bytes.length < at + magic.length) return false
  return magic.every((m, i) => bytes[at + i] === m)
}

// ---------------------------------------------------------------- gzip

export interface GzipHeader {
  mtime: number
  /** the FNAME field (the original file name), when the FNAME flag is set */
  name?: string
  os: number
}

/** RFC 1952 header of a gzip stream, or undefined when `bytes` is not one. */
export function parseGzipHeader (bytes: Uint8Array): GzipHeader | undefined {
  if (!startsWith(bytes, [0x1f, 0x8b, 0x08]) || bytes.length < 10) return undefined
  const flags = bytes[3]!
  const mtime = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0
  const header: GzipHeader = { mtime, os: bytes[9]! }
  let at = 10
  if ((flags & 0x04) !== 0) {
    if (bytes.length < at + 2) return header
    at += 2 + (bytes[at]! | (bytes[at + 1]! << 8))
  }
  if ((flags & 0x08) !== 0 && at < bytes.length) {
    const end = bytes.indexOf(0, at)
    header.name = latin1(bytes, at, end < 0 ? Math.min(bytes.length, at + 1024) : end)
  }
  return header
}

/**
 * gzip writes the input's mtime (bytes 4..7) and, unless told `-n`, its
 * file name into every header: two builds of the same bytes at different
 * times or from differently named temporary files give different .gz files.
 */
export function gzipHeaderHints (a: Uint8Array, b: Uint8Array): Hint[] {
  const ha = parseGzipHeader(a)
  const hb = parseGzipHeader(b)
  if (ha === undefined || hb === undefined) return []
  const hints: Hint[] = []
  if (ha.mtime !== hb.mtime) {
    hints.push({
      kind: 'gzip-mtime',
      detail: `gzip header timestamp differs: ${ha.mtime}${ha.mtime !== 0 ? ` (${isoOf(ha.mtime)})` : ''} vs ${hb.mtime}${hb.mtime !== 0 ? ` (${isoOf(hb.mtime)})` : ''}`,
      remedy: 'gzip stores the input file\'s mtime in its header: compress with `gzip -n` (or `--no-name`), or write the header with mtime 0 (Python: gzip.GzipFile(mtime=0))',
      see: SEE.archives
    })
  }
  if (ha.name !== undefined || hb.name !== undefined) {
    const same = ha.name === hb.name
    hints.push({
      kind: 'gzip-name',
      detail: same
        ? `gzip header embeds the original file name ${quote(ha.name ?? '')}`
        : `gzip header embeds the original file name: ${quote(ha.name ?? '(none)')} vs ${quote(hb.name ?? '(none)')}`,
      remedy: 'gzip stores the input file name (and its mtime) unless given `-n`: use `gzip -n`',
      see: SEE.archives
    })
  }
  return hints
}

/** The decompressed payload of a gzip stream, or undefined when it is not one or inflates past the cap. */
export function gunzipBounded (bytes: Uint8Array, maxBytes = MAX_INFLATED_BYTES): Uint8Array | undefined {
  if (parseGzipHeader(bytes) === undefined) return undefined
  try {
    // a stream cut short (a file read only up to the hint budget) still yields what it holds
    return gunzipSync(bytes, { maxOutputLength: maxBytes, finishFlush: zlibConstants.Z_SYNC_FLUSH })
  } catch {
    return undefined
  }
}

function isoOf (seconds: number): string {
  const d = new Date(seconds * 1000)
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString().replace('.000Z', 'Z')
}

// ---------------------------------------------------------------- tar

export interface TarMember {
  name: string
  /** seconds since the epoch; a string when a pax header gave a fraction */
  mtime: string
  uid: string
  gid: string
  uname: string
  gname: string
  mode: string
  type: string
}

function cString (bytes: Uint8Array, start: number, length: number): string {
  const field = bytes.subarray(start, start + length)
  const end = field.indexOf(0)
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString('utf8')
}

/** a numeric tar field: octal text, or GNU base-256 when the high bit of its first byte is set */
function tarNumber (bytes: Uint8Array, start: number, length: number): number | undefined {
  const first = bytes[start]!
  if ((first & 0x80) !== 0) {
    let n = first & 0x7f
    for (let i = 1; i < length; i++) n = n * 256 + bytes[start + i]!
    return n
  }
  const text = cString(bytes, start, length).trim()
  if (text === '') return 0
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined
}

function validTarChecksum (bytes: Uint8Array, at: number): boolean {
  const stored = tarNumber(bytes, at + 148, 8)
  if (stored === undefined) return false
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : bytes[at + i]!
  return sum === stored
}

/** Work counted by the parsers of untrusted bytes, so tests can see it is bounded (not how long it took). */
export interface ParseWork { steps: number }

export function paxRecords (data: Uint8Array, work: ParseWork = { steps: 0 }): Map<string, string> {
  const out = new Map<string, string>()
  const text = Buffer.from(data).toString('utf8')
  let at = 0
  while (at < text.length && out.size < 1000) {
    work.steps++
    const space = text.indexOf(' ', at)
    if (space < 0) break
    // a record's length field is a few decimal digits and covers the whole
    // record (digits, space, newline included): anything else is not pax.
    // Without these checks a run of leading zeros ("000…01 ") makes each
    // step advance one character and re-read the run: quadratic on hostile bytes
    if (space - at > 20) break
    const len = parseInt(text.slice(at, space), 10)
    if (!Number.isFinite(len) || len <= space - at + 1 || at + len > text.length) break
    const record = text.slice(space + 1, at + len - 1)
    const eq = record.indexOf('=')
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1))
    at += len
  }
  return out
}

/**
 * The members of a ustar/GNU/pax tar archive, in archive order, or undefined
 * when `bytes` does not start with a valid ustar header. pax and GNU
 * long-name headers are applied to the member they precede.
 */
export function parseTar (bytes: Uint8Array, maxMembers = MAX_MEMBERS): TarMember[] | undefined {
  if (bytes.length < 512 || latin1(bytes, 257, 262) !== 'ustar' || !validTarChecksum(bytes, 0)) return undefined
  const members: TarMember[] = []
  let at = 0
  let pax = new Map<string, string>()
  let longName: string | undefined
  while (at + 512 <= bytes.length && members.length < maxMembers) {
    if (bytes.subarray(at, at + 512).every(x => x === 0)) break
    if (!validTarChecksum(bytes, at)) break
    const size = tarNumber(bytes, at + 124, 12)
    if (size === undefined) break
    const type = String.fromCharCode(bytes[at + 156]!)
    const dataStart = at + 512
    const data = bytes.subarray(dataStart, Math.min(bytes.length, dataStart + size))
    at = dataStart + Math.ceil(size / 512) * 512
    if (type === 'x') { pax = paxRecords(data); continue }
    if (type === 'g') continue
    if (type === 'L') { longName = cString(data, 0, data.length); continue }
    if (type === 'K') continue
    const prefix = latin1(bytes, dataStart - 512 + 257, dataStart - 512 + 263) === 'ustar\u0000' ? cString(bytes, dataStart - 512 + 345, 155) : ''
    const base = cString(bytes, dataStart - 512, 100)
    const num = (start: number, length: number): string => String(tarNumber(bytes, dataStart - 512 + start, length) ?? '?')
    members.push({
      name: pax.get('path') ?? longName ?? (prefix !== '' ? `${prefix}/${base}` : base),
      mtime: pax.get('mtime') ?? num(136, 12),
      uid: pax.get('uid') ?? num(108, 8),
      gid: pax.get('gid') ?? num(116, 8),
      uname: pax.get('uname') ?? cString(bytes, dataStart - 512 + 265, 32),
      gname: pax.get('gname') ?? cString(bytes, dataStart - 512 + 297, 32),
      mode: num(100, 8),
      type
    })
    pax = new Map()
    longName = undefined
  }
  return members
}

function byName (members: TarMember[]): Map<string, TarMember> {
  const out = new Map<string, TarMember>()
  for (const m of members) if (!out.has(m.name)) out.set(m.name, m)
  return out
}

/**
 * How the members both archives hold are ordered in each: undefined when
 * alike, else the text saying where they first part (archive members added
 * or removed are other differences, not order).
 */
function orderDifference (namesA: string[], namesB: string[]): string | undefined {
  const inB = new Set(namesB)
  const common = new Set(namesA.filter(n => inB.has(n)))
  const a = namesA.filter(n => common.has(n))
  const b = namesB.filter(n => common.has(n))
  const i = a.findIndex((x, j) => x !== b[j])
  if (i < 0 && a.length === b.length) return undefined
  return i < 0 ? '' : `: member ${i + 1} is ${quote(a[i] ?? '')} vs ${quote(b[i] ?? '')}`
}

/**
 * tar records each member's mtime, owner and mode as found on the build
 * machine, and stores members in the order the file system lists them (which
 * differs between file systems and runs): each makes archives of identical
 * files differ.
 */
export function tarHints (a: Uint8Array, b: Uint8Array): Hint[] {
  const ma = parseTar(a)
  const mb = parseTar(b)
  if (ma === undefined || mb === undefined) return []
  const hints: Hint[] = []
  const ia = byName(ma)
  const ib = byName(mb)
  const common = [...ia.keys()].filter(n => ib.has(n))
  const order = orderDifference(ma.map(m => m.name), mb.map(m => m.name))
  if (order !== undefined) {
    hints.push({
      kind: 'tar-order',
      detail: `tar members are stored in a different order${order}`,
      remedy: 'tar stores files in the order the file system lists them: use `tar --sort=name` (GNU tar >= 1.28), or feed it a sorted list (`find . -print0 | LC_ALL=C sort -z | tar --null -T - …`)',
      see: SEE.archives
    })
  }
  const differing = (field: 'mtime' | 'uid' | 'gid' | 'uname' | 'gname' | 'mode'): string[] => common.filter(n => ia.get(n)![field] !== ib.get(n)![field])
  const mtimes = differing('mtime')
  if (mtimes.length > 0) {
    const n = mtimes[0]!
    const at = (m: TarMember): string => /^\d+$/.test(m.mtime) ? `${m.mtime} (${isoOf(Number(m.mtime))})` : m.mtime
    hints.push({
      kind: 'tar-mtime',
      detail: `${mtimes.length} of ${common.length} tar member(s) have a different mtime, e.g. ${quote(n)}: ${at(ia.get(n)!)} vs ${at(ib.get(n)!)}`,
      remedy: 'tar records each file\'s modification time: use `tar --mtime="@${SOURCE_DATE_EPOCH}" --clamp-mtime` (or touch the files to SOURCE_DATE_EPOCH first)',
      see: SEE.archives
    })
  }
  const owners = [...new Set([...differing('uid'), ...differing('gid'), ...differing('uname'), ...differing('gname')])]
  if (owners.length > 0) {
    const n = owners[0]!
    const who = (m: TarMember): string => `${m.uname !== '' ? m.uname : m.uid}:${m.gname !== '' ? m.gname : m.gid}`
    hints.push({
      kind: 'tar-owner',
      detail: `${owners.length} tar member(s) have a different owner, e.g. ${quote(n)}: ${quote(who(ia.get(n)!))} vs ${quote(who(ib.get(n)!))}`,
      remedy: 'tar records the building user: use `tar --owner=0 --group=0 --numeric-owner`',
      see: SEE.archives
    })
  }
  const modes = differing('mode')
  if (modes.length > 0) {
    const n = modes[0]!
    hints.push({
      kind: 'tar-mode',
      detail: `${modes.length} tar member(s) have different permissions, e.g. ${quote(n)}: ${Number(ia.get(n)!.mode).toString(8)} vs ${Number(ib.get(n)!.mode).toString(8)}`,
      remedy: 'permissions follow the build machine\'s umask: set `umask 022` in the build, or `tar --mode=go=rX,u+rw,a-s`',
      see: SEE.archives
    })
  }
  return hints
}

// ---------------------------------------------------------------- zip

export interface ZipEntry {
  name: string
  /** MS-DOS time and date fields of the central directory */
  dosTime: number
  dosDate: number
  /** the "UT" extra field's mtime, when present */
  unixTime?: number
  crc: number
}

/** The central directory of a zip archive, in stored order, or undefined when none is found. */
export function parseZip (bytes: Uint8Array, maxMembers = MAX_MEMBERS): ZipEntry[] | undefined {
  if (!startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) && !startsWith(bytes, [0x50, 0x4b, 0x05, 0x06])) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  // the end-of-central-directory record: within the last 22 + 65535 (comment) bytes
  let eocd = -1
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break }
  }
  if (eocd < 0) return undefined
  const count = view.getUint16(eocd + 10, true)
  let at = view.getUint32(eocd + 16, true)
  const entries: ZipEntry[] = []
  for (let i = 0; i < count && entries.length < maxMembers; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== 0x02014b50) break
    const nameLen = view.getUint16(at + 28, true)
    const extraLen = view.getUint16(at + 30, true)
    const commentLen = view.getUint16(at + 32, true)
    if (at + 46 + nameLen + extraLen > bytes.length) break
    const entry: ZipEntry = {
      name: Buffer.from(bytes.subarray(at + 46, at + 46 + nameLen)).toString('utf8'),
      dosTime: view.getUint16(at + 12, true),
      dosDate: view.getUint16(at + 14, true),
      crc: view.getUint32(at + 16, true)
    }
    // extra fields: (id, size, data)…; 0x5455 is the extended timestamp, mtime first when flagged
    let x = at + 46 + nameLen
    const xEnd = x + extraLen
    while (x + 4 <= xEnd) {
      const id = view.getUint16(x, true)
      const size = view.getUint16(x + 2, true)
      if (id === 0x5455 && size >= 5 && x + 9 <= xEnd && (bytes[x + 4]! & 1) !== 0) entry.unixTime = view.getUint32(x + 5, true)
      x += 4 + size
    }
    entries.push(entry)
    at += 46 + nameLen + extraLen + commentLen
  }
  return entries
}

function dosDateTime (date: number, time: number): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${1980 + (date >> 9)}-${pad((date >> 5) & 15)}-${pad(date & 31)} ${pad(time >> 11)}:${pad((time >> 5) & 63)}:${pad((time & 31) * 2)}`
}

/**
 * zip stores each member's modification time (a DOS date and time, and often
 * a Unix "UT" timestamp too) and keeps members in the order they were added:
 * either makes zip files (and .jar, .apk, .whl…) of identical content differ.
 */
export function zipHints (a: Uint8Array, b: Uint8Array): Hint[] {
  const za = parseZip(a)
  const zb = parseZip(b)
  if (za === undefined || zb === undefined) return []
  const hints: Hint[] = []
  const ib = new Map(zb.map(e => [e.name, e]))
  const common = za.filter(e => ib.has(e.name))
  const order = orderDifference(za.map(e => e.name), zb.map(e => e.name))
  if (order !== undefined) {
    hints.push({
      kind: 'zip-order',
      detail: `zip members are stored in a different order${order}`,
      remedy: 'zip keeps the order files were added in: add them in a sorted order (`find . | LC_ALL=C sort | zip -X -@ out.zip`), or post-process with strip-nondeterminism',
      see: SEE.archives
    })
  }
  const stamped = common.filter(e => {
    const f = ib.get(e.name)!
    return e.dosDate !== f.dosDate || e.dosTime !== f.dosTime || e.unixTime !== f.unixTime
  })
  if (stamped.length > 0) {
    const e = stamped[0]!
    const f = ib.get(e.name)!
    const when = (x: ZipEntry): string => `${dosDateTime(x.dosDate, x.dosTime)}${x.unixTime !== undefined ? ` / ${isoOf(x.unixTime)}` : ''}`
    hints.push({
      kind: 'zip-timestamp',
      detail: `${stamped.length} of ${common.length} zip member(s) have a different timestamp, e.g. ${quote(e.name)}: ${when(e)} vs ${when(f)}`,
      remedy: 'zip stores each file\'s mtime: touch the files to SOURCE_DATE_EPOCH before zipping and use `zip -X` (no extra attributes), or post-process with strip-nondeterminism',
      see: SEE.archives
    })
  }
  return hints
}

// ---------------------------------------------------------------- ELF

/** distinct note areas read (a linked binary has a few) */
const MAX_NOTE_AREAS = 16
/** notes read over every area: far above any real binary's, far below what hostile headers could ask */
const MAX_NOTE_STEPS = 10_000

/** The GNU build-id (hex) of an ELF file, '' when it has none, undefined when `bytes` is not ELF. */
export function elfBuildId (bytes: Uint8Array, work: ParseWork = { steps: 0 }): string | undefined {
  if (!startsWith(bytes, [0x7f, 0x45, 0x4c, 0x46]) || bytes.length < 52) return undefined
  const is64 = bytes[4] === 2
  const le = bytes[5] !== 2
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const u16 = (at: number): number => at + 2 <= bytes.length ? view.getUint16(at, le) : 0
  const u32 = (at: number): number => at + 4 <= bytes.length ? view.getUint32(at, le) : 0
  const word = (at: number): number => {
    if (!is64) return u32(at)
    if (at + 8 > bytes.length) return 0
    const n = view.getBigUint64(at, le)
    return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n)
  }
  // note areas: from the program headers (present in stripped files too), else the section headers
  const areas: Array<{ offset: number, size: number }> = []
  const phoff = word(is64 ? 0x20 : 0x1c)
  const phentsize = u16(is64 ? 0x36 : 0x2a)
  const phnum = u16(is64 ? 0x38 : 0x2c)
  for (let i = 0; i < phnum && phentsize > 0; i++) {
    const p = phoff + i * phentsize
    if (u32(p) === 4) areas.push({ offset: word(p + (is64 ? 0x08 : 0x04)), size: word(p + (is64 ? 0x20 : 0x10)) })
  }
  if (areas.length === 0) {
    const shoff = word(is64 ? 0x28 : 0x20)
    const shentsize = u16(is64 ? 0x3a : 0x2e)
    const shnum = u16(is64 ? 0x3c : 0x30)
    for (let i = 0; i < shnum && shentsize > 0; i++) {
      const s = shoff + i * shentsize
      if (u32(s + 4) === 7) areas.push({ offset: word(s + (is64 ? 0x18 : 0x10)), size: word(s + (is64 ? 0x20 : 0x14)) })
    }
  }
  // A real binary has a handful of note areas; hostile headers can list
  // 65,535 that all point at the same megabytes of zeros (each a valid empty
  // note), making the walk areas × size. Distinct areas only, at most
  // MAX_NOTE_AREAS of them, and one step budget for the whole walk.
  const seen = new Set<string>()
  let steps = 0
  for (const { offset, size } of areas) {
    const id = `${offset}:${size}`
    if (seen.has(id)) continue
    seen.add(id)
    if (seen.size > MAX_NOTE_AREAS) break
    let at = offset
    const end = Math.min(bytes.length, offset + size)
    while (at + 12 <= end) {
      work.steps++
      if (++steps > MAX_NOTE_STEPS) return ''
      const namesz = u32(at)
      const descsz = u32(at + 4)
      const type = u32(at + 8)
      const name = at + 12
      const desc = name + Math.ceil(namesz / 4) * 4
      const next = desc + Math.ceil(descsz / 4) * 4
      if (next > end || next <= at) break
      if (type === 3 && namesz === 4 && latin1(bytes, name, name + 4) === 'GNU\u0000') return Buffer.from(bytes.subarray(desc, desc + descsz)).toString('hex')
      at = next
    }
  }
  return ''
}

/**
 * The GNU build-id is a hash of the linked binary's contents: it differs
 * whenever anything else in the binary does, so it is a symptom, and the
 * cause is in the other differences (often an embedded build path).
 */
export function elfBuildIdHints (a: Uint8Array, b: Uint8Array): Hint[] {
  const ida = elfBuildId(a)
  const idb = elfBuildId(b)
  if (ida === undefined || idb === undefined || ida === idb) return []
  return [{
    kind: 'elf-build-id',
    detail: `ELF build-id (.note.gnu.build-id) differs: ${ida !== '' ? ida : '(none)'} vs ${idb !== '' ? idb : '(none)'}`,
    remedy: 'the build-id is a hash over the linked output, so it changes with any other difference: fix the other differences (build paths: `-ffile-prefix-map=$PWD=.`; __DATE__/__TIME__: SOURCE_DATE_EPOCH) and it follows',
    see: SEE.buildPath
  }]
}

// ---------------------------------------------------------------- strings: paths and dates

/**
 * The printable runs of `bytes` (at least `minLength` characters, split at
 * line ends and other control bytes), like `strings`: lines of a text file,
 * embedded strings of a binary. Bytes >= 0x80 count as printable (UTF-8).
 */
export function printableStrings (bytes: Uint8Array, minLength = 6, max = MAX_STRINGS): string[] {
  const out: string[] = []
  let start = -1
  const flush = (end: number): void => {
    if (start >= 0 && end - start >= minLength && out.length < max) out.push(Buffer.from(bytes.subarray(start, end)).toString('utf8'))
    start = -1
  }
  for (let i = 0; i < bytes.length && out.length < max; i++) {
    const c = bytes[i]!
    const printable = c === 0x09 || (c >= 0x20 && c !== 0x7f)
    if (printable) { if (start < 0) start = i } else flush(i)
  }
  flush(bytes.length)
  return out
}

/** Strings present in one file and not in the other: where the difference is, in text terms. */
export function differingStrings (a: Uint8Array, b: Uint8Array): { onlyA: string[], onlyB: string[] } {
  const sa = printableStrings(a)
  const sb = printableStrings(b)
  const setA = new Set(sa)
  const setB = new Set(sb)
  return { onlyA: [...new Set(sa.filter(s => !setB.has(s)))], onlyB: [...new Set(sb.filter(s => !setA.has(s)))] }
}

/**
 * Absolute paths under the usual build and temporary directories: a build
 * that records where it ran (debug info, __FILE__, a generated config) differs
 * between two machines or two runs in fresh temporary directories.
 */
const BUILD_PATHS = /(?<![A-Za-z0-9._-])\/(?:tmp|var\/tmp|private\/(?:tmp|var)|build|builds|builddir|home|root|usr\/src|workspace|run\/user)\/[A-Za-z0-9._+@%=,:~-]+(?:\/[A-Za-z0-9._+@%=,:~-]+)*/g

export function buildPathHints (a: Uint8Array, b: Uint8Array, diff = differingStrings(a, b)): Hint[] {
  return buildPathHintsFromStrings(diff.onlyA, diff.onlyB)
}

function pathsIn (strings: string[]): string[] {
  const out: string[] = []
  for (const s of strings) {
    for (const m of s.matchAll(BUILD_PATHS)) {
      out.push(m[0])
      if (out.length >= MAX_STRINGS) return out
    }
  }
  return out
}

function buildPathHintsFromStrings (onlyA: string[], onlyB: string[]): Hint[] {
  // a path found on one side only: the same path in both is not what differs
  const inA = pathsIn(onlyA)
  const inB = pathsIn(onlyB)
  const setA = new Set(inA)
  const setB = new Set(inB)
  const pa = inA.find(p => !setB.has(p))
  const pb = inB.find(p => !setA.has(p))
  if (pa === undefined || pb === undefined) return []
  return [{
    kind: 'build-path',
    detail: `an absolute build path is embedded: ${quote(pa)} vs ${quote(pb)}`,
    remedy: 'the build records the directory it ran in (debug info, __FILE__, generated files): map it away with `-ffile-prefix-map=$PWD=.` (GCC, Clang), `--remap-path-prefix` (rustc) or `-trimpath` (Go), or build in a fixed directory',
    see: SEE.buildPath
  }]
}

const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*'
/**
 * Dates and times as builds write them: ISO 8601 (`date -I`, POT-Creation-Date),
 * `date`'s default output and __DATE__ ("Jun  1 2025"), RFC 2822, and
 * __TIME__ / clock times ("12:34:56").
 */
const DATE_TIME = new RegExp([
  '\\b(?:19|20)\\d\\d-[01]\\d-[0-3]\\d(?:[T ][0-2]\\d:[0-5]\\d(?::[0-5]\\d)?)?',
  `\\b${MONTH} +\\d{1,2},? +(?:(?:[0-2]\\d:[0-5]\\d:[0-5]\\d) +(?:[A-Z]{2,5} +)?)?(?:19|20)\\d\\d\\b`,
  `\\b\\d{1,2} ${MONTH} (?:19|20)\\d\\d\\b`,
  '\\b[0-2]\\d:[0-5]\\d:[0-5]\\d\\b',
  '(?:POT-Creation-Date|PO-Revision-Date):'
].join('|'))

/** Unix seconds between 2001-09-09 (1 000 000 000) and 2100: a number a build wrote from the clock. */
function epochLike (s: string): string[] {
  return (s.match(/\b[1-4]\d{9}\b/g) ?? []).filter(n => Number(n) < 4_102_444_800)
}

function maskDigits (s: string): string {
  return s.replace(/\d+/g, '#')
}

export function embeddedDateHints (a: Uint8Array, b: Uint8Array, diff = differingStrings(a, b)): Hint[] {
  return embeddedDateHintsFromStrings(diff.onlyA, diff.onlyB)
}

/**
 * A build that writes the current date or time (a "built on" banner,
 * __DATE__/__TIME__, POT-Creation-Date in .pot files, `date` in a script)
 * gives different bytes every run. Seen as strings that differ only where a
 * date, a time or a Unix timestamp stands.
 */
function embeddedDateHintsFromStrings (onlyA: string[], onlyB: string[]): Hint[] {
  const remedy = 'the build writes the current date or time: take it from SOURCE_DATE_EPOCH instead (`date -u -d "@$SOURCE_DATE_EPOCH"`; GCC honours it for __DATE__/__TIME__; for gettext set POT-Creation-Date from it or drop it)'
  // best evidence: a pair of strings equal but for their digits, with a date or timestamp in them
  const byMask = new Map<string, string>()
  for (const s of onlyA) if (!byMask.has(maskDigits(s))) byMask.set(maskDigits(s), s)
  for (const t of onlyB) {
    const s = byMask.get(maskDigits(t))
    if (s === undefined) continue
    const dated = DATE_TIME.test(s) && DATE_TIME.test(t)
    const stamped = !dated && epochLike(s).some(n => !epochLike(t).includes(n)) && epochLike(t).length > 0
    if (dated || stamped) {
      return [{ kind: 'embedded-date', detail: `${stamped ? 'a Unix timestamp' : 'a date/time'} is embedded: ${quote(s)} vs ${quote(t)}`, remedy, see: SEE.sourceDateEpoch }]
    }
  }
  const da = onlyA.find(s => DATE_TIME.test(s))
  const db = onlyB.find(s => DATE_TIME.test(s))
  if (da === undefined || db === undefined) return []
  return [{ kind: 'embedded-date', detail: `date/time-like text differs: ${quote(da)} vs ${quote(db)}`, remedy, see: SEE.sourceDateEpoch }]
}

// ---------------------------------------------------------------- randomness

/** Formats recognised above, or whose content is structured (compressed streams are random-looking by nature). */
function knownFormat (bytes: Uint8Array): boolean {
  return parseGzipHeader(bytes) !== undefined ||
    startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) ||
    startsWith(bytes, [0x7f, 0x45, 0x4c, 0x46]) ||
    startsWith(bytes, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) || // xz
    startsWith(bytes, [0x28, 0xb5, 0x2f, 0xfd]) || // zstd
    startsWith(bytes, [0x42, 0x5a, 0x68]) || // bzip2
    (bytes.length >= 263 && latin1(bytes, 257, 262) === 'ustar')
}

/** At most this many bytes (256 KiB) of each file are sampled for the randomness test. */
const RANDOM_SAMPLE = 256 * 1024
const GRAM = 8

/**
 * Two files with no structure in common: no 8-byte sequence shared, bytes
 * spread like random data, little printable text. Random bytes (keys, UUIDs,
 * salts, mktemp names, /dev/urandom) make a build not reproducible by design.
 * Compressed formats are left out (they look random whenever their input
 * differs at all; the other recognisers look inside them).
 */
export function randomHints (a: Uint8Array, b: Uint8Array): Hint[] {
  if (a.length < 16 || b.length < 16 || knownFormat(a) || knownFormat(b)) return []
  const sa = a.subarray(0, RANDOM_SAMPLE)
  const sb = b.subarray(0, RANDOM_SAMPLE)
  const looksRandom = (s: Uint8Array): boolean => {
    const seen = new Set(s)
    // distinct byte values expected from n uniform bytes: 256 (1 - (255/256)^n)
    const expected = 256 * (1 - Math.pow(255 / 256, s.length))
    let printable = 0
    for (const c of s) if (c >= 0x20 && c < 0x7f) printable++
    // uniform bytes are printable ASCII with p = 95/256: allow 4 standard
    // deviations (so 32 random bytes pass), far below text's ~100%
    const p = 95 / 256
    const mostPrintable = s.length * p + 4 * Math.sqrt(s.length * p * (1 - p)) + 2
    return seen.size >= 0.7 * expected && printable <= mostPrintable
  }
  if (!looksRandom(sa) || !looksRandom(sb)) return []
  const grams = new Set<string>()
  const ta = latin1(sa)
  for (let i = 0; i + GRAM <= ta.length; i++) grams.add(ta.slice(i, i + GRAM))
  const tb = latin1(sb)
  let shared = 0
  for (let i = 0; i + GRAM <= tb.length; i++) if (grams.has(tb.slice(i, i + GRAM))) shared++
  if (shared > tb.length / 1000) return []
  return [{
    kind: 'random',
    detail: `no structure in common (${a.length} vs ${b.length} bytes, no ${GRAM}-byte sequence shared, random-looking bytes)`,
    remedy: 'the file holds random bytes (a key, salt, UUID, /dev/urandom, a random temporary name): not reproducible by design; derive the value from the source or SOURCE_DATE_EPOCH (a fixed seed), or generate it at install time instead of build time',
    see: SEE.randomness
  }]
}

// ---------------------------------------------------------------- all together

export interface HintOptions {
  /** gzip payloads are inflated up to this many bytes (default {@link MAX_INFLATED_BYTES}) */
  maxInflatedBytes?: number
}

/**
 * Every recogniser over one pair of files, and over their gzip payloads
 * (a .tar.gz shows its tar's differences). Each kind is given once.
 */
export function hintsFor (a: Uint8Array, b: Uint8Array, options: HintOptions = {}): Hint[] {
  const hints: Hint[] = []
  const add = (more: Hint[], prefix = ''): void => {
    for (const h of more) if (!hints.some(x => x.kind === h.kind)) hints.push(prefix === '' ? h : { ...h, detail: `${prefix}${h.detail}` })
  }
  add(gzipHeaderHints(a, b))
  const ga = gunzipBounded(a, options.maxInflatedBytes)
  const gb = gunzipBounded(b, options.maxInflatedBytes)
  // compressed bytes have no strings or structure of their own to read: only what they inflate to
  if (ga !== undefined && gb !== undefined) add(structureHints(ga, gb), 'inside the gzip stream: ')
  else add(structureHints(a, b))
  return hints
}

function structureHints (a: Uint8Array, b: Uint8Array): Hint[] {
  const diff = differingStrings(a, b)
  return [
    ...tarHints(a, b),
    ...zipHints(a, b),
    ...elfBuildIdHints(a, b),
    ...buildPathHintsFromStrings(diff.onlyA, diff.onlyB),
    ...embeddedDateHintsFromStrings(diff.onlyA, diff.onlyB),
    ...randomHints(a, b)
  ]
}

/**
 * Hints from a diffoscope text report: its `-`/`+` lines show differences
 * inside formats read here only by their bytes (xz, a .deb, a jar's classes,
 * a PDF…), so the path and date recognisers also run on them.
 */
export function hintsFromDiffoscopeText (text: string): Hint[] {
  const onlyA: string[] = []
  const onlyB: string[] = []
  for (const raw of text.split('\n').slice(0, MAX_STRINGS)) {
    // diffoscope nests diffs behind "│ " gutters; then the unified-diff sign
    const line = raw.replace(/^(?:[│ ]\s?)*/u, '')
    if (line.startsWith('-') && !line.startsWith('---')) onlyA.push(line.slice(1))
    else if (line.startsWith('+') && !line.startsWith('+++')) onlyB.push(line.slice(1))
  }
  return [...buildPathHintsFromStrings(onlyA, onlyB), ...embeddedDateHintsFromStrings(onlyA, onlyB)]
}
