import { readFile, stat } from 'node:fs/promises'
import { createPolicy, isProtocolError, isSandboxTier, publicKeyFromDid, keyHex } from '../protocol/index.ts'
import type { SandboxTier, TrustPolicy, TrustPolicyInput } from '../protocol/index.ts'
import { homePaths, writeFileAtomic } from './home.ts'
import { ConfigError, UsageError } from './errors.ts'

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
    return { version: 1, trusted: p.trusted, threshold: p.threshold ?? null, required: p.required ?? [], minTier: p.minTier ?? null }
  } catch (err) {
    throw new ConfigError(`corrupt policy file ${path}: ${(err as Error).message}`, path)
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
    ...(p.minTier != null ? { minTier: p.minTier } : {})
  }
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
  const next: PolicyFile = { ...p, trusted, required }
  if (next.threshold != null && next.threshold > trusted.length) {
    throw new UsageError(`removing would leave ${trusted.length} trusted key(s) under the threshold ${next.threshold}: lower it first with \`concur policy set --threshold K\``)
  }
  return next
}

export function setPolicy (p: PolicyFile, opts: { threshold?: number, required?: string[], minTier?: string | null }): PolicyFile {
  const next: PolicyFile = { ...p }
  if (opts.threshold != null) next.threshold = opts.threshold
  if (opts.required != null) next.required = opts.required
  if (opts.minTier !== undefined) {
    if (opts.minTier != null && !isSandboxTier(opts.minTier)) throw new UsageError(`--min-tier takes namespaces, namespaces+cgroups or vm (got ${opts.minTier})`)
    next.minTier = opts.minTier as SandboxTier | null
  }
  const trustedKeys = new Set(next.trusted.map(checkDid))
  for (const r of next.required) {
    if (!trustedKeys.has(checkDid(r))) throw new UsageError(`required key ${r} is not trusted: \`concur trust add ${r}\` first`)
  }
  if (next.threshold != null && (!Number.isInteger(next.threshold) || next.threshold < 1)) throw new UsageError('--threshold must be a whole number >= 1')
  if (next.threshold != null && next.threshold > trustedKeys.size) {
    throw new UsageError(`threshold ${next.threshold} is more than the ${trustedKeys.size} trusted key(s): add keys with \`concur trust add\` or lower --threshold`)
  }
  return next
}

/** Cached by mtime so a daemon sees `concur policy set` without a restart. */
export function policyLoader (home: string): () => Promise<TrustPolicy> {
  let cached: { mtimeMs: number, policy: TrustPolicy } | undefined
  return async () => {
    const path = homePaths(home).policy
    const st = await stat(path).catch(() => null)
    if (st != null && cached != null && cached.mtimeMs === st.mtimeMs) return cached.policy
    const policy = toTrustPolicy(await readPolicyFile(home), path)
    if (st != null) cached = { mtimeMs: st.mtimeMs, policy }
    return policy
  }
}
