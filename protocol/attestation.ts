/**
 * Attestation: a worker's signed statement of what a build produced.
 *
 * Encoded as an in-toto Statement v1 with a SLSA Provenance v1 predicate so that
 * standard in-toto/SLSA tooling can read and check it. The subject digest is the
 * sha256 of the artifact's root block, which equals the sha2-256 digest inside
 * its CID (see PROTOCOL.md §5.2, "How a CID maps to an in-toto digest").
 */
import { BuildIdMismatchError, FutureError, SchemaError, UnsupportedVersionError } from './errors.ts'
import { buildIdOf, isSandboxTier, validateBuildDefinition, validateEnvironment } from './build.ts'
import type { BuildDefinition, Environment, SandboxTier } from './build.ts'
import { CODEC_DAG_CBOR, CODEC_RAW, UNIXFS_CODECS, parseCid, sha256HexOfCid } from './cid.ts'
import type { CID } from 'multiformats/cid'
import { envelopeBytes, signEnvelope, verifyEnvelopeSignature } from './dsse.ts'
import type { Envelope } from './dsse.ts'
import { guard, openEnvelope, readEnvelope } from './decode.ts'
import { base64Encode, hexEncode, utf8Encode } from './encoding.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { publicKeyFromDid } from './keys.ts'
import type { SigningKey } from './keys.ts'
import { MAX_VARIED_CPUS, PEER_ID_PATTERN, VARIED_HOSTNAME_PATTERN, VARIED_TIMEZONES } from './job.ts'
import type { BuildVariation } from './job.ts'
import { expectArray, expectInteger, expectLiteral, expectObject, expectString, firstDifference, isRecord, join } from './schema.ts'
import { DEFAULT_MAX_FUTURE_SKEW_MS, parseTime } from './time.ts'

export const ATTESTATION_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const PROVENANCE_PREDICATE_TYPE = 'https://slsa.dev/provenance/v1'
export const CONCUR_BUILD_TYPE = 'https://concur.dev/build/v1'
/**
 * Version 2 of the build type: version 1 and a required
 * `internalParameters.host`, the toolchain of the host a `host`-environment
 * build ran on (PROTOCOL.md §5.2). A version, not a field added to version 1:
 * a node that predates it IGNOREs the attestation (an unknown buildType),
 * where an unknown field would be REJECTed and score its relayers down.
 */
export const CONCUR_BUILD_TYPE_V2 = 'https://concur.dev/build/v2'
/** the most toolchain packages a host record lists */
export const MAX_HOST_PACKAGES = 32

/**
 * What a worker building in the `host` environment used: its distribution
 * (`os`, e.g. PRETTY_NAME of /etc/os-release) and the versions of its
 * toolchain packages (compiler, C library, binutils, make, …), sorted by name.
 * Volunteers do not share a host: two workers that agree on a CID with
 * different toolchains are stronger evidence than two on one, and two that
 * disagree are explained by it. A rootfs build names its toolchain by CID.
 */
export interface HostToolchain {
  os: string
  packages: Array<{ name: string, version: string }>
}
const LOG_MEDIA_TYPE = 'text/plain; charset=utf-8'
const RESULT_MEDIA_TYPE = 'application/json'
const MAX_REASON_LENGTH = 1024
const MAX_PARALLELISM = 1024
/**
 * Largest |clockOffsetSeconds| an attestation may record: 10 years of 365
 * days. Workers derive +1 h..+72 h (clockOffsetFor); the bound only keeps a
 * recorded offset a plausible clock, far inside a safe integer and any time_t.
 */
export const MAX_CLOCK_OFFSET_SECONDS = 10 * 365 * 24 * 3600

export type BuildResult =
  | { status: 'success'; artifact: string; exitCode: 0 }
  | { status: 'failure'; exitCode: number | null; reason: string }

export interface AttestationClaim {
  buildId: string
  jobId: string
  source: string
  environment: Environment
  definition: BuildDefinition
  worker: string
  workerPeerId: string
  sandboxTier: SandboxTier
  parallelism: number
  startedAt: string
  finishedAt: string
  result: BuildResult
  log: string | null
  /** what the worker varied (the job's `vary`); absent: nothing was varied */
  variation?: BuildVariation
  /** the host's toolchain, for a `host` environment only (buildType v2); absent: not recorded (v1) */
  host?: HostToolchain
}

