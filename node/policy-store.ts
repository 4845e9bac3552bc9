import { readFile } from 'node:fs/promises'
import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { TypedEventEmitter } from '@libp2p/interface'
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { createPolicy, isProtocolError, isSandboxTier, publicKeyFromDid, keyHex } from '../protocol/index.ts'
import type { SandboxTier, TrustPolicy, TrustPolicyInput } from '../protocol/index.ts'
import { NoPolicyError } from '../src/requester/errors.ts'
import type { PolicySource } from '../src/requester/types.ts'
import { homePaths, writeFileAtomic } from './home.ts'
import { ConfigError, UsageError } from './errors.ts'

const log = logger('concur:policy')

/**
 * The requester's trust policy file, `<home>/policy.json`. `trusted` may be
 * edited before a threshold is set; a policy is only *used* once it is
 * consistent (1 <= k <= |trusted|, required ⊆ trusted), which createPolicy
 * enforces.
 */
export interface PolicyFile {
  version: 1
  trusted: string[]
  threshold: number | null
  required: string[]
  minTier: SandboxTier | null
  /** operator name → its trusted keys (PROTOCOL.md §8.1); absent: every key its own operator */
  operators?: Record<string, string[]>
  /** the agreeing keys must span this many operators; absent or null: 1 */
  minOperators?: number | null
  /** count only attestations committed to in time (PROTOCOL.md §8.3); absent: not required */
  requireCommitment?: boolean
}

const EMPTY: PolicyFile = { version: 1, trusted: [], threshold: null, required: [], minTier: null }

export async function readPolicyFile (home: string): Promise<PolicyFile> {
  const path = homePaths(home).policy
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...EMPTY, trusted: [], required: [] }
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, path)
  }
  try {
    const p = JSON.parse(text) as Partial<PolicyFile>
    if (p.version !== 1 || !Array.isArray(p.trusted) || !Array.isArray(p.required ?? [])) throw new Error('expected { version: 1, trusted: [...], threshold, required: [...] }')
    if (p.operators !== undefined && (typeof p.operators !== 'object' || p.operators === null || Array.isArray(p.operators))) throw new Error('expected "operators" to be a map of operator name to did:keys')
    if (p.requireCommitment !== undefined && typeof p.requireCommitment !== 'boolean') throw new Error('expected "requireCommitment" to be true or false')
    return withOperators({ version: 1, trusted: p.trusted, threshold: p.threshold ?? null, required: p.required ?? [], minTier: p.minTier ?? null, ...(p.requireCommitment === true ? { requireCommitment: true } : {}) }, p.operators, p.minOperators)
  } catch (err) {
    throw new ConfigError(`corrupt policy file ${path}: ${(err as Error).message}`, path)
  }
}

/**
 * The optional operator fields, present only when they say something: a
 * policy without operators is the file (and the API answer) it always was.
 */
export function withOperators (p: PolicyFile, operators: Record<string, string[]> | undefined, minOperators: number | null | undefined): PolicyFile {
  const rest: PolicyFile = { version: p.version, trusted: p.trusted, threshold: p.threshold, required: p.required, minTier: p.minTier, ...(p.requireCommitment === true ? { requireCommitment: true } : {}) }
  // an operator left without keys (its last key removed or moved) is dropped;
  // anything else is kept as given, for createPolicy to accept or refuse
  const named = Object.entries(operators ?? {}).filter(([, dids]) => !(Array.isArray(dids) && dids.length === 0))
  return {
    ...rest,
    ...(named.length > 0 ? { operators: Object.fromEntries(named) } : {}),
    ...(minOperators != null ? { minOperators } : {})
  }
}

export async function writePolicyFile (home: string, p: PolicyFile): Promise<void> {
  await writeFileAtomic(homePaths(home).policy, JSON.stringify(p, null, 2) + '\n')
}

export function policyInput (p: PolicyFile): TrustPolicyInput {
  return {
    trusted: p.trusted,
    threshold: p.threshold ?? 0,
    ...(p.required.length > 0 ? { required: p.required } : {}),
    ...(p.minTier != null ? { minTier: p.minTier } : {}),
    ...(p.operators != null && Object.keys(p.operators).length > 0 ? { operators: p.operators } : {}),
    ...(p.minOperators != null ? { minOperators: p.minOperators } : {}),
    ...(p.requireCommitment === true ? { requireCommitment: true } : {})
  }
}

