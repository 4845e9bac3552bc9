/**
 * What the requester keeps of the signed releases of its jobs (PROTOCOL.md §7
 * rule 6): each worker's latest, with its reason, persisted with the record
 * and shown by the view. Releases cost a throw-away key nothing, so the notes
 * are bounded, and untrusted keys can never push a trusted worker's reason
 * out: 100 sybil releases leave the trusted one and MAX_UNTRUSTED_RELEASES
 * others.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { MemoryDatastore } from 'datastore-core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createClaim, generateSigningKey } from '../../protocol/index.ts'
import type { ClaimRelease, SignedClaim, SignedJob, SigningKey } from '../../protocol/index.ts'
import { MAX_RELEASES_KEPT, MAX_UNTRUSTED_RELEASES, keepRelease, requester } from '../../src/requester/requester.ts'
import type { ReleaseNote } from '../../src/requester/types.ts'
import { recordStore } from '../../src/store/records.ts'
import { T0, attest, fixedKey, iso, makeJob } from '../protocol/fixtures.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'

const trustedWorker = fixedKey('release-trusted')

function releaseOf (job: SignedJob, key: SigningKey, seq: number, release?: ClaimRelease): SignedClaim {
  return createClaim({
    jobId: job.jobId,
    buildId: job.job.buildId,
    worker: key.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    issuedAt: iso(T0 + 1_000 + seq),
    leaseUntil: iso(T0 + 31_000 + seq),
    seq,
    ...(release != null ? { release } : {})
  }, key)
}

describe('keepRelease (pure)', () => {
  it('keeps each worker once, at most MAX_UNTRUSTED_RELEASES untrusted, at most MAX_RELEASES_KEPT in all, and no untrusted note displaces a trusted one', () => {
    const note = fc.record({ worker: fc.integer({ min: 0, max: 200 }).map(i => `did:key:z${i}`), trusted: fc.boolean(), reason: fc.string({ maxLength: 5 }) })
    fc.assert(fc.property(fc.array(note, { minLength: 100, maxLength: 400 }), (input) => {
      // a worker is trusted or not for the whole run, as under one policy
      const trust = new Map<string, boolean>()
      let notes: ReleaseNote[] = []
      const trustedSeen = new Set<string>()
      for (const n of input) {
        const trusted = trust.get(n.worker) ?? n.trusted
        trust.set(n.worker, trusted)
        if (trusted) trustedSeen.add(n.worker)
        notes = keepRelease(notes, { worker: n.worker, kind: 'declined', reason: n.reason, at: iso(T0), trusted })
      }
      expect(new Set(notes.map(n => n.worker)).size).toBe(notes.length)
      expect(notes.filter(n => !n.trusted).length).toBeLessThanOrEqual(MAX_UNTRUSTED_RELEASES)
      expect(notes.length).toBeLessThanOrEqual(MAX_RELEASES_KEPT)
      // every trusted worker that released is still there, up to the cap
      expect(notes.filter(n => n.trusted).length).toBe(Math.min(trustedSeen.size, MAX_RELEASES_KEPT))
    }))
  })
})

describe('the requester keeps the releases of its jobs', () => {
  it('shows a trusted worker\'s reason, keeps it against 100 sybil releases, and reads it back after a restart', async () => {
    // counts the requester's record writes: a throw-away key must not cost one per message
    let writes = 0
    const datastore = new MemoryDatastore()
    const put = datastore.put.bind(datastore)
    datastore.put = async (...args: Parameters<MemoryDatastore['put']>) => { writes++; return await put(...args) }
    const records = recordStore()({ datastore: new MemoryDatastore() })
    const policy = new TestPolicy()
    policy.set({ trusted: [trustedWorker.did], threshold: 1 })
    const claims = new TypedEventEmitter<{ 'claim:recorded': CustomEvent<SignedClaim> }>()
    const make = (): ReturnType<ReturnType<typeof requester>> => requester({ now: () => T0 + 2_000, catchUpMs: 0 })({
      ...inMemoryComponents({ policy, records, publish: async () => ({ recipients: 0 }) }),
      datastore,
      claims
    })
    const svc = make()
    await svc.start()
    const job = makeJob()
    await svc.submit(job, { reuse: false })
    const heard: string[] = []
    svc.addEventListener('release:recorded', (e) => { heard.push(e.detail.worker) })

    // a claim that is not a release, and a release of a job this node did not submit: nothing kept
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, trustedWorker, 1) })
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(makeJob({ def: { ...job.job.definition, command: ['true'] } }), trustedWorker, 2, { kind: 'declined', reason: 'not ours' }) })
    const declined = { kind: 'declined', reason: 'asks for more than this volunteer allows: cpus 2 > 1' } as const
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, trustedWorker, 3, declined) })
    await svc.view(job.jobId)
    const writesBefore = writes
    for (let i = 0; i < 100; i++) {
      claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, generateSigningKey(), 1, { kind: 'gave-up', reason: `sybil ${i}` }) })
    }
    // one key raising its seq with new words each time
    const raiser = generateSigningKey()
    for (let i = 0; i < 50; i++) claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, raiser, 10 + i, { kind: 'gave-up', reason: `again ${i}` }) })
    let view = await svc.view(job.jobId)
    expect(writes - writesBefore, 'record writes for 150 untrusted releases').toBe(0)
    const notes = view.record.releases ?? []
    expect(notes.find(n => n.worker === trustedWorker.did)).toEqual({ worker: trustedWorker.did, ...declined, at: iso(T0 + 1_003), trusted: true })
    expect(notes.filter(n => !n.trusted)).toHaveLength(MAX_UNTRUSTED_RELEASES)
    // the newest untrusted notes are kept, the oldest went first
    expect(notes.filter(n => !n.trusted).map(n => n.reason)).toEqual([...Array.from({ length: MAX_UNTRUSTED_RELEASES - 1 }, (_, i) => `sybil ${100 - MAX_UNTRUSTED_RELEASES + 1 + i}`), 'again 49'])
    expect(heard[0]).toBe(trustedWorker.did)
    // the same words from the same worker again: nothing new to say or write
    const w0 = writes
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, trustedWorker, 4, declined) })
    await svc.view(job.jobId)
    expect(writes).toBe(w0)

    // the same worker's newer release replaces its note
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, trustedWorker, 5, { kind: 'inputs-unavailable', reason: 'could not fetch the rootfs' }) })
    view = await svc.view(job.jobId)
    expect(view.record.releases?.filter(n => n.worker === trustedWorker.did).map(n => n.kind)).toEqual(['inputs-unavailable'])

    // untrusted now: the view says so under the policy of now
    policy.set({ trusted: [fixedKey('someone-else').did], threshold: 1 })
    view = await svc.view(job.jobId)
    expect(view.record.releases?.find(n => n.worker === trustedWorker.did)?.trusted).toBe(false)
    policy.set({ trusted: [trustedWorker.did], threshold: 1 })

    // a worker claiming the job after its release is building after all: its note goes
    const other = fixedKey('release-later-claims')
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, other, 1, { kind: 'inputs-unavailable', reason: 'try 1 of 5' }) })
    expect((await svc.view(job.jobId)).record.releases?.some(n => n.worker === other.did)).toBe(true)
    claims.safeDispatchEvent('claim:recorded', { detail: releaseOf(job, other, 2) })
    expect((await svc.view(job.jobId)).record.releases?.some(n => n.worker === other.did)).toBe(false)

    await svc.stop()
    const again = make()
    await again.start()
    try {
      const back = await again.view(job.jobId)
      expect(back.record.releases?.find(n => n.worker === trustedWorker.did)).toMatchObject({ kind: 'inputs-unavailable', reason: 'could not fetch the rootfs', trusted: true })
      expect(back.record.releases).toHaveLength(1 + MAX_UNTRUSTED_RELEASES)
      // a worker that attested the job after all is not shown as "not building" it
      await records.putAttestation(attest(trustedWorker, { jobId: job.jobId }))
      expect((await again.view(job.jobId)).record.releases?.some(n => n.worker === trustedWorker.did)).toBe(false)
    } finally {
      await again.stop()
    }
  })
})