/** in-toto ResourceDescriptor (the subset concur emits). */
export interface ResourceDescriptor {
  name?: string
  uri?: string
  digest?: { sha256: string }
  content?: string
  mediaType?: string
  annotations?: Record<string, string | number | null>
}

export interface ProvenanceStatement {
  _type: typeof STATEMENT_TYPE
  subject: ResourceDescriptor[]
  predicateType: typeof PROVENANCE_PREDICATE_TYPE
  predicate: {
    buildDefinition: {
      buildType: typeof CONCUR_BUILD_TYPE | typeof CONCUR_BUILD_TYPE_V2
      externalParameters: { definition: BuildDefinition; buildId: string; jobId: string }
      internalParameters: { sandboxTier: SandboxTier; parallelism: number; workerPeerId: string; variation?: BuildVariation; host?: HostToolchain }
      resolvedDependencies: ResourceDescriptor[]
    }
    runDetails: {
      builder: { id: string }
      metadata: { invocationId: string; startedOn: string; finishedOn: string }
      byproducts: ResourceDescriptor[]
    }
  }
}

export interface SignedAttestation {
  envelope: Envelope
  claim: AttestationClaim
  statement: ProvenanceStatement
  /** Raw 32-byte public key of the worker (verified). */
  signer: Uint8Array
  /** Canonical wire bytes of the envelope. */
  bytes: Uint8Array
  /** sha256 hex of the DSSE payload: the attestation's identity for de-duplication. */
  id: string
}

function ipfsDescriptor (name: string, cid: CID, extra: Partial<ResourceDescriptor> = {}): ResourceDescriptor {
  return { name, uri: `ipfs://${cid.toString()}`, digest: { sha256: sha256HexOfCid(cid) }, ...extra }
}

function resultAnnotations (result: BuildResult): Record<string, string | number | null> {
  return result.status === 'success'
    ? { status: 'success', exitCode: 0 }
    : { status: 'failure', exitCode: result.exitCode, reason: result.reason }
}

/** The one statement a (validated) claim maps to. Decoding requires the received statement to equal it. */
export function statementOf (claim: AttestationClaim): ProvenanceStatement {
  const subject = claim.result.status === 'success'
    ? ipfsDescriptor('artifact', parseCid(claim.result.artifact, 'result.artifact', UNIXFS_CODECS))
    // in-toto needs a non-empty subject; a failure's subject is its log, or the job if there is no log.
    : ipfsDescriptor('failure', claim.log != null ? parseCid(claim.log, 'log', UNIXFS_CODECS) : parseCid(claim.jobId, 'jobId', [CODEC_RAW]))
  const deps = [ipfsDescriptor('source', parseCid(claim.definition.source, 'definition.source', UNIXFS_CODECS))]
  if (claim.definition.environment.kind === 'rootfs') {
    deps.push(ipfsDescriptor('rootfs', parseCid(claim.definition.environment.rootfs, 'definition.environment.rootfs', UNIXFS_CODECS)))
  }
  const annotations = resultAnnotations(claim.result)
  const byproducts: ResourceDescriptor[] = []
  if (claim.log != null) byproducts.push(ipfsDescriptor('log', parseCid(claim.log, 'log', UNIXFS_CODECS), { mediaType: LOG_MEDIA_TYPE }))
  // A ResourceDescriptor needs uri, digest or content: the result carries its annotations as content too.
  byproducts.push({ name: 'result', content: base64Encode(utf8Encode(JSON.stringify(annotations))), mediaType: RESULT_MEDIA_TYPE, annotations })
  return {
    _type: STATEMENT_TYPE,
    subject: [subject],
    predicateType: PROVENANCE_PREDICATE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: claim.host !== undefined ? CONCUR_BUILD_TYPE_V2 : CONCUR_BUILD_TYPE,
        externalParameters: { definition: claim.definition, buildId: claim.buildId, jobId: claim.jobId },
        internalParameters: {
          sandboxTier: claim.sandboxTier,
          parallelism: claim.parallelism,
          workerPeerId: claim.workerPeerId,
          ...(claim.variation !== undefined ? { variation: validateVariation(claim.variation, 'variation') } : {}),
          ...(claim.host !== undefined ? { host: validateHost(claim.host, 'host') } : {})
        },
        resolvedDependencies: deps
      },
      runDetails: {
        builder: { id: claim.worker },
        metadata: { invocationId: claim.jobId, startedOn: claim.startedAt, finishedOn: claim.finishedAt },
        byproducts
      }
    }
  }
}

