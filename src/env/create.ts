/**
 * `concur env create`: a build environment from Debian packages, with
 * mmdebstrap, made so that the same package versions give the same tree, and
 * so the same CID, on any machine (issue 18):
 *
 * - SOURCE_DATE_EPOCH is fixed (mmdebstrap is reproducible with it set: the
 *   dates it writes, e.g. /etc/shadow's last change, come from it);
 * - what mmdebstrap copies from the host is replaced: /etc/hostname (the
 *   host's name) and /etc/resolv.conf (its name servers); seen differing
 *   between two machines otherwise;
 * - /dev is emptied: the sandbox provides its own, and device nodes are not
 *   content (the importer refuses them);
 * - the manifest (manifest.ts) records the suite, the variant, the packages
 *   asked for and every installed package's exact version, inside the tree.
 *
 * Downloaded .deb files are kept in a cache directory between runs (mmdebstrap
 * hooks: sync-in before, sync-out after), so a second environment does not
 * download them again; they are never in the tree.
 *
 * Measured here: a bookworm buildd root is 147 packages, ~370 MB, made in
 * ~18 s with the cache warm; two runs into different directories gave
 * byte-identical trees.
 */
import { spawn } from 'node:child_process'
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile, lstat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { AbortOptions } from '@libp2p/interface'
import { EnvArgsError, EnvCreateError, EnvTargetError, EnvToolMissingError } from './errors.ts'
import { ENV_MANIFEST_PATH, ENV_MANIFEST_TYPE, PACKAGE_NAME_PATTERN, manifestBytes } from './manifest.ts'
import type { EnvManifest } from './manifest.ts'
import { installedPackages } from './dpkg.ts'

export { installedPackages }

/** the SOURCE_DATE_EPOCH an environment is made with unless told: the same as jobs' default (1980-01-01) */
export const DEFAULT_ENV_SOURCE_DATE_EPOCH = 315532800
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian'
/** mmdebstrap's variants */
export const VARIANTS = ['extract', 'custom', 'essential', 'apt', 'required', 'minbase', 'buildd', 'important', 'debootstrap', 'standard'] as const

export type EnvCreateProgress = { stage: 'mmdebstrap', line: string } | { stage: 'normalizing' } | { stage: 'manifest', packages: number }

export interface CreateEnvOptions extends AbortOptions {
  suite: string
  variant?: string
  /** packages beyond the variant's own */
  include?: string[]
  /** a directory that does not exist, or is empty */
  out: string
  mirror?: string
  architecture?: string
  sourceDateEpoch?: number
  /** where downloaded .deb files are kept between runs; none: downloaded each time */
  debCache?: string
  /** the mmdebstrap to run (tests) */
  mmdebstrap?: string
  onProgress?: (p: EnvCreateProgress) => void
}

export interface CreatedEnv {
  dir: string
  manifest: EnvManifest
  /** special files left out of the tree (the sandbox provides /dev) */
  removedSpecial: number
}

const SUITE = /^[a-z][a-z0-9-]{0,31}$/
const ARCH = /^[a-z0-9][a-z0-9-]{0,31}$/
const MIRROR = /^(https?|file):\/\/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]{1,512}$/

/** the arguments checked before anything runs: each of them reaches a command line */
function checkArgs (o: CreateEnvOptions): { suite: string, variant: string, include: string[], mirror: string } {
  if (!SUITE.test(o.suite)) throw new EnvArgsError(`--suite ${o.suite}: not a Debian suite name (e.g. bookworm)`)
  const variant = o.variant ?? 'buildd'
  if (!(VARIANTS as readonly string[]).includes(variant)) throw new EnvArgsError(`--variant ${variant}: one of ${VARIANTS.join(', ')}`)
  const include = [...new Set(o.include ?? [])].sort()
  for (const p of include) if (!PACKAGE_NAME_PATTERN.test(p)) throw new EnvArgsError(`--packages: "${p}" is not a Debian package name`)
  const mirror = o.mirror ?? DEFAULT_MIRROR
  if (!MIRROR.test(mirror)) throw new EnvArgsError(`--mirror ${mirror}: not an http(s):// or file:// URL`)
  if (o.architecture != null && !ARCH.test(o.architecture)) throw new EnvArgsError(`--architecture ${o.architecture}: not a Debian architecture`)
  return { suite: o.suite, variant, include, mirror }
}

async function run (cmd: string, args: string[], env: NodeJS.ProcessEnv, options: AbortOptions & { onLine?: (line: string) => void } = {}): Promise<{ code: number | null, tail: string[], stdout: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const tail: string[] = []
    let stdout = ''
    let partial = ''
    const onData = (chunk: Buffer): void => {
      partial += chunk.toString('utf8')
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        tail.push(line)
        if (tail.length > 20) tail.shift()
        options.onLine?.(line)
      }
    }
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); if (stdout.length > 1_000_000) stdout = stdout.slice(-1_000_000) })
    child.stderr.on('data', onData)
    const abort = (): void => { try { process.kill(-(child.pid as number), 'SIGTERM') } catch { /* gone */ } }
    options.signal?.addEventListener('abort', abort, { once: true })
    child.on('error', (err: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', abort)
      if (err.code === 'ENOENT') reject(new EnvToolMissingError(`${cmd} is not installed: install it with \`apt-get install mmdebstrap\` (Debian, Ubuntu)`))
      else reject(err)
    })
    child.on('close', (code) => {
      options.signal?.removeEventListener('abort', abort)
      if (partial !== '') tail.push(partial)
      resolve({ code, tail, stdout })
    })
  })
}

