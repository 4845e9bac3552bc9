/**
 * writeBundle → verifyBundle: a bundle of the job, 2 trusted attestations and
 * the artifact DAG verifies offline a month after the job expired under a
 * 2-of-3 policy; the CAR is readable by @ipld/car, has the documented
 * manifest, carries the envelopes' exact wire bytes and reproduces the
 * artifact tree. Writing is atomic: a failed write leaves nothing behind.
 */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { CODEC_RAW, cidOf, createPolicy } from '../../protocol/index.ts'
import { exportToDirectory, walkDag } from '../../src/content/index.ts'
import { BundleInputError, verifyBundle, writeBundle } from '../../src/requester/bundle/index.ts'
import {
  LATER, attestFor, decodeManifest, definitionFor, makeArtifact, makeJob, readCar, trustedPolicy, trustedWorkers, untrustedWorkers, withTempDir
} from './helpers.ts'

async function sameTree (a: string, b: string, rel = ''): Promise<void> {
  const [la, lb] = [await readdir(join(a, rel), { withFileTypes: true }), await readdir(join(b, rel), { withFileTypes: true })]
  expect(lb.map(d => d.name).sort()).toEqual(la.map(d => d.name).sort())
  for (const d of la) {
    const p = join(rel, d.name)
    if (d.isDirectory()) await sameTree(a, b, p)
    else expect(Buffer.compare(await readFile(join(a, p)), await readFile(join(b, p)))).toBe(0)
  }
}

