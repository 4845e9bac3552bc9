/**
 * Equivocation proofs in proof bundles (PROTOCOL.md §8.2): an accepted job's
 * bundle carries, beside the counted attestations, both envelopes of every
 * equivocation proof the requester holds for the build; and `concur verify`
 * (verifyBundle) recomputes the verdict from what the bundle carries, so a
 * verifier whose own policy trusts the equivocating key does not count it.
 * Control: the same bundle without the conflicting envelope is accepted on
 * that key.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Pins } from '@helia/interface'
import type { MemoryBlockstore } from 'blockstore-core/memory'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { CODEC_DAG_PB, buildIdOf, cidOf, createEquivocationProof, evaluateVerdict, utf8Encode } from '../../protocol/index.ts'
import { walkDag } from '../../src/content/index.ts'
import { verifyBundle, writeBundle } from '../../src/requester/bundle/index.ts'
import { writeAcceptedBundle } from '../../src/requester/outcomes.ts'
import { LATER, attestFor, decodeManifest, makeArtifact, makeJob, readCar, trustedPolicy, trustedWorkers, withTempDir } from './helpers.ts'

function localPins (local: MemoryBlockstore): Pick<Pins, 'add' | 'isPinned'> {
  return {
    isPinned: async () => false,
    add: async function * (root: CID) { for await (const cid of walkDag(local, root)) yield cid }
  }
}

describe('equivocation proofs in bundles', () => {
  it('an accepted job\'s bundle carries both envelopes of its build\'s proofs, and verify does not count the key', async () => {
    await withTempDir(async tmp => {
      const { blockstore, artifact } = await makeArtifact(tmp)
      const job = makeJob()
      const [w1, w2, w3] = trustedWorkers
      const other = cidOf(CODEC_DAG_PB, utf8Encode('another artifact'))
      const honest = [attestFor(w1, job, artifact), attestFor(w2, job, artifact)]
      const lie = [attestFor(w3, job, artifact), attestFor(w3, job, other)] as const
      const proof = createEquivocationProof(lie[0], lie[1])
      // the requester held w3's statement of the artifact and, from a peer, the proof
      const records = { attestations: () => [...honest, lie[0]], equivocations: () => [proof] }
      const policy = trustedPolicy(2)
      const verdict = evaluateVerdict(policy, buildIdOf(job.job.definition), [...honest, ...proof.attestations], { jobId: job.jobId })
      expect(verdict).toMatchObject({ status: 'accepted', counted: [w1.did, w2.did].sort() })
      const dirs = { bundles: join(tmp, 'bundles'), disputes: join(tmp, 'disputes') }
      const out = await writeAcceptedBundle({ blockstore, pins: localPins(blockstore), records }, dirs, job, verdict, policy)

      const bytes = await readFile(out)
      expect((decodeManifest(readCar(bytes)).attestations as unknown[])).toHaveLength(4)
      // a verifier trusting all three and needing all three: w3 is proven to equivocate, so 2 of 3
      const strict = verifyBundle(bytes, { policy: trustedPolicy(3), now: LATER })
      expect(strict.ok).toBe(false)
      expect(strict.verdict?.equivocators.map(e => e.worker)).toEqual([w3.did])
      expect(strict.problems.map(p => p.code)).toContain('ERR_POLICY_NOT_MET')
      // under the requester's own policy the bundle verifies
      expect(verifyBundle(bytes, { policy: trustedPolicy(2), now: LATER }).ok).toBe(true)

      // control: without the conflicting envelope the same verifier counts w3
      const without = join(tmp, 'without.car')
      await writeBundle(blockstore, { job, attestations: [...honest, lie[0]], artifact, policy: policy.input }, without)
      const control = verifyBundle(await readFile(without), { policy: trustedPolicy(3), now: LATER })
      expect(control.ok).toBe(true)
      expect(control.verdict?.counted).toContain(w3.did)
    })
  })
})
