import { chmod, mkdir, readFile, rename, stat, writeFile, open } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { generateSigningKey, signingKeyFromSeed } from '../protocol/index.ts'
import type { SigningKey } from '../protocol/index.ts'
import { ApiTokenError, ConfigError } from './errors.ts'
import type { VolunteerPolicy } from '../src/worker/volunteer-policy.ts'
import { DEFAULT_FETCH_LIMITS } from '../src/content/limits.ts'
import { storeLimits } from '../src/store/limits.ts'
import type { StoreLimits } from '../src/store/limits.ts'

export interface HomePaths {
  root: string
  config: string
  signingKey: string
  peerKey: string
  policy: string
  blocks: string
  datastore: string
  daemon: string
  jobs: string
  /** the local API's bearer token (0600): whoever can read it can use the API */
  apiToken: string
  /** the page `concur ui --open` hands the browser (0600: it carries the token) */
  uiOpen: string
}

export function resolveHome (flag?: string): string {
  return resolve(flag ?? process.env.CONCUR_HOME ?? join(homedir(), '.concur'))
}

export function homePaths (root: string): HomePaths {
  return {
    root,
    config: join(root, 'config.json'),
    signingKey: join(root, 'keys', 'signing.key'),
    peerKey: join(root, 'keys', 'peer.key'),
    policy: join(root, 'policy.json'),
    blocks: join(root, 'blocks'),
    datastore: join(root, 'datastore'),
    daemon: join(root, 'daemon.json'),
    jobs: join(root, 'jobs'),
    apiToken: join(root, 'api.token'),
    uiOpen: join(root, 'ui-open.html')
  }
}

/** Volunteer settings of a worker (config.json's `worker` section). */
export type WorkerConfig = VolunteerPolicy

export interface NodeConfig {
  version: 1
  listen: string[]
  /** null: use bootstrap/peers.json of this checkout */
  bootstrap: string[] | null
  api: string
  worker: WorkerConfig
  /** what the node keeps of what peers send (src/store/limits.ts); absent keys take the defaults */
  limits: StoreLimits
}

export const DEFAULT_WORKER: WorkerConfig = {
  maxConcurrent: 1,
  memoryBytes: 1024 * 1024 * 1024,
  cpus: 1,
  diskBytes: 512 * 1024 * 1024,
  wallSeconds: 600,
  processes: 256,
  requesters: [],
  environments: ['host', 'rootfs'],
  minTier: 'namespaces+cgroups',
  maxInputBytes: DEFAULT_FETCH_LIMITS.maxBytes,
  maxInputEntries: DEFAULT_FETCH_LIMITS.maxEntries,
  maxInputDirectoryBytes: DEFAULT_FETCH_LIMITS.maxDirectoryBytes
}

export function defaultConfig (): NodeConfig {
  return {
    version: 1,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: null,
    api: '127.0.0.1:0',
    worker: { ...DEFAULT_WORKER },
    limits: storeLimits()
  }
}

/**
 * Write through a temporary file and rename, so a crash never leaves half a
 * file. The temporary name is random and created exclusively (O_EXCL), so a
 * name planted in advance, a symlink among them, is never written through.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

export interface Identity {
  signing: SigningKey
  peerKey: PrivateKey
  peerId: string
}

export interface InitResult extends Identity {
  created: boolean
  home: string
}

/**
 * A home holds the keys and the API token: it must be this user's, and no one
 * else may write to it. Another user who created it first (a path under /tmp,
 * say) could plant a token or keys of their choosing, or swap files under
 * the daemon. A symlinked home is fine if it leads to such a directory.
 */
export async function checkHomeIsPrivate (root: string): Promise<void> {
  const uid = process.getuid?.()
  if (uid == null) return
  for (const dir of [root, join(root, 'keys')]) {
    const st = await stat(dir).catch(() => null)
    if (st == null) continue
    const fix = `use a home you own (--home DIR or $CONCUR_HOME), or, if ${dir} is yours, \`chmod go-w ${dir}\``
    if (!st.isDirectory()) throw new ConfigError(`the home path ${dir} is not a directory: ${fix}`, dir)
    if (st.uid !== uid) throw new ConfigError(`the home ${dir} is owned by uid ${st.uid}, not by this user (uid ${uid}): another user could have planted keys or an API token in it; ${fix}`, dir)
    if ((st.mode & 0o022) !== 0) throw new ConfigError(`the home ${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}): they could plant keys or an API token in it; ${fix}`, dir)
  }
}