function validateResult (x: unknown, path: string): BuildResult {
  if (!isRecord(x)) throw new SchemaError(path, 'expected an object')
  if (x.status === 'success') {
    const o = expectObject(x, path, ['status', 'artifact', 'exitCode'])
    expectLiteral(o.exitCode, join(path, 'exitCode'), 0)
    return { status: 'success', artifact: parseCid(o.artifact, join(path, 'artifact'), UNIXFS_CODECS).toString(), exitCode: 0 }
  }
  if (x.status === 'failure') {
    const o = expectObject(x, path, ['status', 'exitCode', 'reason'])
    const exitCode = o.exitCode === null ? null : expectInteger(o.exitCode, join(path, 'exitCode'), 0, 255)
    return { status: 'failure', exitCode, reason: expectString(o.reason, join(path, 'reason'), { min: 1, max: MAX_REASON_LENGTH }) }
  }
  throw new SchemaError(join(path, 'status'), 'expected "success" or "failure"')
}

/** the keys of a variation record, in their one order (the order of JOB_VARIATIONS) */
const VARIATION_KEYS = ['clockOffsetSeconds', 'cpus', 'hostname', 'timezone'] as const

/**
 * Shapes only: which keys may appear depends on the job's `vary`, which an
 * attestation does not carry, so that is the verdict's check. An empty
 * record is refused: "nothing varied" has one spelling, no record.
 */
function validateVariation (x: unknown, path: string): BuildVariation {
  const o = expectObject(x, path, [], VARIATION_KEYS)
  if (VARIATION_KEYS.every(k => o[k] === undefined)) throw new SchemaError(path, 'must record at least one variation (absent when nothing was varied)')
  const timezone = o.timezone === undefined ? undefined : expectString(o.timezone, join(path, 'timezone'), { min: 1, max: 64 })
  if (timezone !== undefined && !VARIED_TIMEZONES.includes(timezone)) throw new SchemaError(join(path, 'timezone'), 'not one of the zones workers vary to')
  return {
    ...(o.clockOffsetSeconds !== undefined ? { clockOffsetSeconds: expectInteger(o.clockOffsetSeconds, join(path, 'clockOffsetSeconds'), -MAX_CLOCK_OFFSET_SECONDS, MAX_CLOCK_OFFSET_SECONDS) } : {}),
    ...(o.cpus !== undefined ? { cpus: expectInteger(o.cpus, join(path, 'cpus'), 1, MAX_VARIED_CPUS) } : {}),
    ...(o.hostname !== undefined ? { hostname: expectString(o.hostname, join(path, 'hostname'), { min: 1, max: 15, pattern: VARIED_HOSTNAME_PATTERN }) } : {}),
    ...(timezone !== undefined ? { timezone } : {})
  }
}

const HOST_OS = /^[\x20-\x7e]{1,128}$/
/** a host record's package names and versions (Debian's shapes, `_` too for other systems), as a worker must write them */
export const HOST_PACKAGE_PATTERN = /^[a-z0-9][a-z0-9+.-]{0,63}$/
export const HOST_VERSION_PATTERN = /^[A-Za-z0-9.+~:_-]{1,64}$/

/** a host record: printable, bounded, packages sorted by name and unique (one spelling per record) */
function validateHost (x: unknown, path: string): HostToolchain {
  const o = expectObject(x, path, ['os', 'packages'])
  const os = expectString(o.os, join(path, 'os'), { min: 1, max: 128, pattern: HOST_OS })
  const list = expectArray(o.packages, join(path, 'packages'), 0, MAX_HOST_PACKAGES)
  const packages = list.map((p, i) => {
    const q = expectObject(p, join(join(path, 'packages'), i), ['name', 'version'])
    return {
      name: expectString(q.name, join(join(join(path, 'packages'), i), 'name'), { min: 1, max: 64, pattern: HOST_PACKAGE_PATTERN }),
      version: expectString(q.version, join(join(join(path, 'packages'), i), 'version'), { min: 1, max: 64, pattern: HOST_VERSION_PATTERN })
    }
  })
  for (let i = 1; i < packages.length; i++) {
    if (!((packages[i - 1] as { name: string }).name < (packages[i] as { name: string }).name)) throw new SchemaError(join(join(path, 'packages'), i), 'packages must be sorted by name, each once')
  }
  return { os, packages }
}

