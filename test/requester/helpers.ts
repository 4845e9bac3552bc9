/** Keys, jobs, attestations and CAR surgery shared by the requester tests. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { CarBufferReader } from '@ipld/car/buffer-reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagCbor from '@ipld/dag-cbor'
import { sha256 } from '@noble/hashes/sha2.js'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { CID } from 'multiformats/cid'
import {
  CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, buildIdOf, cidOf, createAttestation, createJobAnnouncement, createPolicy, signingKeyFromSeed, utf8Encode
} from '../../protocol/index.ts'
import type { BuildDefinition, BuildVariation, JobVariation, SignedAttestation, SignedJob, SigningKey, TrustPolicy } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/index.ts'

export function key (label: string): SigningKey {
  return signingKeyFromSeed(sha256(utf8Encode(`concur requester test key: ${label}`)))
}

export const requesterKey = key('requester')
export const trustedWorkers = [key('worker-1'), key('worker-2'), key('worker-3')] as const
export const untrustedWorkers = [key('stranger-1'), key('stranger-2'), key('stranger-3')] as const

export const T0 = Date.parse('2025-06-01T12:00:00.000Z')
const iso = (ms: number): string => new Date(ms).toISOString()
/** verification a month later: the job expired long ago */
export const LATER = T0 + 30 * 24 * 3600 * 1000

export function trustedPolicy (threshold = 2): TrustPolicy {
  return createPolicy({ trusted: trustedWorkers.map(k => k.did), threshold })
}

export function definitionFor (label: string): BuildDefinition {
  return {
    version: 1,
    source: cidOf(CODEC_DAG_PB, utf8Encode(`source: ${label}`)).toString(),
    environment: { kind: 'host', platform: 'linux-x64' },
    command: ['sh', '-c', 'make'],
    env: { SOURCE_DATE_EPOCH: '315532800' },
    output: 'out'
  }
}

export function makeJob (def: BuildDefinition = definitionFor('hello'), vary?: JobVariation[]): SignedJob {
  return createJobAnnouncement({
    definition: def,
    requester: requesterKey.did,
    replicas: 3,
    ...(vary != null ? { vary } : {}),
    resources: { memoryBytes: 2 ** 29, cpus: 1, diskBytes: 2 ** 28, wallSeconds: 600, processes: 256 },
    createdAt: iso(T0),
    expiresAt: iso(T0 + 3_600_000)
  }, requesterKey)
}

export function attestFor (worker: SigningKey, job: SignedJob, artifact: CID, def: BuildDefinition = job.job.definition, variation?: BuildVariation): SignedAttestation {
  return createAttestation({
    buildId: buildIdOf(def),
    jobId: job.jobId,
    source: def.source,
    environment: def.environment,
    definition: def,
    worker: worker.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    sandboxTier: 'namespaces+cgroups',
    parallelism: 1,
    startedAt: iso(T0 + 60_000),
    finishedAt: iso(T0 + 120_000),
    result: { status: 'success', artifact: artifact.toString(), exitCode: 0 },
    log: null,
    ...(variation != null ? { variation } : {})
  }, worker)
}

export async function withTempDir<T> (fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'concur-requester-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Writes `files` (relative path → content) under `dir`. */
export async function writeTree (dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
}

/** Deterministic pseudo-random bytes (so chunks do not dedupe). */
export function noise (seed: string, n: number): Uint8Array {
  const out = new Uint8Array(n)
  let block = sha256(utf8Encode(seed))
  for (let i = 0; i < n; i += 32) {
    out.set(block.subarray(0, Math.min(32, n - i)), i)
    block = sha256(block)
  }
  return out
}

export interface ArtifactFixture {
  blockstore: MemoryBlockstore
  artifact: CID
  dir: string
}

/** A small artifact tree with a multi-block file, added with addDirectory. */
export async function makeArtifact (tmp: string): Promise<ArtifactFixture> {
  const dir = join(tmp, 'artifact')
  await writeTree(dir, {
    'bin/hello': noise('hello binary', 2.5 * (1 << 20)),
    'share/doc/README': 'hello, reproducible world\n',
    'share/empty': ''
  })
  const blockstore = new MemoryBlockstore()
  const { cid } = await addDirectory(blockstore, dir)
  return { blockstore, artifact: cid, dir }
}

// ---- CAR surgery: read with @ipld/car (not the code under test), re-encode

export interface CarParts {
  roots: CID[]
  blocks: Array<{ cid: CID, bytes: Uint8Array }>
}

export function readCar (bytes: Uint8Array): CarParts {
  const reader = CarBufferReader.fromBytes(bytes)
  return { roots: reader.getRoots(), blocks: reader.blocks().map(b => ({ cid: b.cid, bytes: b.bytes })) }
}

export async function encodeCar (parts: CarParts): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(parts.roots)
  const chunks: Uint8Array[] = []
  const drain = (async () => { for await (const c of out) chunks.push(c) })()
  for (const b of parts.blocks) await writer.put(b)
  await writer.close()
  await drain
  return new Uint8Array(Buffer.concat(chunks))
}

export function decodeManifest (parts: CarParts): Record<string, unknown> {
  const root = parts.roots[0] as CID
  const block = parts.blocks.find(b => b.cid.equals(root))
  if (block == null) throw new Error('no manifest block')
  return dagCbor.decode(block.bytes) as Record<string, unknown>
}

/**
 * Replaces the block `old` by `bytes` under its proper new CID (raw codec),
 * rewrites the manifest to point at it and re-roots the CAR: a consistent
 * forgery, every hash right, so only the signature checks can catch it.
 */
export async function replaceEnvelope (car: Uint8Array, old: CID, bytes: Uint8Array): Promise<{ car: Uint8Array, cid: CID }> {
  const parts = readCar(car)
  const cid = cidOf(CODEC_RAW, bytes)
  const manifest = decodeManifest(parts)
  if ((manifest.job as CID).equals(old)) manifest.job = cid
  manifest.attestations = (manifest.attestations as CID[]).map(a => a.equals(old) ? cid : a)
  return { car: await reroot(parts, manifest, b => b.cid.equals(old) ? { cid, bytes } : b), cid }
}

/** Re-encodes the manifest, replaces the root, maps the other blocks. */
export async function reroot (parts: CarParts, manifest: Record<string, unknown>, map: (b: { cid: CID, bytes: Uint8Array }) => { cid: CID, bytes: Uint8Array } | null = b => b): Promise<Uint8Array> {
  const oldRoot = parts.roots[0] as CID
  const mbytes = dagCbor.encode(manifest)
  const root = cidOf(CODEC_DAG_CBOR, mbytes)
  const blocks = [{ cid: root, bytes: mbytes }]
  for (const b of parts.blocks) {
    if (b.cid.equals(oldRoot)) continue
    const m = map(b)
    if (m != null) blocks.push(m)
  }
  return encodeCar({ roots: [root], blocks })
}

/** A copy of `car` with one byte flipped inside the stored bytes of block `cid` (found in the file itself). */
export function flipByteInBlock (car: Uint8Array, parts: CarParts, cid: CID): Uint8Array {
  const block = parts.blocks.find(b => b.cid.equals(cid))
  if (block == null) throw new Error(`block ${cid.toString()} not in CAR`)
  const at = Buffer.from(car).indexOf(Buffer.from(block.bytes))
  if (at < 0) throw new Error('block bytes not found in CAR')
  const copy = new Uint8Array(car)
  const i = at + (block.bytes.length >> 1)
  copy[i] = (copy[i] as number) ^ 0x01
  return copy
}
