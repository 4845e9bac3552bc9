/** Deterministic keys, definitions and claims shared by the protocol tests and the vector generator. */
import { sha256 } from '@noble/hashes/sha2.js'
import {
  CODEC_DAG_PB, CODEC_RAW, SHARD_COUNT, buildIdOf, cidOf, createAttestation, createJobAnnouncement, shardOf, signingKeyFromSeed, utf8Encode
} from '../../protocol/index.ts'
import type { AttestationClaim, BuildDefinition, BuildVariation, SandboxTier, SignedAttestation, SignedJob, SigningKey, WorkerAdvert } from '../../protocol/index.ts'

/** Key i is derived from a fixed label, so every run (and every vector file) uses the same keys. */
export function fixedKey (label: string): SigningKey {
  return signingKeyFromSeed(sha256(utf8Encode(`concur test key: ${label}`)))
}

/** A dag-pb CID of made-up bytes: only its form matters to the protocol. */
export function fakeTreeCid (label: string): string {
  return cidOf(CODEC_DAG_PB, utf8Encode(`tree: ${label}`)).toString()
}

export function fakeRawCid (label: string): string {
  return cidOf(CODEC_RAW, utf8Encode(`raw: ${label}`)).toString()
}

export const T0 = Date.parse('2025-06-01T12:00:00.000Z')
export const iso = (ms: number): string => new Date(ms).toISOString()

export const definition: BuildDefinition = {
  version: 1,
  source: fakeTreeCid('hello-source'),
  environment: { kind: 'host', platform: 'linux/amd64' },
  command: ['sh', '-c', 'make && cp hello out/'],
  env: { SOURCE_DATE_EPOCH: '1700000000', LC_ALL: 'C.UTF-8' },
  output: 'out'
}

export const rootfsDefinition: BuildDefinition = {
  ...definition,
  environment: { kind: 'rootfs', rootfs: fakeTreeCid('debian-rootfs'), platform: 'linux/amd64' }
}

export const requester = fixedKey('requester')

/** A definition (`definition` with another SOURCE_DATE_EPOCH) whose build is on `shard` (PROTOCOL.md §6.1); `n` picks among them. */
export function definitionOnShard (shard: number, n = 0, base: BuildDefinition = definition): BuildDefinition {
  for (let epoch = 1_700_000_000, found = 0; ; epoch++) {
    const def = { ...base, env: { ...base.env, SOURCE_DATE_EPOCH: String(epoch) } }
    if (shardOf(buildIdOf(def)) === shard && found++ === n) return def
  }
}

/** A worker advert's fields (PROTOCOL.md §5.4) for `key`, issued at `issued` and good for `lifeMs`; `over` replaces any. */
export function advertInput (key: SigningKey, issued: number, lifeMs: number, over: Partial<Omit<WorkerAdvert, '_type'>> = {}): Omit<WorkerAdvert, '_type'> {
  return {
    worker: key.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    environments: ['host', 'rootfs'],
    platforms: ['linux/amd64'],
    tier: 'namespaces+cgroups',
    limits: { memoryBytes: 2 ** 32, cpus: 4, diskBytes: 2 ** 33, wallSeconds: 3600, processes: 1024 },
    maxConcurrent: 2,
    shards: [0, 1, 2, 3, 4, 5, 6, 7],
    issuedAt: iso(issued),
    expiresAt: iso(issued + lifeMs),
    seq: 1,
    ...over
  }
}

export function makeJob (opts: { key?: SigningKey, def?: BuildDefinition, createdAt?: number, expiresAt?: number, replicas?: number, builders?: string[], sharded?: boolean } = {}): SignedJob {
  const key = opts.key ?? requester
  return createJobAnnouncement({
    definition: opts.def ?? definition,
    requester: key.did,
    requesterPeerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq',
    replicas: opts.replicas ?? 2,
    ...(opts.builders !== undefined ? { builders: opts.builders } : {}),
    resources: { memoryBytes: 2 ** 30, cpus: 2, diskBytes: 2 ** 30, wallSeconds: 600, processes: 256 },
    createdAt: iso(opts.createdAt ?? T0),
    expiresAt: iso(opts.expiresAt ?? T0 + 3_600_000),
    nonce: '00112233445566778899aabbccddeeff',
    ...(opts.sharded === true ? { shards: SHARD_COUNT } : {})
  }, key)
}

export interface ClaimOpts {
  def?: BuildDefinition
  jobId?: string
  artifact?: string | null
  failure?: { exitCode: number | null, reason: string }
  tier?: SandboxTier
  log?: string | null
  startedAt?: number
  finishedAt?: number
  buildId?: string
  variation?: BuildVariation
}

export function claimFor (key: SigningKey, opts: ClaimOpts = {}): AttestationClaim {
  const def = opts.def ?? definition
  const result: AttestationClaim['result'] = opts.failure !== undefined
    ? { status: 'failure', exitCode: opts.failure.exitCode, reason: opts.failure.reason }
    : { status: 'success', artifact: opts.artifact ?? fakeTreeCid('artifact-A'), exitCode: 0 }
  return {
    buildId: opts.buildId ?? buildIdOf(def),
    jobId: opts.jobId ?? fakeRawCid('job-1'),
    source: def.source,
    environment: def.environment,
    definition: def,
    worker: key.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    sandboxTier: opts.tier ?? 'namespaces+cgroups',
    parallelism: 2,
    startedAt: iso(opts.startedAt ?? T0 + 60_000),
    finishedAt: iso(opts.finishedAt ?? T0 + 120_000),
    result,
    log: opts.log === undefined ? fakeRawCid('log') : opts.log,
    ...(opts.variation !== undefined ? { variation: opts.variation } : {})
  }
}

export function attest (key: SigningKey, opts: ClaimOpts = {}): SignedAttestation {
  return createAttestation(claimFor(key, opts), key)
}