/** Schema of a claim (not the buildId hash: that is its own error class). Returns a fresh copy. */
export function validateAttestationClaim (x: unknown): AttestationClaim {
  const o = expectObject(x, '', ['buildId', 'jobId', 'source', 'environment', 'definition', 'worker', 'workerPeerId',
    'sandboxTier', 'parallelism', 'startedAt', 'finishedAt', 'result', 'log'], ['variation', 'host'])
  const definition = validateBuildDefinition(o.definition, 'definition')
  const source = parseCid(o.source, 'source', UNIXFS_CODECS).toString()
  if (source !== definition.source) throw new SchemaError('source', 'must equal definition.source')
  const environment = validateEnvironment(o.environment, 'environment')
  if (firstDifference(environment, definition.environment) != null) throw new SchemaError('environment', 'must equal definition.environment')
  if (!isSandboxTier(o.sandboxTier)) throw new SchemaError('sandboxTier', 'unknown sandbox tier')
  const startedAt = o.startedAt as string
  const finishedAt = o.finishedAt as string
  if (parseTime(startedAt, 'startedAt') > parseTime(finishedAt, 'finishedAt')) throw new SchemaError('finishedAt', 'must not be before startedAt')
  const variation = o.variation === undefined ? undefined : validateVariation(o.variation, 'variation')
  const host = o.host === undefined ? undefined : validateHost(o.host, 'host')
  // a rootfs build names its toolchain by CID: a host record there would say what the build did not use
  if (host !== undefined && definition.environment.kind !== 'host') throw new SchemaError('host', 'only a build in the host environment records its host\'s toolchain')
  return {
    buildId: parseCid(o.buildId, 'buildId', [CODEC_DAG_CBOR]).toString(),
    jobId: parseCid(o.jobId, 'jobId', [CODEC_RAW]).toString(),
    source,
    environment,
    definition,
    worker: expectString(o.worker, 'worker', { min: 1, max: 128, pattern: /^did:key:z[1-9A-HJ-NP-Za-km-z]+$/ }),
    workerPeerId: expectString(o.workerPeerId, 'workerPeerId', { min: 1, max: 128, pattern: PEER_ID_PATTERN }),
    sandboxTier: o.sandboxTier,
    parallelism: expectInteger(o.parallelism, 'parallelism', 1, MAX_PARALLELISM),
    startedAt,
    finishedAt,
    result: validateResult(o.result, 'result'),
    log: o.log === null ? null : parseCid(o.log, 'log', UNIXFS_CODECS).toString(),
    ...(variation !== undefined ? { variation } : {}),
    ...(host !== undefined ? { host } : {})
  }
}

const IPFS_URI = /^ipfs:\/\/(.+)$/

function cidFromUri (x: unknown, path: string, codecs: readonly number[]): string {
  const uri = expectString(x, path, { min: 1, max: 160 })
  const m = IPFS_URI.exec(uri)
  if (m == null) throw new SchemaError(path, 'expected ipfs://<cid>')
  return parseCid(m[1], path, codecs).toString()
}

/**
 * Reads the claim out of a statement, then requires the statement to be
 * exactly statementOf(claim): one meaning, one document, no smuggled fields.
 */
