/**
 * The record store keeps what peers send only within the node's limits
 * (src/store/limits.ts): attestations only of builds a held job names, capped
 * per build and per key unless trusted; jobs capped per requester and in all,
 * with a lifetime ceiling and pruning after expiry; and the same limits apply
 * to what a restart reads back. The node's own jobs are never evicted.
 */
import { describe, expect, it } from 'vitest'
import { MemoryDatastore } from 'datastore-core'
import { generateSigningKey } from '../../protocol/index.ts'
import type { SignedAttestation, SigningKey } from '../../protocol/index.ts'
import { recordStore } from '../../src/store/records.ts'
import type { RecordStoreInit } from '../../src/store/records.ts'
import { storeLimits } from '../../src/store/limits.ts'
import { T0, attest, definition, fakeTreeCid, fixedKey, makeJob, requester } from '../protocol/fixtures.ts'

const def = (label: string): typeof definition => ({ ...definition, source: fakeTreeCid(label) })
const now = T0 + 60_000

async function storedKeys (ds: MemoryDatastore, prefix: string): Promise<number> {
  let n = 0
  for await (const _ of ds.queryKeys({ prefix })) n++
  return n
}

function open (init: RecordStoreInit = {}, ds = new MemoryDatastore()): { records: ReturnType<ReturnType<typeof recordStore>>, ds: MemoryDatastore } {
  return { records: recordStore({ now: () => now, ...init })({ datastore: ds }), ds }
}