/** the operator a key of this file is grouped under, if any (by raw key: one key, one spelling) */
export function operatorOfDid (p: PolicyFile, did: string): string | undefined {
  const k = checkDid(did)
  return Object.entries(p.operators ?? {}).find(([, dids]) => dids.some(d => checkDid(d) === k))?.[0]
}

/**
 * Group keys under an operator (`trust add KEY… --operator NAME`), or, with
 * null, take them out of theirs (`--own-operator`: each its own again). A key
 * has one operator, so it leaves any other first.
 */
export function assignOperator (p: PolicyFile, dids: string[], operator: string | null): PolicyFile {
  const moving = new Set(dids.map(checkDid))
  const operators: Record<string, string[]> = {}
  for (const [name, keys] of Object.entries(p.operators ?? {})) operators[name] = keys.filter(d => !moving.has(checkDid(d)))
  if (operator != null) {
    const have = new Set((operators[operator] ?? []).map(checkDid))
    operators[operator] = [...(operators[operator] ?? []), ...dids.filter(d => { const k = checkDid(d); const fresh = !have.has(k); have.add(k); return fresh })]
  }
  return withOperators(p, operators, p.minOperators)
}

/** The usable policy, or a UsageError that says what to run to make it usable. */
export function toTrustPolicy (p: PolicyFile, where: string): TrustPolicy {
  if (p.trusted.length === 0) throw new UsageError(`no trusted keys in ${where}: add some with \`concur trust add DID…\``)
  if (p.threshold == null) throw new UsageError(`no threshold in ${where}: set one with \`concur policy set --threshold K\``)
  try {
    return createPolicy(policyInput(p))
  } catch (err) {
    if (isProtocolError(err)) throw new UsageError(`inconsistent trust policy in ${where}: ${err.message}`)
    throw err
  }
}

/** Validate a did:key as typed by a person (malformed and small-order keys refused). */
export function checkDid (did: string): string {
  try {
    return keyHex(publicKeyFromDid(did))
  } catch (err) {
    throw new UsageError(`not a usable did:key: ${did}: ${(err as Error).message}`)
  }
}

export function addTrusted (p: PolicyFile, dids: string[]): PolicyFile {
  const keys = new Set(p.trusted.map(checkDid))
  const trusted = [...p.trusted]
  for (const d of dids) {
    const k = checkDid(d)
    if (!keys.has(k)) { keys.add(k); trusted.push(d) }
  }
  return { ...p, trusted }
}

export function removeTrusted (p: PolicyFile, dids: string[]): PolicyFile {
  const gone = new Set(dids.map(checkDid))
  const trusted = p.trusted.filter(d => !gone.has(checkDid(d)))
  const required = p.required.filter(d => !gone.has(checkDid(d)))
  // an untrusted key belongs to no operator: it leaves its group with its trust
  const next: PolicyFile = assignOperator({ ...p, trusted, required }, dids, null)
  if (next.threshold != null && next.threshold > trusted.length) {
    throw new UsageError(`removing would leave ${trusted.length} trusted key(s) under the threshold ${next.threshold}: lower it first with \`concur policy set --threshold K\``)
  }
  checkPolicyFile(next)
  return next
}

export function setPolicy (p: PolicyFile, opts: { threshold?: number, required?: string[], minTier?: string | null, minOperators?: number | null, requireCommitment?: boolean }): PolicyFile {
  let next: PolicyFile = { ...p }
  if (opts.requireCommitment === true) next.requireCommitment = true
  // false is the default: not written, so the file is what it was before the rule
  else if (opts.requireCommitment === false) delete next.requireCommitment
  if (opts.minOperators !== undefined) next = withOperators(next, next.operators, opts.minOperators)
  if (opts.threshold != null) next.threshold = opts.threshold
  if (opts.required != null) next.required = opts.required
  if (opts.minTier !== undefined) {
    if (opts.minTier != null && !isSandboxTier(opts.minTier)) throw new UsageError(`--min-tier takes namespaces, namespaces+cgroups or vm (got ${opts.minTier})`)
    next.minTier = opts.minTier as SandboxTier | null
  }
  checkPolicyFile(next)
  return next
}

