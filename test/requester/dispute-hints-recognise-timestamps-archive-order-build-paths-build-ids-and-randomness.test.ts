/**
 * The dispute hints (src/requester/diff/hints.ts) name the known causes of
 * unreproducible builds from the bytes of two differing files, without
 * diffoscope: gzip header mtime and name, tar member mtimes, order and
 * owners (real archives made by `tar`), zip timestamps and order, a differing
 * ELF build-id, embedded build paths, embedded dates and timestamps, and
 * random bytes. Each recogniser also stays silent where it does not apply.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { crc32, deflateRawSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  buildPathHints, elfBuildId, elfBuildIdHints, embeddedDateHints, gzipHeaderHints, hintsFor, hintsFromDiffoscopeText,
  parseGzipHeader, parseTar, paxRecords, parseZip, randomHints, tarHints, zipHints
} from '../../src/requester/diff/hints.ts'
import type { Hint } from '../../src/requester/diff/hints.ts'
import { findExecutable } from '../../src/requester/diff/index.ts'
import { noise, withTempDir, writeTree } from './helpers.ts'

const run = promisify(execFile)
const hasTar = await findExecutable('tar') !== undefined
const readelf = await findExecutable('readelf')
const kinds = (hints: Hint[]): string[] => hints.map(h => h.kind)
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A gzip stream of `data` with the given header mtime and, optionally, an FNAME field. */
function gzipWith (data: Uint8Array, mtime: number, name?: string): Uint8Array {
  const header = Buffer.alloc(10)
  header.set([0x1f, 0x8b, 0x08, name !== undefined ? 0x08 : 0x00])
  header.writeUInt32LE(mtime, 4)
  header[9] = 3
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc32(data), 0)
  trailer.writeUInt32LE(data.length, 4)
  return Buffer.concat([header, ...(name !== undefined ? [Buffer.from(`${name}\0`, 'latin1')] : []), deflateRawSync(data), trailer])
}

/** A stored (uncompressed) zip of `files`, each with its DOS time and date. */
function zipOf (files: Array<{ name: string, data: string, time: number, date: number }>): Uint8Array {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const f of files) {
    const name = Buffer.from(f.name)
    const data = Buffer.from(f.data)
    const crc = crc32(data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(f.time, 10); local.writeUInt16LE(f.date, 12)
    local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(name.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(f.time, 12); central.writeUInt16LE(f.date, 14)
    central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(data.length, 24); central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE(offset, 42)
    locals.push(local, name, data)
    centrals.push(central, name)
    offset += 30 + name.length + data.length
  }
  const cd = Buffer.concat(centrals)
  const eocd = Buffer.alloc(22)
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(files.length, 8); eocd.writeUInt16LE(files.length, 10)
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, cd, eocd])
}

/** A minimal little-endian ELF64 with one PT_NOTE holding a GNU build-id. */
function elfWithBuildId (id: Uint8Array): Uint8Array {
  const b = Buffer.alloc(64 + 56 + 16 + id.length)
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1])
  b.writeUInt16LE(2, 16); b.writeUInt16LE(62, 18); b.writeUInt32LE(1, 20)
  b.writeBigUInt64LE(64n, 32) // e_phoff
  b.writeUInt16LE(64, 52); b.writeUInt16LE(56, 54); b.writeUInt16LE(1, 56)
  b.writeUInt32LE(4, 64) // PT_NOTE
  b.writeBigUInt64LE(120n, 72) // p_offset
  b.writeBigUInt64LE(BigInt(16 + id.length), 96) // p_filesz
  b.writeUInt32LE(4, 120); b.writeUInt32LE(id.length, 124); b.writeUInt32LE(3, 128)
  b.write('GNU\0', 132, 'latin1')
  b.set(id, 136)
  return b
}