/** remove every special file (device, FIFO, socket) in the tree; count them */
async function removeSpecial (dir: string): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) n += await removeSpecial(p)
    else if (!e.isFile() && !e.isSymbolicLink()) { await rm(p, { force: true }); n++ }
  }
  return n
}

/**
 * What makes two runs on two machines differ, taken out (see the top of this
 * file). Returns the number of special files removed.
 */
export async function normalizeRoot (dir: string): Promise<number> {
  // the sandbox provides /dev: everything in it goes (nodes, and links such as /dev/fd)
  const dev = join(dir, 'dev')
  for (const name of await readdir(dev).catch(() => [] as string[])) await rm(join(dev, name), { recursive: true, force: true })
  await mkdir(dev, { recursive: true })
  // copied from the host by mmdebstrap, content and mode: /etc/hostname is
  // 0755 on some hosts, 0644 on others, and the executable bit is in the CID
  // (seen: two hosts, identical files, two CIDs)
  for (const [name, text] of [['hostname', 'localhost\n'], ['resolv.conf', '']] as const) {
    const path = join(dir, 'etc', name)
    await rm(path, { force: true })
    await writeFile(path, text)
    await chmod(path, 0o644)
  }
  return await removeSpecial(dir)
}

async function hostArchitecture (): Promise<string> {
  const r = await run('dpkg', ['--print-architecture'], process.env).catch(() => null)
  const arch = r?.stdout.trim()
  if (arch != null && ARCH.test(arch)) return arch
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch
}

export async function createEnvironment (o: CreateEnvOptions): Promise<CreatedEnv> {
  const { suite, variant, include, mirror } = checkArgs(o)
  const out = resolve(o.out)
  const st = await lstat(out).catch(() => null)
  if (st != null && (!st.isDirectory() || (await readdir(out)).length > 0)) throw new EnvTargetError(`${out} exists and is not an empty directory: name a new one`)
  // mmdebstrap needs the target's parent to exist
  await mkdir(dirname(out), { recursive: true })
  const architecture = o.architecture ?? await hostArchitecture()
  const sourceDateEpoch = o.sourceDateEpoch ?? DEFAULT_ENV_SOURCE_DATE_EPOCH
  const args = [
    `--variant=${variant}`,
    '--mode=auto',
    '--format=directory',
    `--architectures=${architecture}`,
    ...(include.length > 0 ? [`--include=${include.join(',')}`] : [])
  ]
  if (o.debCache != null) {
    const cache = resolve(o.debCache)
    // it goes between quotes in mmdebstrap's hook lines
    if (cache.includes('\'')) throw new EnvArgsError(`--deb-cache ${cache}: a path with a quote in it`)
    await mkdir(cache, { recursive: true })
    // the .deb files stay in the tree until the hook has copied them out, then mmdebstrap's cleanup removes them
    args.push('--skip=download/empty', '--skip=essential/unlink',
      '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
      `--setup-hook=sync-in '${cache}' /var/cache/apt/archives/`,
      `--customize-hook=sync-out /var/cache/apt/archives '${cache}'`)
  }
  args.push(suite, out, mirror)
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(sourceDateEpoch), LC_ALL: 'C.UTF-8' }
  const r = await run(o.mmdebstrap ?? 'mmdebstrap', args, env, { ...(o.signal != null ? { signal: o.signal } : {}), onLine: (line) => { o.onProgress?.({ stage: 'mmdebstrap', line }) } })
  if (o.signal?.aborted === true) {
    await rm(out, { recursive: true, force: true })
    throw new EnvCreateError('stopped before the environment was complete (nothing was kept)')
  }
  if (r.code !== 0) {
    await rm(out, { recursive: true, force: true })
    throw new EnvCreateError(`mmdebstrap failed (exit ${r.code ?? 'signal'}); its last lines:\n${r.tail.join('\n')}`)
  }
  o.onProgress?.({ stage: 'normalizing' })
  const removedSpecial = await normalizeRoot(out)
  const installed = installedPackages(await readFile(join(out, 'var', 'lib', 'dpkg', 'status'), 'utf8'))
  if (installed.length === 0) throw new EnvCreateError(`no installed package in ${out}/var/lib/dpkg/status: not a Debian root`)
  const manifest: EnvManifest = { _type: ENV_MANIFEST_TYPE, suite, variant, include, architecture, sourceDateEpoch, installed }
  await writeFile(join(out, ENV_MANIFEST_PATH), manifestBytes(manifest), { mode: 0o644 })
  o.onProgress?.({ stage: 'manifest', packages: installed.length })
  await stat(join(out, ENV_MANIFEST_PATH))
  return { dir: out, manifest, removedSpecial }
}
