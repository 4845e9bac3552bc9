/**
 * The proof-bundle manifest: the single root of the CAR, a dag-cbor map
 * linking (by CID) the job envelope, the attestation envelopes and the
 * artifact DAG. Envelopes are raw blocks of their exact wire bytes, so the
 * signatures inside them verify over the very bytes the CAR carries.
 */
import { CID } from 'multiformats/cid'
import { CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, MH_SHA2_256 } from '../../../protocol/index.ts'
import type { SandboxTier, TrustPolicyInput } from '../../../protocol/index.ts'
import { ManifestSchemaError } from './errors.ts'

export const BUNDLE_TYPE = 'concur-proof-bundle'
export const BUNDLE_VERSION = 1
/** far above any real k-of-n; a cap keeps a hostile manifest from making the verifier do unbounded work */
export const MAX_BUNDLE_ATTESTATIONS = 1024

export interface BundleManifest {
  version: 1
  type: typeof BUNDLE_TYPE
  /** raw block: the job's DSSE envelope wire bytes */
  job: CID
  /** raw blocks: attestation DSSE envelope wire bytes */
  attestations: CID[]
  /** root of the UnixFS artifact DAG, every block of which is in the CAR */
  artifact: CID
  buildId: string
  /** the policy the requester applied: informational, a verifier applies its own */
  policy?: TrustPolicyInput
  /**
   * raw blocks: the commitment envelopes (PROTOCOL.md §8.3) of the counted
   * keys that the requester received before the artifact was first
   * revealed. Their signatures prove each key committed to this artifact;
   * that they came in time is the requester's word (no signature shows an
   * order). Absent: the requester did not require commitments.
   */
  commitments?: CID[]
}

const KEYS = new Set(['version', 'type', 'job', 'attestations', 'artifact', 'buildId', 'policy', 'commitments'])
const TIERS: readonly SandboxTier[] = ['namespaces', 'namespaces+cgroups', 'vm']

function isSha256 (cid: CID): boolean {
  return cid.multihash.code === MH_SHA2_256 && cid.multihash.digest.length === 32
}

function expectCid (x: unknown, path: string, codecs: readonly number[]): CID {
  const cid = CID.asCID(x)
  if (cid == null) throw new ManifestSchemaError(`${path}: expected a CID link`)
  if (cid.version !== 1) throw new ManifestSchemaError(`${path}: expected a CIDv1`)
  if (!isSha256(cid)) throw new ManifestSchemaError(`${path}: expected a sha2-256 multihash`)
  if (!codecs.includes(cid.code)) throw new ManifestSchemaError(`${path}: unexpected codec 0x${cid.code.toString(16)}`)
  return cid
}

function expectStrings (x: unknown, path: string): string[] {
  if (!Array.isArray(x) || x.length > 1024 || !x.every(s => typeof s === 'string' && s.length <= 256)) {
    throw new ManifestSchemaError(`${path}: expected an array of strings`)
  }
  return [...x] as string[]
}

function validatePolicyInput (x: unknown): TrustPolicyInput {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ManifestSchemaError('policy: expected a map')
  const o = x as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!['trusted', 'threshold', 'required', 'minTier', 'operators', 'minOperators', 'requireCommitment'].includes(k)) throw new ManifestSchemaError(`policy.${k}: unknown field`)
  }
  if (typeof o.threshold !== 'number' || !Number.isSafeInteger(o.threshold)) throw new ManifestSchemaError('policy.threshold: expected an integer')
  const out: TrustPolicyInput = { trusted: expectStrings(o.trusted, 'policy.trusted'), threshold: o.threshold }
  if (o.required !== undefined) out.required = expectStrings(o.required, 'policy.required')
  if (o.minTier !== undefined) {
    if (!TIERS.includes(o.minTier as SandboxTier)) throw new ManifestSchemaError('policy.minTier: unknown sandbox tier')
    out.minTier = o.minTier as SandboxTier
  }
  // shapes only: whether the policy is usable is createPolicy's question, and
  // this one is informational (a verifier applies its own)
  if (o.operators !== undefined) {
    if (typeof o.operators !== 'object' || o.operators === null || Array.isArray(o.operators) || CID.asCID(o.operators) != null) throw new ManifestSchemaError('policy.operators: expected a map')
    const entries = Object.entries(o.operators as Record<string, unknown>)
    if (entries.length > 1024) throw new ManifestSchemaError('policy.operators: more than 1024 operators')
    // by position, not name, in messages: a hostile bundle's names are not echoed
    out.operators = Object.fromEntries(entries.map(([name, dids], i) => {
      if (name.length === 0 || name.length > 64) throw new ManifestSchemaError(`policy.operators: name ${i}: expected 1..64 characters`)
      return [name, expectStrings(dids, `policy.operators (operator ${i})`)]
    }))
  }
  if (o.minOperators !== undefined) {
    if (typeof o.minOperators !== 'number' || !Number.isSafeInteger(o.minOperators)) throw new ManifestSchemaError('policy.minOperators: expected an integer')
    out.minOperators = o.minOperators
  }
  if (o.requireCommitment !== undefined) {
    if (typeof o.requireCommitment !== 'boolean') throw new ManifestSchemaError('policy.requireCommitment: expected a boolean')
    out.requireCommitment = o.requireCommitment
  }
  return out
}

