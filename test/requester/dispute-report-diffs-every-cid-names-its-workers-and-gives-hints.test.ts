/**
 * A disputed verdict with N artifact CIDs gets N - 1 comparisons, each
 * against the largest agreeing group (most trusted keys, then most keys,
 * then CID order) and each in its own directory of exported files; report.txt,
 * report.json and the `concur status` summary name the workers behind every
 * CID (short dids in the summary, full ones in report.json) and give hints
 * for the differences they recognise. A hostile set of keys naming many CIDs
 * gets at most MAX_COMPARED_CIDS compared, and the report says how many were
 * left out; hostile did strings cannot forge lines of the summary.
 */
import { randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { ReadableStorage } from 'ipfs-unixfs-exporter'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { CODEC_RAW, buildIdOf, cidOf, createPolicy, evaluateVerdict, utf8Encode } from '../../protocol/index.ts'
import type { Verdict, VerdictCandidate } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'
import { diagnoseDisputed } from '../../src/requester/outcomes.ts'
import { MAX_COMPARED_CIDS, diagnoseDisputeSet, orderCandidates, shortDid } from '../../src/requester/diff/index.ts'
import type { DisputeSetReport } from '../../src/requester/diff/index.ts'
import { attestFor, makeJob, noise, trustedWorkers, untrustedWorkers, withTempDir, writeTree } from './helpers.ts'
import { fixedKey } from '../protocol/fixtures.ts'

/** a gzip stream of `data` whose header records `mtime` (what `gzip` without -n does) */
function gzipAt (data: string, mtime: number): Uint8Array {
  const gz = gzipSync(data)
  Buffer.from(gz.buffer, gz.byteOffset, gz.byteLength).writeUInt32LE(mtime, 4)
  return gz
}

async function tree (tmp: string, name: string, files: Record<string, string | Uint8Array>, bs: MemoryBlockstore): Promise<CID> {
  await writeTree(join(tmp, name), files)
  return (await addDirectory(bs, join(tmp, name))).cid
}

function disputed (candidates: VerdictCandidate[]): Verdict {
  return { status: 'disputed', buildId: 'b', threshold: 2, counted: [], candidates, failures: [], equivocators: [], dissent: [], nonReproducible: [], reasons: [] }
}

/** C0 (but tab), DEL and C1 controls: what a terminal acts on */
const hasControl = (line: string): boolean => [...line].some(c => { const n = c.charCodeAt(0); return (n < 0x20 && n !== 0x09) || (n >= 0x7f && n <= 0x9f) })

describe('the dispute report over every CID of a verdict', () => {
  it('3 CIDs: 2 comparisons against the best supported, each CID named with its workers, with hints', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const shared = { 'lib/libhello.a': noise('shared archive', 100_000), 'share/doc/README': 'hello\n' }
      const seed = randomBytes(32)
      const ref = await tree(tmp, 'ref', { ...shared, 'bin/version.txt': 'hello 1.0 built 1980-01-01\n', 'share/hello.txt.gz': gzipAt('hello\n', 315532800), 'share/seed.bin': seed }, bs)
      const late = await tree(tmp, 'late', { ...shared, 'bin/version.txt': 'hello 1.0 built 2025-06-01\n', 'share/hello.txt.gz': gzipAt('hello\n', 1748779200), 'share/seed.bin': seed }, bs)
      const rand = await tree(tmp, 'rand', { ...shared, 'bin/version.txt': 'hello 1.0 built 1980-01-01\n', 'share/hello.txt.gz': gzipAt('hello\n', 315532800), 'share/seed.bin': randomBytes(32) }, bs)

      // a CID only an untrusted key named: listed, never fetched (no peer need have it)
      const junk = cidOf(CODEC_RAW, utf8Encode('only a stranger says so'))

      // a real verdict (k = 1: every trusted CID reaches it): two trusted keys and one untrusted on ref,
      // one trusted and one untrusted on late, one trusted on rand, one untrusted alone on junk
      const job = makeJob()
      const [w1, w2, w3] = trustedWorkers
      const w4 = fixedKey('worker-4')
      const [s1, s2, s3] = untrustedWorkers
      const attestations = [attestFor(w1, job, ref), attestFor(w2, job, ref), attestFor(w3, job, late), attestFor(s1, job, ref), attestFor(s2, job, late), attestFor(w4, job, rand), attestFor(s3, job, junk)]
      const policy = createPolicy({ trusted: [...trustedWorkers.map(k => k.did), w4.did], threshold: 1 })
      const verdict = evaluateVerdict(policy, buildIdOf(job.job.definition), attestations, { jobId: job.jobId })
      expect(verdict.status).toBe('disputed')
      expect(verdict.candidates).toHaveLength(4)
      // the report does not depend on the order the verdict lists its CIDs in
      verdict.candidates.reverse()

      const dirs = { bundles: join(tmp, 'bundles'), disputes: join(tmp, 'disputes') }
      const { report, summary } = await diagnoseDisputed({ blockstore: bs }, dirs, job, verdict)
      const work = join(dirs.disputes, job.jobId)
      expect(report).toBe(join(work, 'report.txt'))

      const json = JSON.parse(await readFile(join(work, 'report.json'), 'utf8')) as DisputeSetReport
      expect(json.version).toBe(2)
      expect(json.reference).toEqual({ artifact: ref.toString(), trusted: [w1.did, w2.did].sort(), untrusted: [s1.did], belowTier: [] })
      expect(json.comparisons.map(c => c.candidate)).toEqual([
        { artifact: late.toString(), trusted: [w3.did], untrusted: [s2.did], belowTier: [] },
        { artifact: rand.toString(), trusted: [w4.did], untrusted: [], belowTier: [] }
      ])
      expect(json.omitted).toEqual([])
      expect(json.untrustedOnly).toEqual([{ artifact: junk.toString(), trusted: [], untrusted: [s3.did], belowTier: [] }])

      // each comparison has its own directory with its exported pair(s)
      const [toLate, toRand] = json.comparisons
      expect(toLate!.report!.a).toBe(ref.toString())
      expect(toLate!.report!.b).toBe(late.toString())
      expect(toLate!.report!.entries.map(e => `${e.change} ${e.path}`)).toEqual(['modified bin/version.txt', 'modified share/hello.txt.gz'])
      expect(toRand!.report!.entries.map(e => `${e.change} ${e.path}`)).toEqual(['modified share/seed.bin'])
      expect((await readdir(join(work, 'comparisons'))).sort()).toEqual([`2-${late.toString()}`, `3-${rand.toString()}`])
      const version = toLate!.report!.files.find(f => f.path === 'bin/version.txt')!
      expect(await readFile(join(work, toLate!.dir, version.fileB!), 'utf8')).toBe('hello 1.0 built 2025-06-01\n')
      expect(new Uint8Array(await readFile(join(work, toRand!.dir, toRand!.report!.files[0]!.fileA!)))).toEqual(new Uint8Array(seed))

      // hints, without depending on diffoscope
      const hintKinds = (path: string, r = toLate!.report!): string[] => (r.files.find(f => f.path === path)?.hints ?? []).map(h => h.kind)
      expect(hintKinds('bin/version.txt')).toContain('embedded-date')
      expect(hintKinds('share/hello.txt.gz')).toEqual(['gzip-mtime'])
      expect(hintKinds('share/seed.bin', toRand!.report!)).toEqual(['random'])

      // report.txt: every CID with its workers in full, each comparison, the hints
      const text = await readFile(join(work, 'report.txt'), 'utf8')
      expect(text).toContain('4 distinct artifact CID(s)')
      expect(text).toContain(`untrusted only, not fetched: ${junk.toString()}`)
      expect(text).toContain(`reference ${ref.toString()}`)
      expect(text).toContain(`CID 2     ${late.toString()}`)
      expect(text).toContain(`CID 3     ${rand.toString()}`)
      for (const k of [w1, w2, w3, w4, s1, s2, s3]) expect(text).toContain(k.did)
      expect(text).toContain(`=== reference vs CID 2: ${late.toString()}`)
      expect(text).toMatch(/hint \(embedded-date\): a date\/time is embedded: "hello 1\.0 built 1980-01-01" vs "hello 1\.0 built 2025-06-01"; .*SOURCE_DATE_EPOCH/)
      expect(text).toContain('hint (gzip-mtime): gzip header timestamp differs: 315532800 (1980-01-01T00:00:00Z) vs 1748779200 (2025-06-01T12:00:00Z)')
      expect(text).toContain('gzip -n')
      expect(text).toContain('hint (random): no structure in common')
      expect(text).toContain(`exported: comparisons/2-${late.toString()}/files/0001/a/version.txt`)

      // the summary `concur status` prints: short dids, one line per fact, hints by kind
      const lines = summary.split('\n')
      expect(lines[0]).toBe(`reference ${ref.toString()} built by trusted: ${shortDid(w1.did) < shortDid(w2.did) ? `${shortDid(w1.did)}, ${shortDid(w2.did)}` : `${shortDid(w2.did)}, ${shortDid(w1.did)}`}; untrusted: ${shortDid(s1.did)}`)
      expect(summary).toContain(`CID 2 ${late.toString()} built by trusted: ${shortDid(w3.did)}; untrusted: ${shortDid(s2.did)}: 2 difference(s) from the reference`)
      expect(summary).toContain(`CID 3 ${rand.toString()} built by trusted: ${shortDid(w4.did)}: 1 difference(s) from the reference`)
      expect(summary).toContain('1 CID(s) only untrusted keys named: listed in the report, not fetched')
      expect(summary).toMatch(/ {2}modified bin\/version\.txt \(27 vs 27 bytes\); hint: embedded-date/)
      expect(summary).toMatch(/ {2}modified share\/seed\.bin \(32 vs 32 bytes\); hint: random/)
      expect(shortDid(w1.did)).toMatch(/^did:key:z6Mk.{4}….{6}$/)
      expect(summary).not.toContain(w1.did)
    })
  })

  it('the reference is the most trusted keys, then the most keys, then the lowest CID', () => {
    const c = (artifact: string, trusted: number, untrusted: number): VerdictCandidate =>
      ({ artifact, trusted: Array.from({ length: trusted }, (_, i) => `t${i}`), untrusted: Array.from({ length: untrusted }, (_, i) => `u${i}`), belowTier: [] })
    expect(orderCandidates([c('b', 1, 0), c('a', 1, 0), c('c', 1, 3), c('d', 2, 0), c('e', 0, 9)]).map(x => x.artifact)).toEqual(['d', 'c', 'a', 'b', 'e'])
  })

  it(`a hostile set of keys naming many CIDs: at most ${MAX_COMPARED_CIDS} compared, the rest counted in the report`, async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const n = MAX_COMPARED_CIDS + 3
      const candidates: VerdictCandidate[] = []
      for (let i = 0; i < n; i++) {
        const cid = await tree(tmp, `t${i}`, { [`only-${String(i).padStart(2, '0')}`]: `${i}\n` }, bs)
        // trusted keys naming many CIDs (a bad build farm, or stolen keys): only CIDs trusted keys named are ever fetched
        candidates.push({ artifact: cid.toString(), trusted: i < 2 ? [trustedWorkers[i]!.did, trustedWorkers[2].did] : [`did:key:z6MkHostile${String(i).padStart(40, '0')}`], untrusted: [], belowTier: [] })
      }
      const dirs = { bundles: join(tmp, 'bundles'), disputes: join(tmp, 'disputes') }
      const job = makeJob()
      const { summary } = await diagnoseDisputed({ blockstore: bs }, dirs, job, disputed(candidates))
      const work = join(dirs.disputes, job.jobId)
      const json = JSON.parse(await readFile(join(work, 'report.json'), 'utf8')) as DisputeSetReport
      expect(json.comparisons).toHaveLength(MAX_COMPARED_CIDS - 1)
      expect(json.omitted).toHaveLength(3)
      // the best supported CIDs are among those compared; what is left out has the fewest keys
      expect([json.reference, ...json.comparisons.map(c => c.candidate)].filter(c => c.trusted.length === 2)).toHaveLength(2)
      expect(await readdir(join(work, 'comparisons'))).toHaveLength(MAX_COMPARED_CIDS - 1)
      const text = await readFile(join(work, 'report.txt'), 'utf8')
      expect(text).toContain(`${n} distinct artifact CID(s)`)
      expect(text).toContain(`3 more CID(s) not compared (at most ${MAX_COMPARED_CIDS} are`)
      expect(summary).toContain(`3 more CID(s) not compared (at most ${MAX_COMPARED_CIDS})`)
    })
  })

  it('hostile did strings cannot drive the terminal or forge summary lines; a non-CID artifact is never a path', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const a = await tree(tmp, 'a', { f: 'a\n' }, bs)
      const b = await tree(tmp, 'b', { f: 'b\n' }, bs)
      const evil = 'did:key:z6Mk\u001b]0;pwned\u0007\nreference bafyFORGED built by trusted: everyone\u009b2J'
      const dirs = { bundles: join(tmp, 'bundles'), disputes: join(tmp, 'disputes') }
      const job = makeJob()
      const { summary } = await diagnoseDisputed({ blockstore: bs }, dirs, job, disputed([
        { artifact: a.toString(), trusted: [trustedWorkers[0].did, trustedWorkers[1].did], untrusted: [], belowTier: [] },
        { artifact: b.toString(), trusted: [trustedWorkers[2].did], untrusted: [evil], belowTier: [] },
        // not a CID (sorts first of the two-key CIDs): never used as a path, recorded as not compared
        { artifact: '../../../escaped', trusted: ['did:key:z6MkT'], untrusted: ['did:key:z6MkX'], belowTier: [] }
      ]))
      const json = JSON.parse(await readFile(join(dirs.disputes, job.jobId, 'report.json'), 'utf8')) as DisputeSetReport
      expect(json.comparisons.map(c => [c.dir, c.error])).toEqual([['comparisons/2-invalid-cid', 'not a CID'], [`comparisons/3-${b.toString()}`, undefined]])
      expect(await readdir(join(dirs.disputes, job.jobId, 'comparisons'))).toEqual([`3-${b.toString()}`])
      expect(await readdir(tmp)).not.toContain('escaped')
      expect(summary).toContain('CID 2 ../../../escaped built by trusted: did:key:z6MkT; untrusted: did:key:z6MkX: not compared: not a CID')
      const lines = summary.split('\n')
      expect(lines.filter(l => l.startsWith('reference '))).toHaveLength(1)
      expect(lines.some(l => hasControl(l))).toBe(false)
      const text = await readFile(join(dirs.disputes, job.jobId, 'report.txt'), 'utf8')
      expect(text.split('\n').some(l => l.startsWith('reference bafyFORGED'))).toBe(false)
      expect(text.split('\n').some(l => hasControl(l))).toBe(false)
      expect(text).toContain('\\x1b]0;pwned\\x07\\x0areference bafyFORGED')
    })
  })

  it('a CID whose blocks never arrive is recorded as not compared at its time limit; the others still are', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const a = await tree(tmp, 'a', { f: 'a 1980-01-01\n' }, bs)
      const b = await tree(tmp, 'b', { f: 'b 2025-06-01\n' }, bs)
      const missing = cidOf(CODEC_RAW, utf8Encode('no peer has this'))
      // a network blockstore waits for a provider: this one waits until aborted
      const hanging: ReadableStorage = {
        get (cid, options) {
          if (!cid.equals(missing)) return bs.get(cid, options)
          return (async function * () {
            await new Promise((_resolve, reject) => {
              options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
            })
            yield new Uint8Array()
          })()
        }
      }
      const report = await diagnoseDisputeSet(hanging, [
        { artifact: a.toString(), trusted: ['did:key:z6MkA', 'did:key:z6MkB'], untrusted: [], belowTier: [] },
        { artifact: missing.toString(), trusted: ['did:key:z6MkC'], untrusted: [], belowTier: [] },
        { artifact: b.toString(), trusted: ['did:key:z6MkD'], untrusted: [], belowTier: [] }
      ], join(tmp, 'dispute'), { comparisonTimeoutMs: 300, diffoscope: false })
      expect(report.comparisons.map(c => c.candidate.artifact)).toEqual([missing.toString(), b.toString()])
      expect(report.comparisons[0]!.error).toBe('not finished within 300 ms')
      expect(report.comparisons[1]!.report!.entries.map(e => e.path)).toEqual(['f'])
      const text = await readFile(report.reportText, 'utf8')
      expect(text).toContain('not compared: not finished within 300 ms')
    })
  })

  it('the whole report has a time budget, shared among its comparisons: a CID that never comes leaves a partial report, not an error', async () => {
    await withTempDir(async tmp => {
      const bs = new MemoryBlockstore()
      const a = await tree(tmp, 'a', { f: 'a\n' }, bs)
      const b = await tree(tmp, 'b', { f: 'b\n' }, bs)
      const missing = cidOf(CODEC_RAW, utf8Encode('never delivered'))
      const hanging: ReadableStorage = {
        get (cid, options) {
          if (!cid.equals(missing)) return bs.get(cid, options)
          return (async function * () {
            await new Promise((_resolve, reject) => { options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true }) })
            yield new Uint8Array()
          })()
        }
      }
      // the per-comparison limit alone (20 min by default) would outlast any caller's patience
      const report = await diagnoseDisputeSet(hanging, [
        { artifact: a.toString(), trusted: ['did:key:z6MkA', 'did:key:z6MkB'], untrusted: [], belowTier: [] },
        { artifact: missing.toString(), trusted: ['did:key:z6MkC'], untrusted: [], belowTier: [] },
        { artifact: b.toString(), trusted: ['did:key:z6MkD'], untrusted: [], belowTier: [] }
      ], join(tmp, 'dispute'), { budgetMs: 2000, diffoscope: false })
      expect(report.comparisons[0]!.error).toMatch(/^not finished within \d+ ms$/)
      // the stalled CID had at most its fair share (half of the time): the next one is still compared
      expect(Number(/within (\d+) ms/.exec(report.comparisons[0]!.error!)![1])).toBeLessThanOrEqual(1000)
      expect(report.comparisons[1]!.report!.entries.map(e => e.path)).toEqual(['f'])
    })
  })
})
