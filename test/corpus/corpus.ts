/**
 * The convergence corpus (issue 18): real upstream software from Debian
 * source packages, each built by three workers that differ (home, umask, TZ,
 * locale, TMPDIR, CPU limit) in one shared environment named by CID, k = 3.
 * Each project's control is built too, outside concur (two plain builds in
 * different directories, then two in the same one), so "the software is not
 * reproducible" is told apart from "concur failed".
 *
 * Sources come through a private apt configuration (deb-src only, its own
 * lists and cache under `cacheDir`; the machine's apt is not touched) with
 * `apt-get source`, and are unpacked with `dpkg-source -x`; both are kept in
 * `cacheDir` for the next run.
 *
 * Used by `npm run bench -- --corpus` (every project) and by the short test
 * in `npm test` (one project).
 */
import { execFile } from 'node:child_process'
import { chmod, cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { EventsResponse, RequestView } from '../../node/api/types.ts'
import { api, runConcur, tempDir } from '../helpers/processes.ts'
import { treeCid } from '../helpers/fixtures.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet, WorkerSpec } from '../helpers/network.ts'

const run = promisify(execFile)

export interface CorpusProject {
  /** the Debian source package */
  name: string
  kind: string
  /** run in the source directory; installs into ./out */
  script: string
  /**
   * the upstream source as Debian ships it (orig tarball, no Debian patches):
   * for a project whose patches assume Debian's own build (lua5.4's move its
   * Makefile to libtool, which a plain `make` then lacks)
   */
  upstreamOnly?: boolean
}

const AUTOTOOLS = './configure --prefix=/usr && make && make install DESTDIR="$PWD/out"'

export const CORPUS: CorpusProject[] = [
  { name: 'hello', kind: 'C, autotools', script: AUTOTOOLS },
  { name: 'sed', kind: 'C, autotools', script: AUTOTOOLS },
  { name: 'bc', kind: 'C, autotools (runs ./fix-libmath_h with ed)', script: AUTOTOOLS },
  { name: 'gzip', kind: 'C, autotools', script: AUTOTOOLS },
  { name: 'zlib', kind: 'C, plain configure + make', script: './configure --prefix=/usr && make && make install DESTDIR="$PWD/out"' },
  { name: 'lua5.4', kind: 'C (Lua), plain make, upstream source', script: 'make linux && make install INSTALL_TOP="$PWD/out/usr"', upstreamOnly: true }
]

/** what the environment must hold for the corpus: a Debian build root, and ed and texinfo for bc */
export const CORPUS_ENV_ARGS = ['--suite', 'bookworm', '--variant', 'buildd', '--packages', 'ed,texinfo']

/** the three workers: each differs from the others in what a volunteer's machine differs in */
export function corpusWorkers (scratch: string): WorkerSpec[] {
  return [
    { env: { TZ: 'UTC', LANG: 'C.UTF-8', TMPDIR: join(scratch, 'tmp-a'), HOME: join(scratch, 'home-a') }, umask: '022', args: ['--cpus', '2'] },
    { env: { TZ: 'Asia/Kolkata', LANG: 'de_DE.UTF-8', TMPDIR: join(scratch, 'tmp-b'), HOME: join(scratch, 'home-b') }, umask: '077', args: ['--cpus', '1'] },
    { env: { TZ: 'America/Los_Angeles', LC_ALL: 'fr_FR.UTF-8', TMPDIR: join(scratch, 'tmp-c'), HOME: join(scratch, 'a', 'much', 'longer', 'home-c') }, umask: '027', args: ['--cpus', '1'] }
  ]
}

/** `apt-get source` through a private configuration into `cacheDir`; returns each package's unpacked directory */
export async function corpusSources (cacheDir: string, names: string[], log: (s: string) => void = () => {}): Promise<Map<string, string>> {
  const upstream = new Set(CORPUS.filter(p => p.upstreamOnly === true).map(p => p.name))
  const aptDir = join(cacheDir, 'apt')
  const downloads = join(cacheDir, 'downloads')
  const unpacked = join(cacheDir, 'src')
  for (const d of ['etc/apt/sources.list.d', 'etc/apt/apt.conf.d', 'etc/apt/preferences.d', 'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial']) await mkdir(join(aptDir, d), { recursive: true })
  await mkdir(downloads, { recursive: true })
  await mkdir(unpacked, { recursive: true })
  await writeFile(join(aptDir, 'etc/apt/sources.list'), 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n')
  const apt = ['-q', '-o', `Dir=${aptDir}`, '-o', 'Dir::State::status=/var/lib/dpkg/status', '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root']
  const out = new Map<string, string>()
  const missing = names.filter(n => !out.has(n))
  const have = new Set(await readdir(unpacked))
  const downloaded = await readdir(downloads)
  const toFetch = missing.filter(n => !downloaded.some(f => f.startsWith(`${n}_`) && f.endsWith('.dsc')))
  if (toFetch.length > 0) {
    log(`apt-get source ${toFetch.join(' ')} (private apt configuration in ${aptDir})`)
    await run('apt-get', [...apt, 'update'], { maxBuffer: 16 * 1024 * 1024 })
    await run('apt-get', [...apt, 'source', '--download-only', ...toFetch], { cwd: downloads, maxBuffer: 16 * 1024 * 1024 })
  }
  const files = await readdir(downloads)
  for (const name of names) {
    const dirName = upstream.has(name) ? `${name}.upstream` : name
    const dir = join(unpacked, dirName)
    if (!have.has(dirName)) {
      const dsc = files.filter(f => f.startsWith(`${name}_`) && f.endsWith('.dsc')).sort().at(-1)
      if (dsc == null) throw new Error(`apt-get source fetched no ${name}_*.dsc into ${downloads}`)
      await run('dpkg-source', ['--no-check', ...(upstream.has(name) ? ['--skip-patches', '--skip-debianization'] : []), '-x', join(downloads, dsc), dir], { cwd: downloads, maxBuffer: 16 * 1024 * 1024 })
    }
    out.set(name, dir)
  }
  return out
}

export interface ControlResult {
  /** two plain builds in different directories gave one tree */
  differentDirectories: boolean
  /** two plain builds in the same directory gave one tree */
  sameDirectory: boolean
  seconds: number
}

/**
 * The control: the project built plainly, outside concur, with the same
 * toolchain (the environment's tree, read-only, as `/` under bwrap; no
 * network): twice in different directories, then twice in one. Not on this
 * machine's own /usr: it may lack what the environment has (bc's build runs
 * makeinfo), and the point is to ask the software, not the host.
 */
export async function control (project: CorpusProject, source: string, envDir: string): Promise<ControlResult> {
  const started = Date.now()
  const buildIn = async (hostDir: string, inside: string): Promise<string> => {
    await rm(hostDir, { recursive: true, force: true })
    await mkdir(join(hostDir, '..'), { recursive: true })
    await cp(source, hostDir, { recursive: true })
    // every file the same mtime, as a worker's source is (concur normalises them): otherwise make
    // sees a Debian-patched configure.ac newer than configure and wants autotools to run again
    await run('find', ['.', '-exec', 'touch', '-h', '-d', '@315532800', '{}', '+'], { cwd: hostDir })
    await run('bwrap', [
      '--ro-bind', envDir, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp',
      '--bind', hostDir, inside, '--chdir', inside, '--unshare-net', '--die-with-parent', '--clearenv',
      '--setenv', 'PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--setenv', 'HOME', '/tmp',
      '--setenv', 'SOURCE_DATE_EPOCH', '315532800', '--setenv', 'TZ', 'UTC', '--setenv', 'LC_ALL', 'C.UTF-8',
      '/bin/sh', '-c', project.script
    ], { maxBuffer: 64 * 1024 * 1024 })
    return await treeCid(join(hostDir, 'out'))
  }
  const base = await tempDir(`concur-control-${project.name}-`)
  const a = await buildIn(join(base, 'a'), '/tmp/ctl/a/src')
  const b = await buildIn(join(base, 'b'), '/tmp/ctl/a-different/longer/path/src')
  const again = await buildIn(join(base, 'a'), '/tmp/ctl/a/src')
  return { differentDirectories: a === b, sameDirectory: a === again, seconds: (Date.now() - started) / 1000 }
}

export interface CorpusRow {
  project: string
  kind: string
  verdict: string
  /** distinct CIDs the three workers attested, and how many agreed on the most common */
  agreement: string
  /** seconds, median over the workers, from their progress events */
  fetchS: number
  buildS: number
  importS: number
  control?: ControlResult
  /** the control could not be run (its error), so it says nothing */
  controlError?: string
  reasons: string[]
}

export interface CorpusNetwork { net: Devnet, env: string }

/** a network of the three corpus workers, trusted, k = 3, and the environment added to the requester */
export async function corpusNetwork (envDir: string, scratch: string): Promise<CorpusNetwork> {
  // the sandbox's unprivileged uid passes through each worker's TMPDIR: the scratch directory (a mkdtemp, 0700) must let it
  await chmod(scratch, 0o755)
  const workers = corpusWorkers(scratch)
  for (const w of workers) for (const k of ['TMPDIR', 'HOME']) { const d = w.env?.[k]; if (d != null) await mkdir(d, { recursive: true }) }
  const net = await startNetwork({ workers, threshold: 3 })
  const added = await runConcur(['add', envDir, '--skip-special'], { home: net.requester.home, timeoutMs: 1_800_000 })
  if (added.code !== 0) throw new Error(`concur add ${envDir}: ${added.stderr}`)
  return { net, env: (added.json() as { cid: string }).cid }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number) }

/** one project through concur: submitted, followed to its verdict, timed from the workers' own events */
export async function buildInConcur (c: CorpusNetwork, project: CorpusProject, source: string, timeoutS = 1800): Promise<CorpusRow> {
  const r = await submit(c.net.requester, source, ['--out', 'out', '--replicas', '3', '--timeout', String(timeoutS), '--env', c.env], ['/bin/sh', '-c', project.script], (timeoutS + 60) * 1000)
  const view: RequestView = r.view
  const cids = view.attestations.filter(a => a.thisJob).map(a => a.result.status === 'success' ? a.result.artifact : 'failure')
  const counts = [...new Set(cids)].map(x => cids.filter(y => y === x).length)
  const times = { fetch: [] as number[], build: [] as number[], import: [] as number[] }
  for (const w of c.net.workers) {
    const feed = await api<EventsResponse>(w.api, 'GET', `/v1/events?after=0&jobId=${encodeURIComponent(view.record.jobId)}`)
    const at = (stage: string): number | undefined => {
      const e = feed.events.find(({ event }) => event.type === 'build:progress' && event.progress.stage === stage)
      return e == null ? undefined : Date.parse(e.at)
    }
    const [f, envReady, b, i, a] = [at('fetching'), at('environment'), at('building'), at('importing'), at('attesting')]
    if (f != null && (envReady ?? b) != null) times.fetch.push(((envReady ?? b) as number) - f)
    if (b != null && i != null) times.build.push(i - b)
    if (i != null && a != null) times.import.push(a - i)
  }
  return {
    project: project.name,
    kind: project.kind,
    verdict: view.record.status,
    agreement: `${Math.max(0, ...counts)}/${cids.length} (${new Set(cids).size} CID${new Set(cids).size === 1 ? '' : 's'})`,
    fetchS: median(times.fetch) / 1000,
    buildS: median(times.build) / 1000,
    importS: median(times.import) / 1000,
    reasons: view.record.reasons
  }
}

/** the environment for the corpus, made once and kept in `cacheDir` (by its arguments) */
export async function corpusEnvironment (cacheDir: string, home: string, log: (s: string) => void = () => {}): Promise<string> {
  const dir = join(cacheDir, 'env-bookworm-buildd-ed-texinfo')
  const done = await stat(join(dir, 'etc', 'concur-environment.json')).then(() => true, () => false)
  if (!done) {
    await rm(dir, { recursive: true, force: true })
    log(`concur env create ${CORPUS_ENV_ARGS.join(' ')} -o ${dir}`)
    const r = await runConcur(['env', 'create', ...CORPUS_ENV_ARGS, '-o', dir, '--deb-cache', join(cacheDir, 'debs')], { home, timeoutMs: 1_800_000 })
    if (r.code !== 0) throw new Error(`concur env create: ${r.stderr}`)
  }
  return dir
}

export function corpusTable (rows: CorpusRow[]): string {
  const yes = (b: boolean | undefined): string => b == null ? '—' : b ? 'same' : 'differ'
  return [
    '| project | kind | verdict | agreement | fetch s | build s | import s | control: other dirs | control: same dir |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(r => `| ${r.project} | ${r.kind} | ${r.verdict} | ${r.agreement} | ${r.fetchS.toFixed(1)} | ${r.buildS.toFixed(1)} | ${r.importS.toFixed(2)} | ${yes(r.control?.differentDirectories)} | ${yes(r.control?.sameDirectory)} |`)
  ].join('\n')
}
