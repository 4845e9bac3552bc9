/**
 * Equivocation proofs in the record store and the verdict (PROTOCOL.md §8.2).
 *
 * A requester that holds one of a key's two conflicting statements (or two
 * copies of one, which fills its per-key cap so the conflicting one is never
 * stored) and receives the proof judges the key exactly as if it held both:
 * it counts for nothing on that build (control: without the proof it counts).
 * A proof is kept once per key and build, only for builds of held jobs,
 * capped for keys the node does not trust, persisted (a reopened store has
 * it), and dropped with the build. A node whose own store comes to hold both
 * statements makes the proof itself, once, and says it found it (it is the
 * one that publishes it).
 */
import { describe, expect, it } from 'vitest'
import { MemoryDatastore } from 'datastore-core'
import { createEquivocationProof, createPolicy, evaluateVerdict, generateSigningKey } from '../../protocol/index.ts'
import type { EquivocationProof } from '../../protocol/index.ts'
import { recordStore } from '../../src/store/records.ts'
import type { RecordStoreInit } from '../../src/store/records.ts'
import { storeLimits } from '../../src/store/limits.ts'
import { verdictInput } from '../../src/requester/outcomes.ts'
import { T0, attest, fakeTreeCid, fixedKey, makeJob } from '../protocol/fixtures.ts'

const now = T0 + 60_000
const T = fixedKey('equivocator')
const X = fakeTreeCid('artifact-X')
const Y = fakeTreeCid('artifact-Y')

function open (init: RecordStoreInit = {}, ds = new MemoryDatastore()): { records: ReturnType<ReturnType<typeof recordStore>>, ds: MemoryDatastore } {
  return { records: recordStore({ now: () => now, ...init })({ datastore: ds }), ds }
}

async function storedKeys (ds: MemoryDatastore, prefix: string): Promise<number> {
  let n = 0
  for await (const _ of ds.queryKeys({ prefix })) n++
  return n
}

/** T's two statements of X for `jobId`, and its statement of Y: what the proof is made of */
function statements (jobId: string): { x1: ReturnType<typeof attest>, x2: ReturnType<typeof attest>, y: ReturnType<typeof attest> } {
  return {
    x1: attest(T, { jobId, artifact: X, finishedAt: T0 + 120_000 }),
    x2: attest(T, { jobId, artifact: X, finishedAt: T0 + 121_000 }),
    y: attest(T, { jobId, artifact: Y, finishedAt: T0 + 122_000 })
  }
}