export function claimFromStatement (x: unknown): { claim: AttestationClaim, statement: ProvenanceStatement } {
  if (!isRecord(x)) throw new SchemaError('', 'expected an object')
  if (x._type !== STATEMENT_TYPE) {
    if (typeof x._type === 'string' && x._type.startsWith('https://in-toto.io/Statement/')) throw new UnsupportedVersionError(`unsupported in-toto statement ${x._type}`)
    throw new SchemaError('_type', `expected ${STATEMENT_TYPE}`)
  }
  if (x.predicateType !== PROVENANCE_PREDICATE_TYPE) {
    if (typeof x.predicateType === 'string') throw new UnsupportedVersionError(`unsupported predicateType ${x.predicateType.slice(0, 200)}`)
    throw new SchemaError('predicateType', 'expected a string')
  }
  const st = expectObject(x, '', ['_type', 'subject', 'predicateType', 'predicate'])
  const pred = expectObject(st.predicate, 'predicate', ['buildDefinition', 'runDetails'])
  const bd = expectObject(pred.buildDefinition, 'predicate.buildDefinition', ['buildType', 'externalParameters', 'internalParameters', 'resolvedDependencies'])
  if (bd.buildType !== CONCUR_BUILD_TYPE && bd.buildType !== CONCUR_BUILD_TYPE_V2) {
    if (typeof bd.buildType === 'string') throw new UnsupportedVersionError(`unsupported buildType ${bd.buildType.slice(0, 200)}`)
    throw new SchemaError('predicate.buildDefinition.buildType', 'expected a string')
  }
  const v2 = bd.buildType === CONCUR_BUILD_TYPE_V2
  const ext = expectObject(bd.externalParameters, 'predicate.buildDefinition.externalParameters', ['definition', 'buildId', 'jobId'])
  // version 2 is version 1 with the host record, required; version 1 has none
  const int = expectObject(bd.internalParameters, 'predicate.buildDefinition.internalParameters', ['sandboxTier', 'parallelism', 'workerPeerId', ...(v2 ? ['host'] : [])], ['variation'])
  const rd = expectObject(pred.runDetails, 'predicate.runDetails', ['builder', 'metadata', 'byproducts'])
  const builder = expectObject(rd.builder, 'predicate.runDetails.builder', ['id'])
  const meta = expectObject(rd.metadata, 'predicate.runDetails.metadata', ['invocationId', 'startedOn', 'finishedOn'])
  const byproducts = expectArray(rd.byproducts, 'predicate.runDetails.byproducts', 1, 2)
  const subject = expectArray(st.subject, 'subject', 1, 1)
  const resultPath = join('predicate.runDetails.byproducts', byproducts.length - 1)
  const resultDesc = expectObject(byproducts[byproducts.length - 1], resultPath, ['name', 'content', 'mediaType', 'annotations'])
  const ann = expectObject(resultDesc.annotations, join(resultPath, 'annotations'), ['status', 'exitCode'], ['reason'])
  let log: string | null = null
  if (byproducts.length === 2) {
    const logDesc = expectObject(byproducts[0], 'predicate.runDetails.byproducts[0]', ['name', 'uri', 'digest', 'mediaType'])
    log = cidFromUri(logDesc.uri, 'predicate.runDetails.byproducts[0].uri', UNIXFS_CODECS)
  }
  const subj = expectObject(subject[0], 'subject[0]', ['name', 'uri', 'digest'])
  const rawResult: Record<string, unknown> = { status: ann.status, exitCode: ann.exitCode }
  if (ann.status === 'success') rawResult.artifact = cidFromUri(subj.uri, 'subject[0].uri', UNIXFS_CODECS)
  else rawResult.reason = ann.reason
  let claim: AttestationClaim
  try {
    claim = validateAttestationClaim({
      buildId: ext.buildId,
      jobId: ext.jobId,
      source: isRecord(ext.definition) ? ext.definition.source : undefined,
      environment: isRecord(ext.definition) ? ext.definition.environment : undefined,
      definition: ext.definition,
      worker: builder.id,
      workerPeerId: int.workerPeerId,
      sandboxTier: int.sandboxTier,
      parallelism: int.parallelism,
      startedAt: meta.startedOn,
      finishedAt: meta.finishedOn,
      result: rawResult,
      log,
      ...(int.variation !== undefined ? { variation: int.variation } : {}),
      ...(v2 ? { host: int.host } : {})
    })
  } catch (err) {
    // Report claim paths as statement paths where the mapping is direct.
    if (err instanceof SchemaError) throw new SchemaError(statementPath(err.path), err.message, { cause: err })
    throw err
  }
  const statement = statementOf(claim)
  const diff = firstDifference(x, statement)
  if (diff != null) throw new SchemaError(diff, 'statement is not the canonical provenance for its own claim')
  return { claim, statement }
}

function statementPath (claimPath: string): string {
  const map: Array<[string, string]> = [
    ['definition', 'predicate.buildDefinition.externalParameters.definition'],
    ['buildId', 'predicate.buildDefinition.externalParameters.buildId'],
    ['jobId', 'predicate.buildDefinition.externalParameters.jobId'],
    ['worker', 'predicate.runDetails.builder.id'],
    ['workerPeerId', 'predicate.buildDefinition.internalParameters.workerPeerId'],
    ['sandboxTier', 'predicate.buildDefinition.internalParameters.sandboxTier'],
    ['parallelism', 'predicate.buildDefinition.internalParameters.parallelism'],
    ['variation', 'predicate.buildDefinition.internalParameters.variation'],
    ['host', 'predicate.buildDefinition.internalParameters.host'],
    ['startedAt', 'predicate.runDetails.metadata.startedOn'],
    ['finishedAt', 'predicate.runDetails.metadata.finishedOn'],
    ['result', 'predicate.runDetails.byproducts[-1].annotations']
  ]
  for (const [from, to] of map) {
    if (claimPath === from || claimPath.startsWith(from + '.') || claimPath.startsWith(from + '[')) return to + claimPath.slice(from.length)
  }
  return claimPath
}

