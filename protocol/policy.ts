/**
 * Trust policy: which keys count, and how many must agree. Loaded strictly:
 * a policy that cannot be met, or that names a weak key, is refused up front
 * rather than silently producing verdicts that can never be `accepted`.
 */
import { PolicyError, ProtocolError } from './errors.ts'
import { isSandboxTier } from './build.ts'
import type { SandboxTier } from './build.ts'
import { keyHex, publicKeyFromDid } from './keys.ts'

export interface TrustPolicyInput {
  trusted: string[]
  threshold: number
  required?: string[]
  minTier?: SandboxTier
  /**
   * Operator name → the trusted did:keys it runs (PROTOCOL.md §8.1). A key
   * named by no operator is its own operator. Names are the requester's
   * knowledge, not anything a key says about itself.
   */
  operators?: Record<string, string[]>
  /** the counted keys of an accepted artifact span at least this many operators (default 1: today's rule) */
  minOperators?: number
  /**
   * Count an attestation only if its key's commitment (PROTOCOL.md §8.3)
   * reached this node before any attestation naming the same artifact did:
   * a trusted key that copies a CID it learned from gossip is never counted.
   * Absent or false: today's rule (every trusted attestation counts).
   */
  requireCommitment?: boolean
}

export interface TrustPolicy {
  readonly trusted: ReadonlyMap<string, string>
  readonly threshold: number
  readonly required: ReadonlySet<string>
  readonly minTier?: SandboxTier
  /** raw key (hex) → operator name, for the keys an operator was named for */
  readonly operatorOf: ReadonlyMap<string, string>
  /** distinct operators the counted keys must span; 1 when the policy sets none */
  readonly minOperators: number
  /** §8.3: only attestations committed to in time count */
  readonly requireCommitment: boolean
  readonly input: TrustPolicyInput
}

const MAX_TRUSTED = 1024
/**
 * Operator names are shown to people (status, reasons, `policy show`) and are
 * keys of a JSON/dag-cbor map: a short plain token, so that no name can carry
 * terminal controls or look like another (no spaces, no case folding games).
 */
const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

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

/**
 * The operator a trusted key (raw, hex) counts for: its named operator, or, for a key no
 * operator names, the key itself (one key is at least one operator: a policy
 * without operators counts exactly as before). The two kinds of identity
 * never collide: a name is a token, a key's identity is its did:key.
 */
export function operatorOfKey (policy: TrustPolicy, key: string): string {
  const did = policy.trusted.get(key)
  if (did === undefined) throw new PolicyError('not a trusted key: only trusted keys have an operator')
  return policy.operatorOf.get(key) ?? did
}

function operatorsOf (input: TrustPolicyInput, trusted: ReadonlyMap<string, string>): Map<string, string> {
  const operatorOf = new Map<string, string>()
  if (input.operators === undefined) return operatorOf
  const ops: unknown = input.operators
  if (typeof ops !== 'object' || ops === null || Array.isArray(ops)) throw new PolicyError('operators must be a map of operator name to did:key strings')
  for (const [name, dids] of Object.entries(ops as Record<string, unknown>)) {
    if (!OPERATOR_NAME.test(name)) throw new PolicyError(`operator name ${JSON.stringify(name.slice(0, 80))}: expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`)
    // an operator without keys would be a name that can never count: a typo, most likely
    if (!Array.isArray(dids) || dids.length === 0) throw new PolicyError(`operators.${name} must be a non-empty array of did:key strings`)
    dids.forEach((did: unknown, i) => {
      const k = keyOf(did, `operators.${name}[${i}]`)
      // only trusted keys are counted, so only they can be grouped: naming an
      // untrusted key would suggest it counts for its operator
      if (!trusted.has(k)) throw new PolicyError(`operators.${name}[${i}] is not a trusted key`)
      const before = operatorOf.get(k)
      // one key, two operators: which one its signature counts for would depend on reading order
      if (before !== undefined && before !== name) throw new PolicyError(`operators.${name}[${i}] is already run by operator ${before}: a key has one operator`)
      operatorOf.set(k, name)
    })
  }
  return operatorOf
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
  const operatorOf = operatorsOf(input, trusted)
  const m = input.minOperators ?? 1
  if (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 1) throw new PolicyError('minOperators must be an integer >= 1')
  // m counts operators among the k agreeing keys: m > k would silently raise
  // the threshold to m, so the policy would not mean what its threshold says
  if (m > k) throw new PolicyError(`minOperators ${m} exceeds the threshold ${k}: k agreeing keys can span at most k operators (raise the threshold)`)
  // Unmeetable like k > |trusted|: with fewer distinct operators than m among
  // the trusted keys (each unnamed key its own), no set of agreeing keys can
  // ever span m. With at least m it can: one key of each of m operators plus
  // any k - m others (a required key among them), so nothing else is checked.
  const distinct = new Set([...trusted].map(([key, did]) => operatorOf.get(key) ?? did)).size
  if (m > distinct) throw new PolicyError(`minOperators ${m} exceeds the ${distinct} distinct operator(s) of the trusted keys: it could never be met`)
  if (input.requireCommitment !== undefined && typeof input.requireCommitment !== 'boolean') throw new PolicyError('requireCommitment must be true or false')
  const copy: TrustPolicyInput = { trusted: [...input.trusted], threshold: k }
  if (input.required !== undefined) copy.required = [...input.required]
  if (input.minTier !== undefined) copy.minTier = input.minTier
  if (input.operators !== undefined) copy.operators = Object.fromEntries(Object.entries(input.operators).map(([name, dids]) => [name, [...dids]]))
  if (input.minOperators !== undefined) copy.minOperators = m
  // false is the default: it is not written, so a policy without the rule reads (and hashes) as before
  if (input.requireCommitment === true) copy.requireCommitment = true
  const policy: TrustPolicy = {
    trusted,
    threshold: k,
    required,
    ...(input.minTier !== undefined ? { minTier: input.minTier } : {}),
    operatorOf,
    minOperators: m,
    requireCommitment: input.requireCommitment === true,
    input: Object.freeze(copy)
  }
  return Object.freeze(policy)
}
