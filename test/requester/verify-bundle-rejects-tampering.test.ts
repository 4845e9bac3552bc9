/**
 * verifyBundle refuses every kind of tampering and names what is wrong: a
 * flipped byte in an artifact or job block (hash mismatch, named by CID and
 * role), a forged attestation signature and an altered job re-hashed
 * consistently (signature problems, named), a missing artifact block
 * (incomplete), attestations from untrusted keys only (policy not met),
 * attestations of another buildId, smuggled blocks, non-sha256 blocks, and
 * arbitrary garbage or single-byte flips anywhere: never a throw, never ok.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { sha512 } from '@noble/hashes/sha2.js'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { beforeAll, describe, expect, it } from 'vitest'
import { CODEC_RAW, base64Decode, clockOffsetFor, base64Encode, cidOf, parseEnvelope, utf8Decode, utf8Encode } from '../../protocol/index.ts'
import type { SignedAttestation, SignedJob } from '../../protocol/index.ts'
import { walkDag } from '../../src/content/index.ts'
import { verifyBundle, writeBundle } from '../../src/requester/bundle/index.ts'
import type { BundleReport } from '../../src/requester/bundle/index.ts'
import {
  LATER, attestFor, decodeManifest, definitionFor, encodeCar, flipByteInBlock, makeArtifact, makeJob, readCar, replaceEnvelope, reroot,
  trustedPolicy, trustedWorkers, untrustedWorkers, withTempDir
} from './helpers.ts'

interface Fixture {
  car: Uint8Array
  job: SignedJob
  attestations: SignedAttestation[]
  artifact: CID
  artifactBlocks: CID[]
  /** bundle whose attestations come from untrusted keys only */
  untrustedCar: Uint8Array
}

let fx: Fixture

const verify = (car: Uint8Array): BundleReport => verifyBundle(car, { policy: trustedPolicy(2), now: LATER })
const codes = (r: BundleReport): string[] => r.problems.map(p => p.code)
const problem = (r: BundleReport, code: string): string => {
  const p = r.problems.find(x => x.code === code)
  if (p == null) throw new Error(`no ${code} problem in ${JSON.stringify(r.problems)}`)
  return p.message
}

beforeAll(async () => {
  await withTempDir(async tmp => {
    const { blockstore, artifact } = await makeArtifact(tmp)
    const job = makeJob()
    const attestations = trustedWorkers.slice(0, 2).map(w => attestFor(w, job, artifact))
    await writeBundle(blockstore, { job, attestations, artifact }, join(tmp, 'ok.car'))
    await writeBundle(blockstore, { job, attestations: untrustedWorkers.map(w => attestFor(w, job, artifact)), artifact }, join(tmp, 'untrusted.car'))
    const artifactBlocks: CID[] = []
    for await (const c of walkDag(blockstore, artifact)) artifactBlocks.push(c)
    fx = {
      car: new Uint8Array(await readFile(join(tmp, 'ok.car'))),
      untrustedCar: new Uint8Array(await readFile(join(tmp, 'untrusted.car'))),
      job,
      attestations,
      artifact,
      artifactBlocks
    }
  })
})

