/**
 * Offline verification of a proof bundle. Pure apart from hashing: no I/O,
 * no network, no clock (the caller passes `now`), so a bundle can be checked
 * anywhere, long after the network that produced it is gone.
 *
 * Nothing in the bundle is trusted: every block is re-hashed, every envelope
 * re-verified, the verdict recomputed under the VERIFIER's policy (the policy
 * recorded in the manifest is only informational).
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { sha256 } from '@noble/hashes/sha2.js'
import { CID } from 'multiformats/cid'
import {
  CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, MH_SHA2_256, SignatureError, bytesEqual, decodeAttestation, decodeCommitment,
  decodeJobAnnouncement, envelopePayload, evaluateVerdict, isProtocolError, parseEnvelope, parseJson
} from '../../../protocol/index.ts'
import type { CommitmentEvidence, JobVariation, SignedAttestation, TrustPolicy, TrustPolicyInput, Verdict } from '../../../protocol/index.ts'
import { parseCar } from './car-reader.ts'
import type { CarBlock } from './car-reader.ts'
import { CarFormatError, ManifestSchemaError } from './errors.ts'
import type { BundleProblem, BundleProblemCode } from './errors.ts'
import { validateManifest } from './manifest.ts'
import type { BundleManifest } from './manifest.ts'

export interface VerifyBundleOptions {
  /** the verifier's own trust policy */
  policy: TrustPolicy
  /** ms since epoch; attestations and jobs claiming a later time are refused */
  now: number
}

export interface BundleReport {
  ok: boolean
  verdict?: Verdict
  jobId?: string
  buildId?: string
  artifact?: string
  /** CID of the manifest (the CAR root) */
  root?: string
  /** blocks in the CAR */
  blocks?: number
  /** the policy the requester recorded in the manifest (informational, not applied) */
  bundlePolicy?: TrustPolicyInput
  problems: BundleProblem[]
}

const IDENTITY = 0x00
/** names listed in one message, so that a hostile bundle cannot produce a huge report */
const LIST_LIMIT = 5

interface Entry {
  block: CarBlock
  /** bytes hash to the CID under an accepted hash function */
  good: boolean
}

/** Codec + multihash: a CIDv0 link and the CIDv1 of the same block are the same block. */
function keyOf (cid: CID): string {
  return CID.createV1(cid.code, cid.multihash).toString()
}

function listed (items: string[]): string {
  const head = items.slice(0, LIST_LIMIT).join(', ')
  return items.length > LIST_LIMIT ? `${head} and ${items.length - LIST_LIMIT} more` : head
}

/** The worker an attestation CLAIMS to be from, for naming it in a problem. Never trusted. */
function claimedWorker (bytes: Uint8Array): string {
  try {
    const env = parseEnvelope(bytes)
    const st = parseJson(envelopePayload(env)) as { predicate?: { runDetails?: { builder?: { id?: unknown } } } }
    const id = st.predicate?.runDetails?.builder?.id
    if (typeof id === 'string') return id.slice(0, 128)
    const keyid = env.signatures[0]?.keyid
    if (typeof keyid === 'string' && keyid !== '') return keyid.slice(0, 128)
  } catch {}
  return 'an unidentifiable worker'
}