describe('attestations', () => {
  it('of a build no held job names are not kept', async () => {
    const { records, ds } = open()
    const att = attest(fixedKey('w1'), { def: def('nobody-asked') })
    expect(records.refusal({ kind: 'attestation', value: att })?.code).toBe('ERR_UNKNOWN_BUILD')
    expect(await records.putAttestation(att)).toBe(false)
    expect(records.attestations()).toHaveLength(0)
    expect(await storedKeys(ds, '/concur/attestations')).toBe(0)
  })

  it('from untrusted keys stop at the per-build cap; a trusted key is still kept after it', async () => {
    const trusted = fixedKey('trusted')
    const { records, ds } = open({ limits: storeLimits({ maxUntrustedPerBuild: 8 }), trusts: a => a.claim.worker === trusted.did })
    const job = makeJob()
    await records.putJob(job)
    const sybils: SignedAttestation[] = []
    for (let i = 0; i < 20; i++) sybils.push(attest(generateSigningKey(), { jobId: job.jobId, artifact: fakeTreeCid(`junk-${i}`) }))
    // concurrent, as a flood arrives: admission counts what is still being written
    const kept = await Promise.all(sybils.map(async a => await records.putAttestation(a)))
    expect(kept.filter(Boolean)).toHaveLength(8)
    expect(records.refusal({ kind: 'attestation', value: attest(generateSigningKey(), { jobId: job.jobId }) })?.code).toBe('ERR_BUILD_FULL')
    expect(await records.putAttestation(attest(trusted, { jobId: job.jobId }))).toBe(true)
    expect(records.attestations(job.job.buildId)).toHaveLength(9)
    expect(await storedKeys(ds, '/concur/attestations')).toBe(9)
    expect(records.usage()).toMatchObject({ attestations: 9, untrustedAttestations: 8 })
  })

  it('from a builder the node\'s own job names are kept past the cap for strangers; a stranger\'s job naming builders confers nothing', async () => {
    const builder = fixedKey('named-builder')
    const mine = open({ own: requester.did, limits: storeLimits({ maxUntrustedPerBuild: 2 }) }).records
    const job = makeJob({ builders: [builder.did] })
    await mine.putJob(job)
    for (let i = 0; i < 5; i++) await mine.putAttestation(attest(generateSigningKey(), { jobId: job.jobId }))
    expect(await mine.putAttestation(attest(builder, { jobId: job.jobId }))).toBe(true)
    expect(mine.usage()).toMatchObject({ attestations: 3, untrustedAttestations: 2 })

    // anyone can announce a job naming 128 fresh keys: on another node, they are strangers like any
    const theirs = open({ limits: storeLimits({ maxUntrustedPerBuild: 2 }) }).records
    const sybils = Array.from({ length: 5 }, () => generateSigningKey())
    const piggyback = makeJob({ key: fixedKey('free-requester'), builders: sybils.map(k => k.did).sort() })
    await theirs.putJob(piggyback)
    for (const k of sybils) await theirs.putAttestation(attest(k, { jobId: piggyback.jobId }))
    expect(theirs.usage()).toMatchObject({ attestations: 2, untrustedAttestations: 2 })
  })

  it('a copy of a job arriving while room is made for it is a duplicate: counted once', async () => {
    const { records } = open({ limits: storeLimits({ maxJobs: 3 }) })
    for (let i = 0; i < 3; i++) await records.putJob(makeJob({ key: fixedKey(`r${i}`), def: def(`fill-${i}`) }))
    const j = makeJob({ key: fixedKey('late'), def: def('late') })
    const both = await Promise.all([records.putJob(j), records.putJob(j)])
    expect(both.filter(Boolean)).toHaveLength(1)
    expect(records.usage().jobs).toBe(records.jobs().length)
    expect(records.jobs()).toHaveLength(3)
  })

  it('fresh keys with one job each evict one another, not the requesters heard first', async () => {
    const { records } = open({ limits: storeLimits({ maxJobs: 4 }) })
    const honest = [0, 1].map(i => makeJob({ key: fixedKey(`honest-${i}`), def: def(`honest-${i}`) }))
    for (const h of honest) await records.putJob(h)
    for (let i = 0; i < 10; i++) await records.putJob(makeJob({ key: generateSigningKey(), def: def(`sybil-${i}`) }))
    for (const h of honest) expect(records.hasJob(h.jobId)).toBe(true)
    expect(records.jobs()).toHaveLength(4)
  })

  it('a trusted key\'s answer to a new job of a build is kept though its genuine answers to two earlier jobs were replayed first', async () => {
    const trusted = fixedKey('rerun-builder')
    const { records } = open({ trusts: a => a.claim.worker === trusted.did })
    const jobs = [1, 2, 3].map(i => makeJob({ createdAt: T0 + i }))
    for (const j of jobs) await records.putJob(j)
    // anyone may replay the key's (genuine) answers to the first two jobs, e.g. just as a rerun is submitted
    expect(await records.putAttestation(attest(trusted, { jobId: jobs[0]!.jobId, artifact: fakeTreeCid('run-1') }))).toBe(true)
    expect(await records.putAttestation(attest(trusted, { jobId: jobs[1]!.jobId, artifact: fakeTreeCid('run-2') }))).toBe(true)
    // its answer to the third job (the rerun) must still be heard
    expect(await records.putAttestation(attest(trusted, { jobId: jobs[2]!.jobId, artifact: fakeTreeCid('run-3') }))).toBe(true)
    // an untrusted key keeps two per build, whatever jobs it names
    const stranger = fixedKey('rerun-stranger')
    const kept = []
    for (const j of jobs) kept.push(await records.putAttestation(attest(stranger, { jobId: j.jobId, artifact: fakeTreeCid(`s-${j.jobId}`) })))
    expect(kept).toEqual([true, true, false])
  })

  it('one key keeps two per job (the proof of equivocation), not more', async () => {
    const { records } = open()
    const job = makeJob()
    await records.putJob(job)
    const k = fixedKey('equivocator')
    expect(await records.putAttestation(attest(k, { jobId: job.jobId, artifact: fakeTreeCid('a') }))).toBe(true)
    expect(await records.putAttestation(attest(k, { jobId: job.jobId, artifact: fakeTreeCid('b') }))).toBe(true)
    expect(await records.putAttestation(attest(k, { jobId: job.jobId, artifact: fakeTreeCid('c') }))).toBe(false)
  })

  it('from one untrusted key stop at its cap over every build, and in all at the byte cap', async () => {
    const k = fixedKey('busy-stranger')
    const { records } = open({ limits: storeLimits({ maxUntrustedPerSigner: 3 }) })
    const jobs = Array.from({ length: 5 }, (_, i) => makeJob({ def: def(`b${i}`) }))
    for (const j of jobs) await records.putJob(j)
    const kept = []
    for (const j of jobs) kept.push(await records.putAttestation(attest(k, { def: def(`b${jobs.indexOf(j)}`), jobId: j.jobId })))
    expect(kept).toEqual([true, true, true, false, false])

    const job = makeJob({ def: def('bytes') })
    const small = open({ limits: storeLimits({ maxUntrustedAttestationBytes: 3000 }) }).records
    await small.putJob(job)
    let n = 0
    for (let i = 0; i < 10; i++) if (await small.putAttestation(attest(generateSigningKey(), { def: def('bytes'), jobId: job.jobId }))) n++
    expect(small.usage().untrustedAttestationBytes).toBeLessThanOrEqual(3000)
    expect(n).toBeGreaterThan(0)
    expect(n).toBeLessThan(10)
  })
})

describe('the pool for strangers\' attestations', () => {
  it('when full, makes room from the build holding the most, so a flood on some builds does not lock out the others', async () => {
    const { records, ds } = open({ limits: storeLimits({ maxUntrustedAttestationBytes: 20_000 }) })
    const flooded = makeJob({ key: fixedKey('attacker'), def: def('attackers-own') })
    const other = makeJob({ def: def('someone-elses') })
    await records.putJob(flooded)
    await records.putJob(other)
    for (let i = 0; i < 30; i++) await records.putAttestation(attest(generateSigningKey(), { def: def('attackers-own'), jobId: flooded.jobId }))
    const full = records.usage().untrustedAttestations
    expect(records.usage().untrustedAttestationBytes).toBeLessThanOrEqual(20_000)
    // a stranger's attestation (a rebuilder's, a dissent) of another build still gets in
    const dissent = attest(fixedKey('honest-stranger'), { def: def('someone-elses'), jobId: other.jobId })
    expect(await records.putAttestation(dissent)).toBe(true)
    expect(records.usage().untrustedAttestations).toBe(full)
    expect(records.usage().untrustedAttestationBytes).toBeLessThanOrEqual(20_000)
    expect(records.attestations(flooded.job.buildId)).toHaveLength(full - 1)
    expect(await storedKeys(ds, '/concur/attestations')).toBe(full)
  })
})