describe('verifyBundle rejects tampering', () => {
  it('the untouched bundle verifies (so each failure below is caused by its tampering)', () => {
    const r = verify(fx.car)
    expect(r.problems).toEqual([])
    expect(r.ok).toBe(true)
  })

  it('a flipped byte inside an artifact block: hash mismatch naming the block', () => {
    const parts = readCar(fx.car)
    // a leaf of the multi-block file: raw codec, deep in the DAG
    const leaf = fx.artifactBlocks.find(c => c.code === CODEC_RAW && (parts.blocks.find(b => b.cid.equals(c))?.bytes.length ?? 0) > 1000) as CID
    expect(leaf).toBeDefined()
    const r = verify(flipByteInBlock(fx.car, parts, leaf))
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_BLOCK_HASH'])
    expect(problem(r, 'ERR_BLOCK_HASH')).toContain(leaf.toString())
    expect(problem(r, 'ERR_BLOCK_HASH')).toContain('artifact')
  })

  it('a flipped byte in a dag-pb node of the artifact: named, and its hidden children are not reported as noise', () => {
    const parts = readCar(fx.car)
    const node = fx.artifactBlocks.find(c => c.code === dagPb.code && !c.equals(fx.artifact)) as CID
    const r = verify(flipByteInBlock(fx.car, parts, node))
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_BLOCK_HASH'])
    expect(problem(r, 'ERR_BLOCK_HASH')).toContain(node.toString())
  })

  it('an altered attestation signature: named by worker, and the policy is no longer met', async () => {
    const victim = fx.attestations[0] as SignedAttestation
    const env = parseEnvelope(victim.bytes)
    const sig = base64Decode(env.signatures[0]!.sig)
    sig[10] = (sig[10] as number) ^ 0x40
    const forged = utf8Encode(JSON.stringify({ ...env, signatures: [{ keyid: env.signatures[0]!.keyid, sig: base64Encode(sig) }] }))
    const { car, cid } = await replaceEnvelope(fx.car, cidOf(CODEC_RAW, victim.bytes), forged)
    const r = verify(car)
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_ATTESTATION_SIGNATURE', 'ERR_POLICY_NOT_MET'])
    const msg = problem(r, 'ERR_ATTESTATION_SIGNATURE')
    expect(msg).toContain(trustedWorkers[0].did)
    expect(msg).toContain(cid.toString())
    expect(msg).not.toContain(trustedWorkers[1].did)
    // the other attestation still counted: 1 of 2
    expect(r.verdict?.counted).toEqual([trustedWorkers[1].did])
  })

  it('an altered job, re-hashed consistently: the job signature fails', async () => {
    const env = parseEnvelope(fx.job.bytes)
    const payload = JSON.parse(utf8Decode(base64Decode(env.payload))) as Record<string, unknown>
    payload.replicas = 9
    const altered = utf8Encode(JSON.stringify({ ...env, payload: base64Encode(utf8Encode(JSON.stringify(payload))) }))
    const { car } = await replaceEnvelope(fx.car, cidOf(CODEC_RAW, fx.job.bytes), altered)
    const r = verify(car)
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_JOB_SIGNATURE'])
  })

  it('a flipped byte in the job block: hash mismatch naming the job envelope', () => {
    const jobCid = cidOf(CODEC_RAW, fx.job.bytes)
    const r = verify(flipByteInBlock(fx.car, readCar(fx.car), jobCid))
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_BLOCK_HASH'])
    expect(problem(r, 'ERR_BLOCK_HASH')).toContain(jobCid.toString())
    expect(problem(r, 'ERR_BLOCK_HASH')).toContain('job envelope')
    expect(r.jobId).toBeUndefined()
  })

  it('a missing artifact block: incomplete, naming the block', async () => {
    const parts = readCar(fx.car)
    const gone = fx.artifactBlocks[fx.artifactBlocks.length - 1] as CID
    const car = await encodeCar({ roots: parts.roots, blocks: parts.blocks.filter(b => !b.cid.equals(gone)) })
    const r = verify(car)
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_ARTIFACT_INCOMPLETE'])
    expect(problem(r, 'ERR_ARTIFACT_INCOMPLETE')).toContain(gone.toString())
  })

  it('attestations from untrusted keys only: policy not met, signatures fine', () => {
    const r = verify(fx.untrustedCar)
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_POLICY_NOT_MET'])
    expect(r.verdict?.status).toBe('pending')
    expect(r.verdict?.candidates[0]?.untrusted).toHaveLength(3)
    expect(r.verdict?.counted).toEqual([])
  })

  it('attestations of another buildId: named, and not counted', async () => {
    const otherDef = definitionFor('some other build')
    const foreign = [attestFor(trustedWorkers[0], makeJob(otherDef), fx.artifact), attestFor(trustedWorkers[2], makeJob(otherDef), fx.artifact)]
    const parts = readCar(fx.car)
    const manifest = decodeManifest(parts)
    const foreignCids = foreign.map(a => cidOf(CODEC_RAW, a.bytes))
    manifest.attestations = foreignCids
    const oldAtts = new Set(fx.attestations.map(a => cidOf(CODEC_RAW, a.bytes).toString()))
    const base = await reroot(parts, manifest, b => oldAtts.has(b.cid.toString()) ? null : b)
    const withForeign = readCar(base)
    const car = await encodeCar({ roots: withForeign.roots, blocks: [...withForeign.blocks, ...foreign.map((a, i) => ({ cid: foreignCids[i] as CID, bytes: a.bytes }))] })
    const r = verify(car)
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_ATTESTATION_BUILD_ID', 'ERR_ATTESTATION_BUILD_ID', 'ERR_POLICY_NOT_MET'])
    expect(r.problems[0]?.message).toContain(trustedWorkers[0].did)
    expect(r.problems[1]?.message).toContain(trustedWorkers[2].did)
    expect(r.verdict?.status).toBe('pending')
  })

  it('a smuggled, unreferenced block is refused', async () => {
    const parts = readCar(fx.car)
    const extra = utf8Encode('not part of anything attested')
    const r = verify(await encodeCar({ roots: parts.roots, blocks: [...parts.blocks, { cid: cidOf(CODEC_RAW, extra), bytes: extra }] }))
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_UNREFERENCED_BLOCK'])
  })

  it('a block named by another hash function is refused', async () => {
    const parts = readCar(fx.car)
    const extra = utf8Encode('sha-512 named block')
    const cid = CID.createV1(CODEC_RAW, Digest.create(0x13, sha512(extra)))
    const r = verify(await encodeCar({ roots: parts.roots, blocks: [...parts.blocks, { cid, bytes: extra }] }))
    expect(r.ok).toBe(false)
    expect(codes(r)).toContain('ERR_HASH_FUNCTION')
    expect(problem(r, 'ERR_HASH_FUNCTION')).toContain(cid.toString())
  })

  it('two roots, or none: refused', async () => {
    const parts = readCar(fx.car)
    const two = verify(await encodeCar({ roots: [...parts.roots, fx.artifact], blocks: parts.blocks }))
    expect(codes(two)).toEqual(['ERR_ROOTS'])
    const none = verify(await encodeCar({ roots: [], blocks: parts.blocks }))
    expect(codes(none)).toEqual(['ERR_ROOTS'])
  })

  it('a root that is not a manifest: refused', async () => {
    const parts = readCar(fx.car)
    const r = verify(await encodeCar({ roots: [fx.artifact], blocks: parts.blocks }))
    expect(r.ok).toBe(false)
    expect(codes(r)).toEqual(['ERR_MANIFEST'])
  })

  it('garbage, truncation and empty input: ok false, never a throw', () => {
    for (const bytes of [new Uint8Array(0), utf8Encode('hello, not a car'), fx.car.subarray(0, fx.car.length - 7), fx.car.subarray(0, 30)]) {
      const r = verify(bytes)
      expect(r.ok).toBe(false)
      expect(codes(r)).toEqual(['ERR_CAR_MALFORMED'])
    }
  })

  it('any single flipped byte anywhere in the file makes it fail, without throwing', () => {
    // most of the file is one big file's leaves; half the flips target the
    // structured head (CAR header, manifest, envelopes, directory nodes)
    const position = fc.oneof(fc.integer({ min: 0, max: Math.min(fx.car.length, 16_384) - 1 }), fc.integer({ min: 0, max: fx.car.length - 1 }))
    fc.assert(fc.property(position, fc.integer({ min: 1, max: 255 }), (at, mask) => {
      const copy = new Uint8Array(fx.car)
      copy[at] = (copy[at] as number) ^ mask
      const r = verify(copy)
      expect(r.ok).toBe(false)
      expect(r.problems.length).toBeGreaterThan(0)
    }), { numRuns: 200 })
  })

  it('a bundle of a job that asked to vary the clock verifies only with attestations recording the offsets their workers owed', async () => {
    await withTempDir(async tmp => {
      const { blockstore, artifact } = await makeArtifact(tmp)
      const job = makeJob(definitionFor('varied'), ['clock'])
      const unvaried = trustedWorkers.slice(0, 2).map(w => attestFor(w, job, artifact))
      await writeBundle(blockstore, { job, attestations: unvaried, artifact }, join(tmp, 'unvaried.car'))
      const bad = verify(new Uint8Array(await readFile(join(tmp, 'unvaried.car'))))
      expect(codes(bad)).toContain('ERR_POLICY_NOT_MET')
      expect(problem(bad, 'ERR_POLICY_NOT_MET')).toMatch(/without the clock offset/)
      const varied = trustedWorkers.slice(0, 2).map(w => attestFor(w, job, artifact, job.job.definition, { clockOffsetSeconds: clockOffsetFor(w.did, job.jobId) }))
      await writeBundle(blockstore, { job, attestations: varied, artifact }, join(tmp, 'varied.car'))
      expect(verify(new Uint8Array(await readFile(join(tmp, 'varied.car')))).problems).toEqual([])
    })
  })
})