/** Create keys and config if missing; existing files are kept, never overwritten. */
export async function initHome (root: string): Promise<InitResult> {
  const p = homePaths(root)
  await checkHomeIsPrivate(root)
  // a new home is created 0700 (recursive mkdir gives every new level the mode)
  await mkdir(join(root, 'keys'), { recursive: true, mode: 0o700 })
  await chmod(join(root, 'keys'), 0o700)
  let created = false
  if (!existsSync(p.signingKey)) {
    const key = generateSigningKey()
    // key files are secrets: 0600 from the first byte (mode on open, not chmod after)
    await writeFileAtomic(p.signingKey, JSON.stringify({ type: 'ed25519', did: key.did, seed: Buffer.from(key.seed).toString('hex') }) + '\n', 0o600)
    created = true
  }
  if (!existsSync(p.peerKey)) {
    const key = await generateKeyPair('Ed25519')
    await writeFileAtomic(p.peerKey, privateKeyToProtobuf(key), 0o600)
    created = true
  }
  if (!existsSync(p.config)) {
    await writeFileAtomic(p.config, JSON.stringify(defaultConfig(), null, 2) + '\n')
    created = true
  }
  if (!existsSync(p.apiToken)) {
    // created with the home, so the CLI can be set up before the first start;
    // every daemon start writes a new one (rotateApiToken)
    await rotateApiToken(root)
    created = true
  }
  const id = await loadIdentity(root)
  return { ...id, created, home: root }
}

/** 32 random bytes: the API token is as hard to guess as a key */
const API_TOKEN_BYTES = 32
/** what a token file holds: 64 lowercase hex characters (the server checks the same) */
export const API_TOKEN_PATTERN = /^[0-9a-f]{64}$/

/**
 * A new API token, written at every daemon start (rename over the old one,
 * 0600 from the first byte): a token that leaked while the daemon was down,
 * e.g. sent by the CLI to whoever took the port named in a stale
 * daemon.json, opens nothing once the daemon is back.
 */
export async function rotateApiToken (root: string): Promise<string> {
  const token = randomBytes(API_TOKEN_BYTES).toString('hex')
  await writeFileAtomic(homePaths(root).apiToken, token + '\n', 0o600)
  return token
}

/** The API token of a home, for the CLI; the errors name who can read it and what to run. */
export async function readApiToken (root: string): Promise<string> {
  const path = homePaths(root).apiToken
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') {
      throw new ApiTokenError(`cannot read the API token ${path}: permission denied. It is readable only by the user the daemon runs as; run this command as that user, with --home ${root}`, path)
    }
    if (code === 'ENOENT') {
      throw new ApiTokenError(`no API token at ${path}: the daemon creates it when it starts; (re)start it with \`concur daemon --home ${root}\``, path)
    }
    throw new ApiTokenError(`cannot read the API token ${path}: ${(err as Error).message}`, path)
  }
  const token = text.trim()
  if (!API_TOKEN_PATTERN.test(token)) {
    throw new ApiTokenError(`corrupt API token file ${path} (expected 64 hex characters): delete it and restart the daemon, which writes a new one`, path)
  }
  return token
}

async function readOrExplain (path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigError(`${what} not found at ${path}: run \`concur init --home ${resolve(path, '..', path.includes('/keys/') ? '..' : '.')}\` first`, path)
    }
    throw new ConfigError(`cannot read ${what} at ${path}: ${(err as Error).message}`, path)
  }
}

export async function loadIdentity (root: string): Promise<Identity> {
  const p = homePaths(root)
  const raw = await readOrExplain(p.signingKey, 'signing key')
  let signing: SigningKey
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as { seed?: unknown }
    if (typeof parsed.seed !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.seed)) throw new Error('field "seed" must be 64 hex characters')
    signing = signingKeyFromSeed(Buffer.from(parsed.seed, 'hex'))
  } catch (err) {
    throw new ConfigError(`corrupt signing key file ${p.signingKey}: ${(err as Error).message}`, p.signingKey)
  }
  const peerRaw = await readOrExplain(p.peerKey, 'peer key')
  let peerKey: PrivateKey
  try {
    peerKey = privateKeyFromProtobuf(peerRaw)
  } catch (err) {
    throw new ConfigError(`corrupt peer key file ${p.peerKey}: ${(err as Error).message}`, p.peerKey)
  }
  return { signing, peerKey, peerId: peerIdFromPrivateKey(peerKey).toString() }
}