describe('jobs', () => {
  it('asking to stay open past the lifetime ceiling are not kept', async () => {
    const { records } = open({ limits: storeLimits({ maxJobLifetimeMs: 3600_000 }) })
    const job = makeJob({ createdAt: T0, expiresAt: now + 2 * 3600_000 })
    expect(records.refusal({ kind: 'job', value: job })?.code).toBe('ERR_JOB_LIFETIME')
    expect(await records.putJob(job)).toBe(false)
  })

  it('stop at the per-requester cap, and at the global cap the largest requester loses its oldest', async () => {
    const flooder = fixedKey('flooder')
    const honest = fixedKey('honest')
    const own = fixedKey('own')
    const { records, ds } = open({ own: own.did, limits: storeLimits({ maxJobsPerRequester: 5, maxJobs: 5 }) })
    const pruned: string[] = []
    records.addEventListener('job:pruned', ({ detail }) => { pruned.push(detail.jobId) })
    const mine = makeJob({ key: own, def: def('mine') })
    await records.putJob(mine)
    const flood = Array.from({ length: 7 }, (_, i) => makeJob({ key: flooder, def: def(`flood-${i}`) }))
    const kept = []
    for (const j of flood) kept.push(await records.putJob(j))
    expect(kept).toEqual([true, true, true, true, true, false, false])
    expect(records.refusal({ kind: 'job', value: flood[6]! })?.code).toBe('ERR_REQUESTER_FULL')
    // 5 held from peers (the node's own job is not counted): one more from someone else evicts the flooder's oldest
    const h = makeJob({ key: honest, def: def('honest') })
    await records.putAttestation(attest(fixedKey('w'), { def: def('flood-0'), jobId: flood[0]!.jobId }))
    expect(await records.putJob(h)).toBe(true)
    expect(pruned).toEqual([flood[0]!.jobId])
    expect(records.hasJob(flood[0]!.jobId)).toBe(false)
    expect(records.hasJob(mine.jobId)).toBe(true)
    expect(records.attestations(flood[0]!.job.buildId)).toHaveLength(0)
    expect(await storedKeys(ds, '/concur/jobs')).toBe(6)
    expect(await storedKeys(ds, '/concur/attestations')).toBe(0)
    // the node's own requests are not capped (its owner bounds them), nor do they displace anyone
    for (let i = 0; i < 8; i++) expect(await records.putJob(makeJob({ key: own, def: def(`mine-${i}`) }))).toBe(true)
    expect(records.hasJob(h.jobId)).toBe(true)
  })

  it('expired past the grace period are pruned with their attestations, the node\'s own kept', async () => {
    let t = now
    const own = fixedKey('own')
    const ds = new MemoryDatastore()
    const records = recordStore({ now: () => t, own: own.did, limits: storeLimits({ expiredGraceMs: 60_000 }) })({ datastore: ds })
    const other = makeJob({ key: requester, def: def('other'), expiresAt: now + 1000 })
    const mine = makeJob({ key: own, def: def('mine'), expiresAt: now + 1000 })
    await records.putJob(other)
    await records.putJob(mine)
    await records.putAttestation(attest(fixedKey('w'), { def: def('other'), jobId: other.jobId, finishedAt: now }))
    t = now + 30_000
    expect(await records.prune()).toBe(0)
    t = now + 62_000
    expect(await records.prune()).toBe(1)
    expect(records.jobs().map(j => j.jobId)).toEqual([mine.jobId])
    expect(await storedKeys(ds, '/concur/attestations')).toBe(0)
  })
})

describe('a restart', () => {
  it('reads back only what today\'s limits allow, and deletes the rest from disk', async () => {
    const ds = new MemoryDatastore()
    const big = open({}, ds).records
    const job = makeJob()
    await big.putJob(job)
    const keys: SigningKey[] = Array.from({ length: 12 }, () => generateSigningKey())
    for (const k of keys) await big.putAttestation(attest(k, { jobId: job.jobId, artifact: fakeTreeCid('x') }))
    expect(big.attestations()).toHaveLength(12)

    const small = open({ limits: storeLimits({ maxUntrustedPerBuild: 4 }) }, ds).records
    const loaded = await small.load({ now })
    expect(loaded).toMatchObject({ jobs: 1, attestations: 4, dropped: 8 })
    expect(await storedKeys(ds, '/concur/attestations')).toBe(4)
  })
})
