/**
 * Trust policy: which keys count, and how many must agree. Loaded strictly:
 * a policy that cannot be met, or that names a weak key, is refused up front
 * rather than silently producing verdicts that can never be `accepted`.
 */
import { PolicyError, ProtocolError } from './errors.ts'
import { isSandboxTier } from './build.ts'
import type { SandboxTier } from './build.ts'
import { keyHex, publicKeyFromDid } from './keys.ts'

export interface TrustPolicyInput { trusted: string[]; threshold: number; required?: string[]; minTier?: SandboxTier }

export interface TrustPolicy {
  readonly trusted: ReadonlyMap<string, string>
  readonly threshold: number
  readonly required: ReadonlySet<string>
  readonly minTier?: SandboxTier
  readonly input: TrustPolicyInput
}

const MAX_TRUSTED = 1024

function keyOf (did: unknown, where: string): string {
  if (typeof did !== 'string') throw new PolicyError(`${where}: expected a did:key string`)
  try {
    return keyHex(publicKeyFromDid(did))
  } catch (err) {
    const code = err instanceof ProtocolError ? ` (${err.code})` : ''
    throw new PolicyError(`${where}: unusable key ${did.slice(0, 80)}${code}`, { cause: err })
  }
}

/**
 * Whether a signer is one of the policy's trusted keys: by raw public key,
 * never by did string or keyid (a key has many spellings, one raw form).
 */
export function isTrustedSigner (policy: TrustPolicy, signer: Uint8Array): boolean {
  return policy.trusted.has(keyHex(signer))
}

export function createPolicy (input: TrustPolicyInput): TrustPolicy {
  if (typeof input !== 'object' || input === null) throw new PolicyError('policy must be an object')
  if (!Array.isArray(input.trusted)) throw new PolicyError('trusted must be an array of did:key strings')
  if (input.trusted.length > MAX_TRUSTED) throw new PolicyError(`at most ${MAX_TRUSTED} trusted keys`)
  const trusted = new Map<string, string>()
  input.trusted.forEach((did, i) => {
    const k = keyOf(did, `trusted[${i}]`)
    // Counting is by raw key: the same key listed twice is one key, and must not inflate |trusted|.
    if (!trusted.has(k)) trusted.set(k, did)
  })
  const k = input.threshold
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) throw new PolicyError('threshold must be an integer >= 1')
  if (k > trusted.size) throw new PolicyError(`threshold ${k} exceeds the ${trusted.size} distinct trusted keys: it could never be met`)
  const required = new Set<string>()
  if (input.required !== undefined) {
    if (!Array.isArray(input.required)) throw new PolicyError('required must be an array of did:key strings')
    input.required.forEach((did, i) => {
      const rk = keyOf(did, `required[${i}]`)
      if (!trusted.has(rk)) throw new PolicyError(`required[${i}] is not a trusted key`)
      required.add(rk)
    })
  }
  if (input.minTier !== undefined && !isSandboxTier(input.minTier)) throw new PolicyError(`unknown sandbox tier ${String(input.minTier)}`)
  const copy: TrustPolicyInput = { trusted: [...input.trusted], threshold: k }
  if (input.required !== undefined) copy.required = [...input.required]
  if (input.minTier !== undefined) copy.minTier = input.minTier
  const policy: TrustPolicy = {
    trusted,
    threshold: k,
    required,
    ...(input.minTier !== undefined ? { minTier: input.minTier } : {}),
    input: Object.freeze(copy)
  }
  return Object.freeze(policy)
}