function describe (err: unknown): string {
  if (isProtocolError(err)) return `${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}

class Checker {
  readonly problems: BundleProblem[] = []
  readonly hashProblems: BundleProblem[] = []
  readonly entries = new Map<string, Entry>()
  readonly roles = new Map<string, string>()

  add (code: BundleProblemCode, message: string): void {
    this.problems.push({ code, message })
  }

  /** Hashes every block. A block may appear twice in a CAR; one good copy is enough. */
  hashAll (blocks: CarBlock[]): void {
    const bad = new Map<string, CarBlock>()
    for (const block of blocks) {
      const { cid } = block
      const key = keyOf(cid)
      let good = false
      if (cid.multihash.code !== MH_SHA2_256 || cid.multihash.digest.length !== 32) {
        // identity "hashes" carry arbitrary data; any other function is one this verifier does not vouch for
        this.hashProblems.push({ code: 'ERR_HASH_FUNCTION', message: `block ${cid.toString()} is named with multihash 0x${cid.multihash.code.toString(16)} (length ${cid.multihash.digest.length}); only 32-byte sha2-256 is accepted` })
      } else {
        good = bytesEqual(sha256(block.bytes), cid.multihash.digest)
        if (!good) bad.set(key, block)
      }
      const existing = this.entries.get(key)
      if (existing === undefined || (!existing.good && good)) this.entries.set(key, { block, good })
    }
    this.badBlocks = bad
  }

  badBlocks = new Map<string, CarBlock>()

  /** ERR_BLOCK_HASH for each corrupt block, named by CID and, once known, by what it is. */
  reportBadBlocks (): void {
    for (const [key, block] of this.badBlocks) {
      const role = this.roles.get(key) ?? 'a block not referenced by the manifest'
      this.hashProblems.push({ code: 'ERR_BLOCK_HASH', message: `block ${block.cid.toString()} (${role}, at byte ${block.offset}) does not hash to its CID` })
    }
  }

  /** The good bytes of a block, or undefined after reporting why not. */
  blockFor (cid: CID, role: string): Uint8Array | undefined {
    const key = keyOf(cid)
    if (!this.roles.has(key)) this.roles.set(key, role)
    const entry = this.entries.get(key)
    if (entry === undefined) {
      this.add('ERR_MISSING_BLOCK', `${role} block ${cid.toString()} is not in the bundle`)
      return undefined
    }
    // a corrupt block is reported once, as ERR_BLOCK_HASH with this role
    return entry.good ? entry.block.bytes : undefined
  }

  manifest (root: CID): BundleManifest | undefined {
    const bytes = this.blockFor(root, 'the manifest')
    if (bytes === undefined) return undefined
    if (root.code !== CODEC_DAG_CBOR) {
      this.add('ERR_MANIFEST', `root ${root.toString()} is not a dag-cbor block (codec 0x${root.code.toString(16)})`)
      return undefined
    }
    try {
      return validateManifest(dagCbor.decode(bytes))
    } catch (err) {
      this.add('ERR_MANIFEST', err instanceof ManifestSchemaError ? `manifest ${err.message}` : `manifest is not valid dag-cbor: ${describe(err)}`)
      return undefined
    }
  }

  /** Every block of the artifact DAG, from CAR blocks only. Returns the keys visited. */
  walkArtifact (artifact: CID): Set<string> {
    const visited = new Set<string>()
    const missing: string[] = []
    const malformed: string[] = []
    const stack: CID[] = [artifact]
    while (stack.length > 0) {
      const cid = stack.pop() as CID
      const key = keyOf(cid)
      if (visited.has(key)) continue
      visited.add(key)
      if (cid.code !== CODEC_DAG_PB && cid.code !== CODEC_RAW) {
        // a UnixFS DAG has only these; following anything else would let a
        // DAG hide content a UnixFS reader never shows
        malformed.push(`${cid.toString()} has codec 0x${cid.code.toString(16)}`)
        continue
      }
      // inline data: nothing to store or fetch
      if (cid.multihash.code === IDENTITY) continue
      if (!this.roles.has(key)) this.roles.set(key, 'an artifact block')
      const entry = this.entries.get(key)
      if (entry === undefined) { missing.push(cid.toString()); continue }
      // corrupt: reported as ERR_BLOCK_HASH; its links cannot be believed
      if (!entry.good) continue
      if (cid.code !== CODEC_DAG_PB) continue
      let links: dagPb.PBLink[]
      try {
        links = dagPb.decode(entry.block.bytes).Links
      } catch (err) {
        malformed.push(`${cid.toString()} is not valid dag-pb (${describe(err)})`)
        continue
      }
      for (let i = links.length - 1; i >= 0; i--) {
        const link = links[i]
        if (link != null) stack.push(CID.asCID(link.Hash) ?? CID.decode(link.Hash.bytes))
      }
    }
    if (missing.length > 0) this.add('ERR_ARTIFACT_INCOMPLETE', `the artifact DAG ${artifact.toString()} is incomplete: ${missing.length} block(s) missing from the bundle: ${listed(missing)}`)
    if (malformed.length > 0) this.add('ERR_ARTIFACT_MALFORMED', `the artifact DAG ${artifact.toString()} is not a UnixFS DAG: ${listed(malformed)}`)
    return visited
  }
}

/**
 * Checks, in order: CAR syntax; CARv1 with exactly one root; every block
 * hashes (sha2-256) to its CID; the manifest; the job envelope (signature,
 * buildId; expiry ignored: a bundle is checked long after the job ended);
 * each attestation (signature, same buildId); the artifact DAG is complete
 * in the CAR; no unreferenced blocks; the verdict under `opts.policy` over
 * the bundled attestations is `accepted` for manifest.artifact.
 *
 * Never throws: anything wrong is a problem in the report, ok is false.
 */
export function verifyBundle (bytes: Uint8Array, opts: VerifyBundleOptions): BundleReport {
  const c = new Checker()
  const report: BundleReport = { ok: false, problems: [] }
  const finish = (): BundleReport => {
    c.reportBadBlocks()
    report.problems = [...c.hashProblems, ...c.problems]
    report.ok = report.problems.length === 0 && report.verdict?.status === 'accepted'
    return report
  }
  try {
    let car
    try {
      car = parseCar(bytes)
    } catch (err) {
      c.add('ERR_CAR_MALFORMED', `not a readable CAR file: ${err instanceof CarFormatError ? err.message : describe(err)}`)
      return finish()
    }
    if (car.version !== 1) {
      c.add('ERR_CAR_VERSION', `CAR version ${car.version}; a proof bundle is a CARv1`)
      return finish()
    }
    report.blocks = car.blocks.length
    if (car.roots.length !== 1) {
      c.add('ERR_ROOTS', `a proof bundle has exactly one root (its manifest), this CAR has ${car.roots.length}`)
      return finish()
    }
    const root = car.roots[0] as CID
    report.root = root.toString()
    c.hashAll(car.blocks)

    const manifest = c.manifest(root)
    if (manifest === undefined) return finish()
    report.artifact = manifest.artifact.toString()
    if (manifest.policy !== undefined) report.bundlePolicy = manifest.policy

    // the job: what was asked for, and by whom
    let buildId = manifest.buildId
    // the job the verdict is judged as (its own answers count for it; a job
    // that asked for variations counts only varied answers to itself)
    let judged: { jobId: string, vary?: JobVariation[] } | undefined
    const jobBytes = c.blockFor(manifest.job, 'the job envelope')
    if (jobBytes !== undefined) {
      try {
        const job = decodeJobAnnouncement(jobBytes, { now: opts.now, allowExpired: true })
        report.jobId = job.jobId
        judged = { jobId: job.jobId, ...(job.job.vary != null ? { vary: job.job.vary } : {}) }
        buildId = job.job.buildId
        report.buildId = buildId
        if (manifest.buildId !== buildId) c.add('ERR_BUILD_ID_MISMATCH', `manifest says build ${manifest.buildId}, the job is for ${buildId}`)
      } catch (err) {
        if (err instanceof SignatureError) c.add('ERR_JOB_SIGNATURE', `job envelope ${manifest.job.toString()}: the signature does not verify (${err.message})`)
        else c.add('ERR_JOB_INVALID', `job envelope ${manifest.job.toString()} is invalid: ${describe(err)}`)
      }
    }

    // the attestations: who built it and what they got
    const valid: SignedAttestation[] = []
    manifest.attestations.forEach((cid, i) => {
      const role = `attestation ${i}`
      const bytes = c.blockFor(cid, `${role} envelope`)
      if (bytes === undefined) return
      let att: SignedAttestation
      try {
        att = decodeAttestation(bytes, { now: opts.now })
      } catch (err) {
        const worker = claimedWorker(bytes)
        if (err instanceof SignatureError) c.add('ERR_ATTESTATION_SIGNATURE', `${role} (${cid.toString()}) claiming to be from ${worker}: the signature does not verify`)
        else c.add('ERR_ATTESTATION_INVALID', `${role} (${cid.toString()}) claiming to be from ${worker} is invalid: ${describe(err)}`)
        return
      }
      if (att.claim.buildId !== buildId) {
        c.add('ERR_ATTESTATION_BUILD_ID', `${role} (${cid.toString()}) by ${att.claim.worker} is for build ${att.claim.buildId}, not ${buildId}`)
        return
      }
      valid.push(att)
    })

    // the artifact: every block present, so the bundle alone reproduces it
    const artifactKeys = c.walkArtifact(manifest.artifact)

    // unreferenced blocks: only meaningful when the walk saw everything (a
    // corrupt node hides its children, which would show up here as noise)
    if (c.badBlocks.size === 0 && !c.problems.some(p => p.code === 'ERR_ARTIFACT_MALFORMED')) {
      const referenced = new Set<string>([keyOf(root), keyOf(manifest.job), ...manifest.attestations.map(keyOf), ...(manifest.commitments ?? []).map(keyOf), ...artifactKeys])
      const extra = [...c.entries.keys()].filter(k => !referenced.has(k))
      // smuggled blocks: content nobody attested that CAR tools would import along with the artifact
      if (extra.length > 0) c.add('ERR_UNREFERENCED_BLOCK', `${extra.length} block(s) are not referenced by the manifest: ${listed(extra)}`)
    }

    // the commitments (PROTOCOL.md §8.3): each checked like any envelope.
    // Their order is the requester's word: the bundle carries only those it
    // received before the artifact was first revealed, so every one is
    // placed before every reveal; what a signature proves is that the key
    // committed to this very build, job and artifact
    const committed: Array<CommitmentEvidence['commitments'][number]> = []
    ;(manifest.commitments ?? []).forEach((cid, i) => {
      const bytes = c.blockFor(cid, `commitment ${i} envelope`)
      if (bytes === undefined) return
      try {
        const sc = decodeCommitment(bytes, { now: opts.now })
        committed.push({ commitment: sc.commitment, signer: sc.signer, order: i, at: 0 })
      } catch (err) {
        c.add('ERR_COMMITMENT_INVALID', `commitment ${i} (${cid.toString()}) is invalid: ${describe(err)}`)
      }
    })
    // every reveal after every commitment, by more than any lead
    const revealed = { order: (manifest.commitments ?? []).length, at: Number.MAX_SAFE_INTEGER }
    const evidence: CommitmentEvidence = {
      commitments: committed,
      revealed: new Map(valid.flatMap(a => a.claim.result.status === 'success' ? [[a.claim.result.artifact, revealed] as const] : []))
    }
    const verdict = evaluateVerdict(opts.policy, buildId, valid, { ...(judged ?? {}), commitments: evidence })
    report.verdict = verdict
    if (verdict.status !== 'accepted') {
      c.add('ERR_POLICY_NOT_MET', `verdict under the given policy is "${verdict.status}" (threshold ${verdict.threshold}, ${valid.length} valid attestation(s)): ${verdict.reasons.join('; ')}`)
    } else if (verdict.artifact !== manifest.artifact.toString()) {
      c.add('ERR_ARTIFACT_MISMATCH', `the attestations accept ${verdict.artifact ?? '(none)'}, but the bundle's artifact is ${manifest.artifact.toString()}`)
    }
    return finish()
  } catch (err) {
    // a bug, not a property of the input; still never thrown at the caller
    c.add('ERR_CAR_MALFORMED', `verification failed unexpectedly: ${describe(err)}`)
    return finish()
  }
}