describe('proof bundle round trip', () => {
  it('verifies offline under a 2-of-3 policy long after the job expired', async () => {
    await withTempDir(async tmp => {
      const { blockstore, artifact, dir } = await makeArtifact(tmp)
      const job = makeJob()
      const attestations = [attestFor(trustedWorkers[0], job, artifact), attestFor(trustedWorkers[2], job, artifact)]
      const policyInput = { trusted: trustedWorkers.map(k => k.did), threshold: 2 }
      const out = join(tmp, 'bundle.car')
      const written = await writeBundle(blockstore, { job, attestations, artifact, policy: policyInput }, out)

      // no temporary file left next to the bundle
      expect((await readdir(tmp)).sort()).toEqual(['artifact', 'bundle.car'])
      const bytes = new Uint8Array(await readFile(out))
      expect(written.bytes).toBe(bytes.byteLength)

      const report = verifyBundle(bytes, { policy: trustedPolicy(2), now: LATER })
      expect(report.problems).toEqual([])
      expect(report.ok).toBe(true)
      expect(report.verdict?.status).toBe('accepted')
      expect(report.artifact).toBe(artifact.toString())
      expect(report.jobId).toBe(job.jobId)
      expect(report.buildId).toBe(job.job.buildId)
      expect(report.verdict?.counted.sort()).toEqual([trustedWorkers[0].did, trustedWorkers[2].did].sort())
      expect(report.bundlePolicy).toEqual(policyInput)
      // a node Buffer (what readFile returns, as `concur verify` passes it) reads the same
      expect(verifyBundle(await readFile(out), { policy: trustedPolicy(2), now: LATER }).ok).toBe(true)

      // the file, read by @ipld/car rather than by the code under test
      const parts = readCar(bytes)
      expect(parts.roots).toHaveLength(1)
      expect(parts.roots[0]?.toString()).toBe(written.root.toString())
      const manifest = decodeManifest(parts)
      expect(Object.keys(manifest).sort()).toEqual(['artifact', 'attestations', 'buildId', 'job', 'policy', 'type', 'version'])
      expect(manifest).toMatchObject({ version: 1, type: 'concur-proof-bundle', buildId: job.job.buildId, policy: policyInput })
      expect((manifest.artifact as CID).toString()).toBe(artifact.toString())
      expect((manifest.job as CID).toString()).toBe(cidOf(CODEC_RAW, job.bytes).toString())
      expect((manifest.attestations as CID[]).map(c => c.toString())).toEqual(attestations.map(a => cidOf(CODEC_RAW, a.bytes).toString()))
      const byCid = new Map(parts.blocks.map(b => [b.cid.toString(), b.bytes]))
      expect(Buffer.from(byCid.get((manifest.job as CID).toString()) ?? []).equals(Buffer.from(job.bytes))).toBe(true)
      expect(Buffer.from(byCid.get((manifest.attestations as CID[])[1]!.toString()) ?? []).equals(Buffer.from(attestations[1]!.bytes))).toBe(true)
      // every artifact block, each once, plus manifest + job + 2 attestations
      const dagCids: string[] = []
      for await (const c of walkDag(blockstore, artifact)) dagCids.push(c.toString())
      expect(dagCids.length).toBeGreaterThan(3)
      for (const c of dagCids) expect(byCid.has(c)).toBe(true)
      expect(parts.blocks).toHaveLength(dagCids.length + 4)
      expect(written.blocks).toBe(parts.blocks.length)

      // the bundle alone reproduces the artifact tree
      const fromCar = new MemoryBlockstore()
      for (const b of parts.blocks) await fromCar.put(b.cid, b.bytes)
      await exportToDirectory(fromCar, CID.parse(artifact.toString()), join(tmp, 'restored'))
      await sameTree(dir, join(tmp, 'restored'))
    })
  })

  it('fails under a verifier policy that trusts other keys, or needs more keys than signed', async () => {
    await withTempDir(async tmp => {
      const { blockstore, artifact } = await makeArtifact(tmp)
      const job = makeJob()
      const out = join(tmp, 'bundle.car')
      await writeBundle(blockstore, { job, attestations: [attestFor(trustedWorkers[0], job, artifact), attestFor(trustedWorkers[1], job, artifact)], artifact }, out)
      const bytes = new Uint8Array(await readFile(out))
      expect(verifyBundle(bytes, { policy: trustedPolicy(2), now: LATER }).ok).toBe(true)

      const k3 = verifyBundle(bytes, { policy: trustedPolicy(3), now: LATER })
      expect(k3.ok).toBe(false)
      expect(k3.problems.map(p => p.code)).toEqual(['ERR_POLICY_NOT_MET'])
      expect(k3.verdict?.status).toBe('provisional')

      const strangers = createPolicy({ trusted: untrustedWorkers.map(k => k.did), threshold: 1 })
      const other = verifyBundle(bytes, { policy: strangers, now: LATER })
      expect(other.ok).toBe(false)
      expect(other.problems.map(p => p.code)).toEqual(['ERR_POLICY_NOT_MET'])
    })
  })

  it('a failed write leaves no file and no temporary file behind', async () => {
    await withTempDir(async tmp => {
      const { blockstore, artifact } = await makeArtifact(tmp)
      const job = makeJob()
      const attestations = [attestFor(trustedWorkers[0], job, artifact)]
      // a store that lost one artifact block: the bundle would be incomplete
      const cids: CID[] = []
      for await (const c of walkDag(blockstore, artifact)) cids.push(c)
      const lost = cids[cids.length - 1] as CID
      const partial = {
        get: (cid: CID, options?: { signal?: AbortSignal }) => {
          if (cid.equals(lost)) throw new Error(`not found: ${cid.toString()}`)
          return blockstore.get(cid, options)
        }
      }
      const out = join(tmp, 'bundle.car')
      await expect(writeBundle(partial, { job, attestations, artifact }, out)).rejects.toThrow(/not found/)
      expect(await readdir(tmp)).toEqual(['artifact'])

      // an attestation of another build does not belong in this bundle
      const otherDef = definitionFor('another build')
      const foreign = attestFor(trustedWorkers[1], makeJob(otherDef), artifact)
      const err = await writeBundle(blockstore, { job, attestations: [foreign], artifact }, out).catch(e => e)
      expect(err).toBeInstanceOf(BundleInputError)
      expect(err.code).toBe('ERR_BUNDLE_INPUT')
      expect(await readdir(tmp)).toEqual(['artifact'])

      const aborted = await writeBundle(blockstore, { job, attestations, artifact }, out, { signal: AbortSignal.abort() }).catch(e => e)
      expect(aborted.name).toBe('AbortError')
      expect(await readdir(tmp)).toEqual(['artifact'])
    })
  })
})