describe('gzip header', () => {
  it('a differing MTIME (bytes 4..7) and an embedded file name are named; gzip -n output is not', () => {
    const data = utf8('same payload\n'.repeat(10))
    const a = gzipWith(data, 1_700_000_000, 'hello-a.txt')
    const b = gzipWith(data, 1_700_000_100, 'hello-b.txt')
    expect(parseGzipHeader(a)).toEqual({ mtime: 1_700_000_000, name: 'hello-a.txt', os: 3 })
    const hints = gzipHeaderHints(a, b)
    expect(kinds(hints)).toEqual(['gzip-mtime', 'gzip-name'])
    expect(hints[0]!.detail).toContain('1700000000 (2023-11-14T22:13:20Z) vs 1700000100 (2023-11-14T22:15:00Z)')
    expect(hints[0]!.remedy).toContain('gzip -n')
    expect(hints[1]!.detail).toContain('"hello-a.txt" vs "hello-b.txt"')
    // node's gzip writes mtime 0 and no name (like `gzip -n`): nothing to say about the header
    expect(gzipHeaderHints(gzipSync(data), gzipSync(utf8('other')))).toEqual([])
    expect(gzipHeaderHints(data, data)).toEqual([])
  })
})

describe('tar (archives made by tar)', () => {
  it.skipIf(!hasTar)('member mtimes, member order and owners that differ are each named, also inside a .tar.gz', async () => {
    await withTempDir(async tmp => {
      await writeTree(join(tmp, 'src'), { 'a.txt': 'alpha\n', 'b.txt': 'beta\n', 'c/d.txt': 'delta\n' })
      const tar = async (out: string, args: string[], files: string[]): Promise<Uint8Array> => {
        await run('tar', ['-C', join(tmp, 'src'), '-cf', join(tmp, out), ...args, ...files])
        return new Uint8Array(await readFile(join(tmp, out)))
      }
      const fixed = ['--owner=0', '--group=0', '--numeric-owner', '--format=ustar']
      const first = await tar('first.tar', [...fixed, '--mtime=@1000000000'], ['a.txt', 'b.txt', 'c'])
      const later = await tar('later.tar', [...fixed, '--mtime=@1700000000'], ['a.txt', 'b.txt', 'c'])
      const reordered = await tar('reordered.tar', [...fixed, '--mtime=@1000000000'], ['c', 'b.txt', 'a.txt'])
      const owned = await tar('owned.tar', ['--owner=1000', '--group=1000', '--numeric-owner', '--format=ustar', '--mtime=@1000000000'], ['a.txt', 'b.txt', 'c'])

      expect(parseTar(first)?.map(m => [m.name, m.mtime])).toEqual([['a.txt', '1000000000'], ['b.txt', '1000000000'], ['c/', '1000000000'], ['c/d.txt', '1000000000']])
      const mtime = tarHints(first, later)
      expect(kinds(mtime)).toEqual(['tar-mtime'])
      expect(mtime[0]!.detail).toContain('4 of 4 tar member(s) have a different mtime')
      expect(mtime[0]!.remedy).toContain('--clamp-mtime')
      const order = tarHints(first, reordered)
      expect(kinds(order)).toEqual(['tar-order'])
      expect(order[0]!.remedy).toContain('--sort=name')
      expect(kinds(tarHints(first, owned))).toEqual(['tar-owner'])
      expect(tarHints(first, first)).toEqual([])

      // the file system's own mtimes, stored through pax headers
      await utimes(join(tmp, 'src', 'a.txt'), 1_600_000_000, 1_600_000_000)
      const pax1 = await tar('pax1.tar', ['--format=pax', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--pax-option=delete=atime,delete=ctime'], ['a.txt'])
      await utimes(join(tmp, 'src', 'a.txt'), 1_600_000_500, 1_600_000_500)
      const pax2 = await tar('pax2.tar', ['--format=pax', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--pax-option=delete=atime,delete=ctime'], ['a.txt'])
      expect(kinds(tarHints(pax1, pax2))).toEqual(['tar-mtime'])

      // a .tar.gz: the gzip header is the same, the tar inside is not
      const all = hintsFor(gzipSync(first), gzipSync(later))
      expect(kinds(all)).toContain('tar-mtime')
      expect(all.find(h => h.kind === 'tar-mtime')!.detail).toMatch(/^inside the gzip stream: /)
      expect(kinds(all)).not.toContain('random')
    })
  })

  it('text that is not a tar is not read as one', () => {
    expect(parseTar(utf8('x'.repeat(2048)))).toBeUndefined()
    expect(tarHints(utf8('hello'), utf8('world'))).toEqual([])
  })
})

describe('zip', () => {
  it('differing member timestamps and member order are named', () => {
    const files = [{ name: 'a.txt', data: 'alpha', time: 0x6000, date: 0x5a21 }, { name: 'b.txt', data: 'beta', time: 0x6000, date: 0x5a21 }]
    const a = zipOf(files)
    const b = zipOf(files.map(f => ({ ...f, time: 0x6421 })))
    const c = zipOf([...files].reverse())
    expect(parseZip(a)?.map(e => e.name)).toEqual(['a.txt', 'b.txt'])
    const stamps = zipHints(a, b)
    expect(kinds(stamps)).toEqual(['zip-timestamp'])
    expect(stamps[0]!.detail).toContain('2 of 2 zip member(s) have a different timestamp')
    expect(kinds(zipHints(a, c))).toEqual(['zip-order'])
    expect(zipHints(a, a)).toEqual([])
  })
})

describe('ELF build-id', () => {
  it('a differing .note.gnu.build-id is named, as a symptom of other differences', () => {
    const a = elfWithBuildId(new Uint8Array(20).fill(0xaa))
    const b = elfWithBuildId(new Uint8Array(20).fill(0xbb))
    expect(elfBuildId(a)).toBe('aa'.repeat(20))
    const hints = elfBuildIdHints(a, b)
    expect(kinds(hints)).toEqual(['elf-build-id'])
    expect(hints[0]!.detail).toContain(`${'aa'.repeat(20)} vs ${'bb'.repeat(20)}`)
    expect(elfBuildIdHints(a, a)).toEqual([])
    expect(elfBuildId(utf8('not an elf file at all, just text'))).toBeUndefined()
  })

  it.skipIf(readelf === undefined)('finds the same build-id as readelf in a real binary', async () => {
    const bin = await findExecutable('true')
    const { stdout } = await run(readelf!, ['-n', bin!])
    const expected = /Build ID: ([0-9a-f]+)/.exec(stdout)?.[1]
    expect(elfBuildId(new Uint8Array(await readFile(bin!)))).toBe(expected ?? '')
  })
})

describe('strings: build paths and dates', () => {
  it('an absolute build path that differs is named, inside binary noise too', () => {
    const wrap = (s: string): Uint8Array => Buffer.concat([noise('head', 200), Buffer.from(`\0${s}\0`), noise('tail', 200)])
    const a = wrap('/tmp/concur-build-abc123/src/main.c')
    const b = wrap('/tmp/concur-build-def456/src/main.c')
    const hints = buildPathHints(a, b)
    expect(kinds(hints)).toEqual(['build-path'])
    expect(hints[0]!.detail).toContain('"/tmp/concur-build-abc123/src/main.c" vs "/tmp/concur-build-def456/src/main.c"')
    expect(hints[0]!.remedy).toContain('-ffile-prefix-map')
    // the same path in both is not the cause
    expect(buildPathHints(wrap('/build/x/main.c version 1'), wrap('/build/x/main.c version 2'))).toEqual([])
    expect(kinds(hintsFor(a, b))).not.toContain('random')
  })

  it('dates, times and Unix timestamps written by the build are named; other text changes are not', () => {
    const pot = (d: string): Uint8Array => utf8(`msgid ""\nmsgstr ""\n"Project-Id-Version: hello 1.0\\n"\n"POT-Creation-Date: ${d}\\n"\n`)
    const h = embeddedDateHints(pot('2025-06-01 12:00+0000'), pot('2025-06-02 08:30+0000'))
    expect(kinds(h)).toEqual(['embedded-date'])
    expect(h[0]!.detail).toContain('POT-Creation-Date: 2025-06-01 12:00+0000')
    expect(h[0]!.remedy).toContain('SOURCE_DATE_EPOCH')
    // `date` output and __DATE__/__TIME__
    expect(kinds(embeddedDateHints(utf8('built on Sun Jun  1 12:00:00 UTC 2025\n'), utf8('built on Mon Jun  2 08:30:00 UTC 2025\n')))).toEqual(['embedded-date'])
    expect(kinds(embeddedDateHints(utf8('\0Jun  1 2025\0'), utf8('\0Jun  2 2025\0')))).toEqual(['embedded-date'])
    const stamp = embeddedDateHints(utf8('BUILD_TIME=1717243200\n'), utf8('BUILD_TIME=1717329600\n'))
    expect(stamp[0]?.detail).toContain('a Unix timestamp is embedded')
    expect(embeddedDateHints(utf8('hello version 1.0\n'), utf8('hello version 1.1\n'))).toEqual([])
  })

  it('diffoscope text lines feed the same recognisers', () => {
    const text = [
      '--- a/hello.tar.xz', '+++ b/hello.tar.xz',
      '├── file list', '│ @@ -1 +1 @@',
      '│ -"POT-Creation-Date: 2025-06-01 12:00+0000\\n"',
      '│ +"POT-Creation-Date: 2025-06-02 08:30+0000\\n"'
    ].join('\n')
    expect(kinds(hintsFromDiffoscopeText(text))).toEqual(['embedded-date'])
  })
})

describe('randomness', () => {
  it('two files with no structure in common are named random; structured or compressed ones are not', () => {
    const hints = randomHints(randomBytes(32), randomBytes(32))
    expect(kinds(hints)).toEqual(['random'])
    expect(hints[0]!.see).toContain('reproducible-builds.org/docs/randomness')
    expect(kinds(hintsFor(randomBytes(4096), randomBytes(4096)))).toEqual(['random'])
    // a shared structure with a random field in it is not "random by design" of the whole file
    const keyed = (k: Uint8Array): Uint8Array => Buffer.concat([noise('format header', 2048), k, noise('format trailer', 2048)])
    expect(randomHints(keyed(randomBytes(32)), keyed(randomBytes(32)))).toEqual([])
    expect(randomHints(utf8('hello 1.0 built 1980-01-01\n'), utf8('hello 1.0 built 2025-06-01\n'))).toEqual([])
    expect(randomHints(gzipSync(randomBytes(64)), gzipSync(randomBytes(64)))).toEqual([])
  })

  it('hostile bytes cost bounded work: a pax length of leading zeros, ELF headers listing one note area thousands of times', () => {
    // "000…01 ": before, each step advanced one character and re-read the whole run (quadratic)
    const work = { steps: 0 }
    expect(paxRecords(new TextEncoder().encode('0'.repeat(20_000) + '1 '), work).size).toBe(0)
    expect(work.steps).toBeLessThanOrEqual(1)
    expect(paxRecords(new TextEncoder().encode('13 mtime=1.5\n')).get('mtime')).toBe('1.5')
    // 1,000 PT_NOTE headers all pointing at the same 64 KiB of zeros (each 12 zero bytes is a valid empty note)
    const n = 1000
    const phoff = 64
    const start = phoff + n * 56
    const zeros = 64 * 1024
    const f = new Uint8Array(start + zeros)
    const v = new DataView(f.buffer)
    f.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0)
    v.setBigUint64(0x20, BigInt(phoff), true)
    v.setUint16(0x36, 56, true)
    v.setUint16(0x38, n, true)
    for (let i = 0; i < n; i++) {
      const p = phoff + i * 56
      v.setUint32(p, 4, true)
      v.setBigUint64(p + 8, BigInt(start), true)
      v.setBigUint64(p + 0x20, BigInt(zeros), true)
    }
    const elfWork = { steps: 0 }
    expect(elfBuildId(f, elfWork)).toBe('')
    // one distinct area of 5,461 empty notes, walked once (before: 1,000 times, 5.4 million steps)
    expect(elfWork.steps).toBeLessThanOrEqual(10_000)
  })
})