/** Strict: unknown fields are refused, so a manifest has one meaning. */
export function validateManifest (x: unknown): BundleManifest {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || CID.asCID(x) != null) throw new ManifestSchemaError('manifest: expected a map')
  const o = x as Record<string, unknown>
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new ManifestSchemaError(`${k}: unknown field`)
  if (o.type !== BUNDLE_TYPE) throw new ManifestSchemaError(`type: expected "${BUNDLE_TYPE}"`)
  if (o.version !== BUNDLE_VERSION) throw new ManifestSchemaError(`version: expected ${BUNDLE_VERSION}, got ${String(o.version)}`)
  const job = expectCid(o.job, 'job', [CODEC_RAW])
  if (!Array.isArray(o.attestations)) throw new ManifestSchemaError('attestations: expected an array')
  if (o.attestations.length > MAX_BUNDLE_ATTESTATIONS) throw new ManifestSchemaError(`attestations: more than ${MAX_BUNDLE_ATTESTATIONS}`)
  const attestations = o.attestations.map((a, i) => expectCid(a, `attestations[${i}]`, [CODEC_RAW]))
  const artifact = expectCid(o.artifact, 'artifact', [CODEC_DAG_PB, CODEC_RAW])
  if (typeof o.buildId !== 'string' || o.buildId.length === 0 || o.buildId.length > 128) throw new ManifestSchemaError('buildId: expected a string')
  let buildCid: CID
  try {
    buildCid = CID.parse(o.buildId)
  } catch {
    throw new ManifestSchemaError('buildId: not a CID')
  }
  if (buildCid.code !== CODEC_DAG_CBOR || buildCid.toString() !== o.buildId) throw new ManifestSchemaError('buildId: expected a canonical dag-cbor CID string')
  const manifest: BundleManifest = { version: 1, type: BUNDLE_TYPE, job, attestations, artifact, buildId: o.buildId }
  if (o.policy !== undefined) manifest.policy = validatePolicyInput(o.policy)
  if (o.commitments !== undefined) {
    if (!Array.isArray(o.commitments)) throw new ManifestSchemaError('commitments: expected an array')
    if (o.commitments.length > MAX_BUNDLE_ATTESTATIONS) throw new ManifestSchemaError(`commitments: more than ${MAX_BUNDLE_ATTESTATIONS}`)
    manifest.commitments = o.commitments.map((a, i) => expectCid(a, `commitments[${i}]`, [CODEC_RAW]))
  }
  return manifest
}

/** dag-cbor cannot encode `undefined`: optional fields are left out, not set to undefined. */
export function manifestValue (m: BundleManifest): Record<string, unknown> {
  const value: Record<string, unknown> = {
    version: m.version,
    type: m.type,
    job: m.job,
    attestations: m.attestations,
    artifact: m.artifact,
    buildId: m.buildId
  }
  if (m.policy !== undefined) {
    const p: Record<string, unknown> = { trusted: [...m.policy.trusted], threshold: m.policy.threshold }
    if (m.policy.required !== undefined) p.required = [...m.policy.required]
    if (m.policy.minTier !== undefined) p.minTier = m.policy.minTier
    // written only when set: a policy without operators records the manifest it always did
    if (m.policy.operators !== undefined) p.operators = Object.fromEntries(Object.entries(m.policy.operators).map(([name, dids]) => [name, [...dids]]))
    if (m.policy.minOperators !== undefined) p.minOperators = m.policy.minOperators
    if (m.policy.requireCommitment === true) p.requireCommitment = true
    value.policy = p
  }
  // written only when there are some: a bundle without commitments is the one it always was
  if (m.commitments !== undefined && m.commitments.length > 0) value.commitments = m.commitments
  return value
}