function isStringArray (x: unknown): x is string[] {
  return Array.isArray(x) && x.every(s => typeof s === 'string')
}

export async function loadConfig (root: string): Promise<NodeConfig> {
  const p = homePaths(root)
  const raw = await readOrExplain(p.config, 'config')
  let parsed: unknown
  try {
    parsed = JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new ConfigError(`corrupt config file ${p.config}: ${(err as Error).message}`, p.config)
  }
  const bad = (why: string): never => { throw new ConfigError(`invalid config file ${p.config}: ${why}`, p.config) }
  if (typeof parsed !== 'object' || parsed == null) bad('not a JSON object')
  const c = parsed as Record<string, unknown>
  if (c.version !== 1) bad('"version" must be 1')
  if (!isStringArray(c.listen)) bad('"listen" must be an array of multiaddr strings')
  if (c.bootstrap !== null && !isStringArray(c.bootstrap)) bad('"bootstrap" must be null or an array of multiaddr strings')
  if (typeof c.api !== 'string') bad('"api" must be "HOST:PORT"')
  const worker = { ...DEFAULT_WORKER, ...(typeof c.worker === 'object' && c.worker != null ? c.worker as Partial<WorkerConfig> : {}) }
  for (const k of ['maxConcurrent', 'memoryBytes', 'cpus', 'diskBytes', 'wallSeconds', 'processes', 'maxInputBytes', 'maxInputEntries', 'maxInputDirectoryBytes'] as const) {
    if (typeof worker[k] !== 'number' || !(worker[k] > 0)) bad(`"worker.${k}" must be a positive number`)
  }
  if (!isStringArray(worker.requesters)) bad('"worker.requesters" must be an array of did:keys')
  if (c.limits !== undefined && (typeof c.limits !== 'object' || c.limits == null || Array.isArray(c.limits))) bad('"limits" must be an object')
  let limits: StoreLimits
  try {
    limits = storeLimits(c.limits as Record<string, unknown> | undefined)
  } catch (err) {
    return bad(`"limits": ${(err as Error).message}`)
  }
  return { version: 1, listen: c.listen as string[], bootstrap: c.bootstrap as string[] | null, api: c.api as string, worker, limits }
}

/** What a running daemon tells the CLI: where its API is. Removed when it stops. */
export interface DaemonInfo {
  pid: number
  api: string
  peerId: string
  did: string
  multiaddrs: string[]
  startedAt: string
  worker: boolean
}

export async function readDaemonInfo (root: string): Promise<DaemonInfo | null> {
  try {
    return JSON.parse(await readFile(homePaths(root).daemon, 'utf8')) as DaemonInfo
  } catch {
    return null
  }
}

export async function writeDaemonInfo (root: string, info: DaemonInfo): Promise<void> {
  await writeFileAtomic(homePaths(root).daemon, JSON.stringify(info, null, 2) + '\n')
}

export { writeFile }

/**
 * The process holding the home's database lock (LevelDB's `datastore/LOCK`,
 * a POSIX record lock), read from /proc/locks; null when the lock is free
 * or cannot be read (no /proc, another pid namespace). The lock is what
 * keeps two daemons off one home, and it is taken before daemon.json is
 * written: a daemon still starting holds it too.
 */
export async function homeLockHolder (root: string): Promise<number | null> {
  let st, locks
  try {
    st = await stat(join(homePaths(root).datastore, 'LOCK'))
    locks = await readFile('/proc/locks', 'utf8')
  } catch {
    return null
  }
  // "1: POSIX  ADVISORY  WRITE 24965 fe:00:4285857 0 EOF": pid, then major:minor:inode (major and minor in hex)
  const major = Math.floor(st.dev / 256) & 0xfff
  const minor = (st.dev & 0xff) | ((Math.floor(st.dev / 4096) & 0xfff00))
  for (const line of locks.split('\n')) {
    const m = /^\d+:\s+POSIX\s+ADVISORY\s+WRITE\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line)
    if (m == null) continue
    if (Number(m[4]) === st.ino && parseInt(m[2] as string, 16) === major && parseInt(m[3] as string, 16) === minor) {
      const pid = Number(m[1])
      // 0: the holder is outside our pid namespace
      return pid > 0 ? pid : null
    }
  }
  return null
}

/** whether a process with this pid exists (EPERM: it does, as another user) */
export function processAlive (pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
