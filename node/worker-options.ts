import { isSandboxTier, publicKeyFromDid } from '../protocol/index.ts'
import { DEFAULT_MAX_PER_REQUESTER_PER_HOUR } from '../src/worker/volunteer-policy.ts'
import { DEFAULT_FETCH_TIMEOUT_MS } from '../src/worker/worker.ts'
import { DEFAULT_ENV_CACHE_BYTES } from '../src/worker/env-cache.ts'
import type { VolunteerPolicy } from '../src/worker/volunteer-policy.ts'
import { UsageError } from './errors.ts'
import type { WorkerConfig } from './home.ts'

export const WORKER_OPTIONS = {
  'max-concurrent': { type: 'string' },
  memory: { type: 'string' },
  cpus: { type: 'string' },
  disk: { type: 'string' },
  wall: { type: 'string' },
  processes: { type: 'string' },
  // admission: build only for these requesters (empty: anyone)
  serve: { type: 'string', multiple: true },
  // sharing among requesters served: see VolunteerPolicy.maxPerRequester, maxPerRequesterPerHour
  'max-per-requester': { type: 'string' },
  'max-per-requester-hour': { type: 'string' },
  environments: { type: 'string' },
  'min-tier': { type: 'string' },
  // caps of each input fetch (source, rootfs): see VolunteerPolicy
  'max-input-bytes': { type: 'string' },
  'max-input-entries': { type: 'string' },
  'max-input-dir-bytes': { type: 'string' },
  // how long a job's source or environment may take to arrive before the worker gives the job up (and says so)
  'fetch-timeout': { type: 'string' },
  // the most disk the environments kept by CID may take (0: export each job's environment anew)
  'env-cache': { type: 'string' },
  'allow-weak-sandbox': { type: 'boolean', default: false },
  // rebuilder mode: spot-check jobs of these requesters / a random sample
  'rebuild-for': { type: 'string', multiple: true },
  sample: { type: 'string' },
  'rebuild-only': { type: 'boolean', default: false },
  // rebuilder: spot-check a job no earlier than S seconds after it was announced, over jobs of the last S seconds
  'recheck-after': { type: 'string' },
  'recheck-window': { type: 'string' },
  // demos and adversary tests: attest a deliberately altered artifact
  'tamper-output': { type: 'boolean', default: false },
  // reveal a success at once, without a commitment first (a v1 worker; PROTOCOL.md §8.3)
  'no-commit': { type: 'boolean', default: false }
} as const

/** `concur daemon --help`: whom a worker builds for and how requesters share it (defaults in brackets) */
export const WORKER_ADMISSION_HELP = [
  'whom a worker builds for, and how the requesters it serves share it [defaults]:',
  '  --serve DID                 build only for this requester (repeat for more) [anyone]',
  '  --max-per-requester N       builds of one requester at once [--max-concurrent minus 1, at least 1]',
  `  --max-per-requester-hour N  builds of one requester started in any hour [${DEFAULT_MAX_PER_REQUESTER_PER_HOUR}]`,
  '  jobs are taken round-robin over requesters, the least recently served first; a job is',
  '  claimed only once the root blocks of its source (and rootfs) could be fetched',
  `  --fetch-timeout S           the longest a job's source or environment may take to arrive [${DEFAULT_FETCH_TIMEOUT_MS / 1000}]`,
  `  --env-cache SIZE            disk for build environments kept by CID, shared read-only by jobs [${DEFAULT_ENV_CACHE_BYTES / 1024 ** 3}G; 0: none]`,
  '  a job this worker declines, or whose inputs do not come, is released with the reason',
  '  (a signed claim the requester shows): declines only on jobs that name this worker',
  '  --no-commit                 attest a success at once, with no commitment first (as a v1 worker):',
  '                              requesters that require commitments do not count it (PROTOCOL.md §8.3)'
].join('\n')

/** --env-cache SIZE in bytes (0 allowed: no cache), or the default */
export function envCacheBytes (values: Record<string, unknown>): number {
  const v = values['env-cache']
  return typeof v === 'string' ? parseBytes(v, 'env-cache') : DEFAULT_ENV_CACHE_BYTES
}

/** --fetch-timeout S in milliseconds, or undefined when not given */
export function fetchTimeoutMs (values: Record<string, unknown>): number | undefined {
  const v = values['fetch-timeout']
  return typeof v === 'string' ? Math.round(positive(v, 'fetch-timeout') * 1000) : undefined
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** "512M", "2G", "1048576" → bytes */
export function parseBytes (text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim())
  if (m == null) throw new UsageError(`--${flag} takes a size like 512M or 2G (got ${text})`)
  return Math.floor(Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1))
}