export function createAttestation (claim: AttestationClaim, key: SigningKey): SignedAttestation {
  const clean = validateAttestationClaim(claim)
  if (clean.worker !== key.did) throw new SchemaError('worker', 'must be the did:key of the signing key')
  const expected = buildIdOf(clean.definition)
  if (clean.buildId !== expected) throw new BuildIdMismatchError(`buildId ${clean.buildId} is not the hash of the definition (${expected})`)
  const statement = statementOf(clean)
  const payload = utf8Encode(JSON.stringify(statement))
  const envelope = signEnvelope(ATTESTATION_PAYLOAD_TYPE, payload, key)
  return { envelope, claim: clean, statement, signer: key.publicKey, bytes: envelopeBytes(envelope), id: hexEncode(sha256(payload)) }
}

export interface DecodeAttestationOptions { now: number; maxFutureSkewMs?: number }

/**
 * Order: size → envelope → one signature → payloadType → payload JSON →
 * statement/predicate/build type versions → schema (canonical statement) →
 * buildId → time → builder key → signature. Attestations do not expire: a
 * build result stays true, and is reusable by later jobs of the same buildId.
 */
export function decodeAttestation (input: Uint8Array | Envelope, opts: DecodeAttestationOptions): SignedAttestation {
  return guard(() => {
    const envelope = readEnvelope(input)
    const { payload, json } = openEnvelope(envelope, ATTESTATION_PAYLOAD_TYPE)
    const { claim, statement } = claimFromStatement(json)
    const expected = buildIdOf(claim.definition)
    if (claim.buildId !== expected) throw new BuildIdMismatchError(`buildId ${claim.buildId} is not the hash of the definition (${expected})`)
    const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    if (parseTime(claim.finishedAt, 'finishedAt') > opts.now + skew) throw new FutureError(`finishedAt ${claim.finishedAt} is in the future`)
    const signer = publicKeyFromDid(claim.worker)
    verifyEnvelopeSignature(envelope, signer)
    return { envelope, claim, statement, signer, bytes: envelopeBytes(envelope), id: hexEncode(sha256(payload)) }
  })
}

/** What an attestation says about itself, before anything is checked (peekAttestation). */
export interface AttestationPeek {
  /** the buildId the statement names (predicate.buildDefinition.externalParameters.buildId) */
  buildId: string
  /** the did:key the statement names as its signer (predicate.runDetails.builder.id) */
  worker: string
  /** sha256 hex of the payload: the id decodeAttestation would give it */
  id: string
}

/**
 * Reads an attestation's buildId, claimed signer and id WITHOUT verifying
 * anything: envelope, one signature, payloadType and payload JSON, then two
 * strings. No key is decoded and no signature checked, so it costs a parse
 * and a hash, where decodeAttestation costs ~5 ms for a key never seen (the
 * point decompression and torsion check of publicKeyFromDid, then the
 * signature). It exists to decide whether that cost is worth paying (catch-up
 * answers, PROTOCOL.md §13): nothing it returns may be trusted, stored or
 * shown; a peeked field is only what the sender wrote. Throws the same typed
 * ProtocolErrors as the decoder for what it does read.
 */
export function peekAttestation (input: Uint8Array): AttestationPeek {
  return guard(() => {
    const { payload, json } = openEnvelope(readEnvelope(input), ATTESTATION_PAYLOAD_TYPE)
    const at = (x: unknown, path: string[]): unknown => {
      let v = x
      for (const key of path) {
        if (!isRecord(v) || !Object.hasOwn(v, key)) throw new SchemaError(path.join('.'), 'missing field')
        v = v[key]
      }
      return v
    }
    const buildPath = ['predicate', 'buildDefinition', 'externalParameters', 'buildId']
    const workerPath = ['predicate', 'runDetails', 'builder', 'id']
    return {
      buildId: expectString(at(json, buildPath), buildPath.join('.'), { min: 1, max: 128 }),
      worker: expectString(at(json, workerPath), workerPath.join('.'), { min: 1, max: 128 }),
      id: hexEncode(sha256(payload))
    }
  })
}