describe('a received proof', () => {
  it('stops the key counting though the conflicting statement never fit in the store (control: without it the key counts)', async () => {
    const { records } = open({ trusts: a => a.claim.worker === T.did })
    const job = makeJob()
    await records.putJob(job)
    const { x1, x2, y } = statements(job.jobId)
    expect(await records.putAttestation(x1)).toBe(true)
    expect(await records.putAttestation(x2)).toBe(true)
    // two per key per job: the conflicting statement is not kept here
    expect(records.refusal({ kind: 'attestation', value: y })?.code).toBe('ERR_SIGNER_FULL')
    expect(await records.putAttestation(y)).toBe(false)

    const policy = createPolicy({ trusted: [T.did], threshold: 1 })
    const control = evaluateVerdict(policy, job.job.buildId, verdictInput(records, job.job.buildId), { jobId: job.jobId })
    expect(control).toMatchObject({ status: 'accepted', artifact: X, counted: [T.did], equivocators: [] })

    const stored: Array<{ proof: EquivocationProof, detected: boolean }> = []
    records.addEventListener('equivocation:stored', e => { stored.push(e.detail) })
    const proof = createEquivocationProof(x1, y)
    expect(records.refusal({ kind: 'equivocation', value: proof })).toBeUndefined()
    expect(await records.putEquivocation(proof)).toBe(true)
    expect(stored.map(s => s.detected)).toEqual([false])

    const v = evaluateVerdict(policy, job.job.buildId, verdictInput(records, job.job.buildId), { jobId: job.jobId })
    expect(v.status).toBe('pending')
    expect(v.counted).toEqual([])
    expect(v.equivocators.map(e => e.worker)).toEqual([T.did])
    // the store's attestations are what it kept; the proof is apart from them
    expect(records.attestations(job.job.buildId)).toHaveLength(2)
  })

  it('is kept once per key and build: a second proof about the same key is a duplicate', async () => {
    const { records } = open()
    const job = makeJob()
    await records.putJob(job)
    const { x1, x2, y } = statements(job.jobId)
    expect(await records.putEquivocation(createEquivocationProof(x1, y))).toBe(true)
    const other = createEquivocationProof(x2, y)
    expect(records.hasEquivocation(other.key)).toBe(true)
    expect(await records.putEquivocation(other)).toBe(false)
    expect(records.equivocations(job.job.buildId)).toHaveLength(1)
  })

  it('of a build no held job names is not kept (nor relayed)', async () => {
    const { records, ds } = open()
    const { x1, y } = statements('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const proof = createEquivocationProof(x1, y)
    expect(records.refusal({ kind: 'equivocation', value: proof })).toMatchObject({ code: 'ERR_UNKNOWN_BUILD', charged: true })
    expect(await records.putEquivocation(proof)).toBe(false)
    expect(await storedKeys(ds, '/concur/equivocations')).toBe(0)
  })

  it('about untrusted keys stops at the per-build cap; one about a trusted key is still kept', async () => {
    const trusted = fixedKey('trusted')
    const { records } = open({ limits: storeLimits({ maxUntrustedEquivocationsPerBuild: 2 }), trusts: a => a.claim.worker === trusted.did })
    const job = makeJob()
    await records.putJob(job)
    const pair = (k: ReturnType<typeof generateSigningKey>): EquivocationProof =>
      createEquivocationProof(attest(k, { jobId: job.jobId, artifact: X }), attest(k, { jobId: job.jobId, artifact: Y }))
    const kept = await Promise.all([1, 2, 3, 4].map(async () => await records.putEquivocation(pair(generateSigningKey()))))
    expect(kept.filter(Boolean)).toHaveLength(2)
    expect(records.refusal({ kind: 'equivocation', value: pair(generateSigningKey()) })).toMatchObject({ code: 'ERR_PROOFS_FULL', charged: false })
    expect(await records.putEquivocation(pair(trusted))).toBe(true)
    expect(records.usage()).toMatchObject({ equivocations: 3, untrustedEquivocations: 2 })
  })

  it('survives a reopen of the store, and goes with its build', async () => {
    const ds = new MemoryDatastore()
    const first = open({}, ds).records
    const job = makeJob({ expiresAt: T0 + 120_000 })
    await first.putJob(job)
    const { x1, y } = statements(job.jobId)
    await first.putEquivocation(createEquivocationProof(x1, y))

    const again = open({}, ds).records
    await again.load({ now })
    expect(again.equivocations(job.job.buildId).map(p => p.key)).toEqual([createEquivocationProof(x1, y).key])

    // expired past its grace: the job goes, and with its build the proof
    await again.prune({ now: T0 + 120_000 + storeLimits().expiredGraceMs + 1 })
    expect(again.equivocations(job.job.buildId)).toHaveLength(0)
    expect(await storedKeys(ds, '/concur/equivocations')).toBe(0)
  })
})

describe('a node whose own store holds both statements', () => {
  it('makes the proof itself, once, and says it found it', async () => {
    const { records } = open({ limits: storeLimits({ maxPerSignerPerJob: 3 }) })
    const job = makeJob()
    await records.putJob(job)
    const found: Array<{ proof: EquivocationProof, detected: boolean }> = []
    records.addEventListener('equivocation:stored', e => { found.push(e.detail) })
    const { x1, y } = statements(job.jobId)
    await records.putAttestation(x1)
    expect(found).toHaveLength(0)
    await records.putAttestation(y)
    expect(found.map(f => f.detected)).toEqual([true])
    expect(found[0]!.proof.bytes).toEqual(createEquivocationProof(x1, y).bytes)
    // a third artifact by the same key adds no second proof: one convicts it for the build
    await records.putAttestation(attest(T, { jobId: job.jobId, artifact: fakeTreeCid('artifact-Z') }))
    expect(found).toHaveLength(1)
  })

  it('makes none from answers to two jobs of one build (a rerun), nor from a success and a failure', async () => {
    const { records } = open()
    const first = makeJob()
    const rerun = makeJob({ createdAt: T0 + 1000 })
    expect(rerun.job.buildId).toBe(first.job.buildId)
    await records.putJob(first)
    await records.putJob(rerun)
    const found: unknown[] = []
    records.addEventListener('equivocation:stored', e => { found.push(e.detail) })
    await records.putAttestation(attest(T, { jobId: first.jobId, artifact: X }))
    await records.putAttestation(attest(T, { jobId: rerun.jobId, artifact: Y }))
    await records.putAttestation(attest(T, { jobId: first.jobId, failure: { exitCode: 1, reason: 'no' } }))
    expect(found).toEqual([])
  })
})