/**
 * Whether a policy file can be saved: the rules are createPolicy's (protocol/,
 * the one definition), the messages say what to run. A file may lack its
 * threshold while keys are being added; its keys and required set are then
 * checked against the largest threshold it could have.
 */
export function checkPolicyFile (p: PolicyFile): void {
  const trustedKeys = new Set(p.trusted.map(checkDid))
  for (const r of p.required) {
    if (!trustedKeys.has(checkDid(r))) throw new UsageError(`required key ${r} is not trusted: \`concur trust add ${r}\` first`)
  }
  if (p.threshold != null && p.threshold > trustedKeys.size) {
    throw new UsageError(`threshold ${p.threshold} is more than the ${trustedKeys.size} trusted key(s): add keys with \`concur trust add\` or lower --threshold`)
  }
  if (trustedKeys.size === 0 && Object.keys(p.operators ?? {}).length > 0) throw new UsageError('operators group trusted keys, and there are none: `concur trust add DID… --operator NAME`')
  if (p.threshold == null && trustedKeys.size === 0) return
  try {
    createPolicy(policyInput({ ...p, threshold: p.threshold ?? trustedKeys.size }))
  } catch (err) {
    if (isProtocolError(err)) throw new UsageError(`${err.message}: see \`concur policy --help\``)
    throw err
  }
}

export interface PolicyStoreEvents {
  'policy:changed': CustomEvent<TrustPolicy | null>
}

/**
 * The daemon's trust policy: loaded at start, replaced through `set` (the
 * API's POST /v1/policy, which `concur trust` and `concur policy set` use
 * when a daemon runs) or when policy.json is edited by hand (a watch on the
 * home directory: the file is replaced by rename, so the directory is what
 * changes). Every change is announced with 'policy:changed'; the requester
 * re-evaluates its open jobs on it.
 */
export class PolicyStore extends TypedEventEmitter<PolicyStoreEvents> implements PolicySource, Startable {
  private readonly home: string
  private policy: TrustPolicy | null = null
  private file: PolicyFile = { ...EMPTY }
  private problem = 'no trust policy yet'
  private watcher: FSWatcher | undefined
  private reading: Promise<void> = Promise.resolve()

  constructor (home: string) {
    super()
    this.home = home
  }

  async start (): Promise<void> {
    await this.reload()
    const path = homePaths(this.home).policy
    try {
      this.watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name === basename(path)) this.reading = this.reading.then(async () => { await this.reload() })
      })
      this.watcher.on('error', (err) => { log.error('watching %s: %e', path, err) })
    } catch (err) {
      // no inotify (a full watch table): changes still arrive through the API
      log.error('cannot watch %s: %e', path, err)
    }
  }

  async stop (): Promise<void> {
    this.watcher?.close()
    await this.reading
  }

  /** the usable policy, or NoPolicyError with what to run */
  current (): TrustPolicy {
    if (this.policy == null) throw new NoPolicyError(this.problem)
    return this.policy
  }

  /** the file as saved, usable or not */
  saved (): PolicyFile {
    return this.file
  }

  /** save a policy file and use it at once (before this resolves) */
  async set (p: PolicyFile): Promise<PolicyFile> {
    checkPolicyFile(p)
    // in the one queue of reads: two saves (or a save and a watch event)
    // finish in the order they came, so an older policy never wins
    const done = this.reading.then(async () => {
      await writePolicyFile(this.home, p)
      await this.reload()
    })
    this.reading = done.catch(() => {})
    await done
    return this.file
  }

  private async reload (): Promise<void> {
    const where = homePaths(this.home).policy
    let next: TrustPolicy | null = null
    try {
      this.file = await readPolicyFile(this.home)
      next = toTrustPolicy(this.file, where)
      this.problem = ''
    } catch (err) {
      this.problem = (err as Error).message
    }
    const before = this.policy
    this.policy = next
    if (JSON.stringify(before?.input ?? null) !== JSON.stringify(next?.input ?? null)) {
      this.safeDispatchEvent('policy:changed', { detail: next })
    }
  }
}