function positive (text: string, flag: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} takes a positive number (got ${text})`)
  return n
}

/** The volunteer policy: config.json's `worker` section, overridden by flags. */
export function volunteerPolicy (config: WorkerConfig, values: Record<string, unknown>): VolunteerPolicy {
  const v = values as Record<string, string | string[] | boolean | undefined>
  const p: VolunteerPolicy = { ...config, requesters: [...config.requesters], environments: [...config.environments] }
  if (typeof v['max-concurrent'] === 'string') p.maxConcurrent = Math.floor(positive(v['max-concurrent'], 'max-concurrent'))
  if (typeof v.memory === 'string') p.memoryBytes = parseBytes(v.memory, 'memory')
  if (typeof v.cpus === 'string') p.cpus = positive(v.cpus, 'cpus')
  if (typeof v.disk === 'string') p.diskBytes = parseBytes(v.disk, 'disk')
  if (typeof v.wall === 'string') p.wallSeconds = positive(v.wall, 'wall')
  if (typeof v.processes === 'string') p.processes = Math.floor(positive(v.processes, 'processes'))
  if (typeof v['max-input-bytes'] === 'string') p.maxInputBytes = parseBytes(v['max-input-bytes'], 'max-input-bytes')
  if (typeof v['max-input-entries'] === 'string') p.maxInputEntries = Math.floor(positive(v['max-input-entries'], 'max-input-entries'))
  if (typeof v['max-input-dir-bytes'] === 'string') p.maxInputDirectoryBytes = parseBytes(v['max-input-dir-bytes'], 'max-input-dir-bytes')
  if (Array.isArray(v.serve)) p.requesters = v.serve
  if (typeof v['max-per-requester'] === 'string') p.maxPerRequester = Math.floor(positive(v['max-per-requester'], 'max-per-requester'))
  if (typeof v['max-per-requester-hour'] === 'string') p.maxPerRequesterPerHour = Math.floor(positive(v['max-per-requester-hour'], 'max-per-requester-hour'))
  // from config.json too ("maxPerRequester", "maxPerRequesterPerHour"): whole numbers of at least 1, or unset for the defaults
  for (const k of ['maxPerRequester', 'maxPerRequesterPerHour'] as const) {
    const n = p[k]
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) throw new UsageError(`"worker.${k}" must be a whole number of at least 1 (got ${String(n)})`)
  }
  if (typeof v.environments === 'string') {
    const envs = v.environments.split(',').map(s => s.trim())
    if (!envs.every(e => e === 'host' || e === 'rootfs')) throw new UsageError('--environments takes host, rootfs or host,rootfs')
    p.environments = envs as Array<'host' | 'rootfs'>
  }
  if (typeof v['min-tier'] === 'string') {
    if (!isSandboxTier(v['min-tier'])) throw new UsageError('--min-tier takes namespaces, namespaces+cgroups or vm')
    p.minTier = v['min-tier']
  }
  if (v['allow-weak-sandbox'] === true && p.minTier !== 'namespaces') p.minTier = 'namespaces'
  for (const did of p.requesters) {
    try { publicKeyFromDid(did) } catch (err) { throw new UsageError(`--serve ${did}: ${(err as Error).message}`) }
  }
  return p
}

export interface RebuildOptions { requesters: string[], sample: number, only: boolean, recheckAfterMs?: number, recheckWindowMs?: number }

/** seconds, as given on the command line (a whole number ≥ 0) */
function seconds (values: Record<string, unknown>, name: string): number | undefined {
  const text = values[name] as string | undefined
  if (text == null) return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 30 * 86_400) throw new UsageError(`--${name} takes whole seconds between 0 and ${30 * 86_400} (30 days), e.g. 300`)
  return n
}

/** `--rebuild-for DID… --sample P --rebuild-only --recheck-after S --recheck-window S` → rebuilder settings, or undefined */
export function rebuildOptions (values: Record<string, unknown>): RebuildOptions | undefined {
  const requesters = (values['rebuild-for'] as string[] | undefined) ?? []
  const sampleText = values.sample as string | undefined
  const recheckAfter = seconds(values, 'recheck-after')
  const recheckWindow = seconds(values, 'recheck-window')
  if (requesters.length === 0 && sampleText == null) {
    if (values['rebuild-only'] === true) throw new UsageError('--rebuild-only needs --rebuild-for DID or --sample P')
    if (recheckAfter != null || recheckWindow != null) throw new UsageError('--recheck-after and --recheck-window need --rebuild-for DID or --sample P')
    return undefined
  }
  for (const did of requesters) {
    try { publicKeyFromDid(did) } catch (err) { throw new UsageError(`--rebuild-for ${did}: ${(err as Error).message}`) }
  }
  const sample = sampleText == null ? 0 : Number(sampleText)
  if (!Number.isFinite(sample) || sample < 0 || sample > 1) throw new UsageError('--sample takes a fraction between 0 and 1, e.g. 0.1')
  if (recheckAfter != null && recheckWindow != null && recheckWindow <= recheckAfter) {
    throw new UsageError(`--recheck-window (${recheckWindow} s) must be longer than --recheck-after (${recheckAfter} s): no job would ever be due inside it`)
  }
  return {
    requesters,
    sample,
    only: values['rebuild-only'] === true,
    ...(recheckAfter != null ? { recheckAfterMs: recheckAfter * 1000 } : {}),
    ...(recheckWindow != null ? { recheckWindowMs: recheckWindow * 1000 } : {})
  }
}
