/**
 * The commitment book (src/store/commitment-book.ts, PROTOCOL.md §8.3): the
 * order in which commitments and first reveals arrived is what the verdict
 * reads, so it must survive a restart unchanged; a key commits once per job
 * (the first stands); commitments are kept only for held jobs, of their
 * build, and at most MAX_STRANGER_COMMITMENTS_PER_JOB from keys the node
 * neither trusts nor the job names. A tampered datastore injects nothing.
 */
import { describe, expect, it } from 'vitest'
import { MemoryDatastore } from 'datastore-core/memory'
import { Key } from 'interface-datastore'
import { createCommitment, fakeKeyLabel } from './commitment-fixtures.ts'
import { CommitmentBook, MAX_CLAIMANT_COMMITMENTS_PER_JOB, MAX_STRANGER_COMMITMENTS_PER_JOB, MAX_STRANGER_REVEALS_PER_BUILD } from '../../src/store/commitment-book.ts'
import { T0, attest, fakeTreeCid, fixedKey, makeJob, requester } from '../protocol/fixtures.ts'
import { committedInTime, createEquivocationProof } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import { ATTESTATIONS_TOPIC, EQUIVOCATIONS_TOPIC } from '../../src/net/topics.ts'

const job = makeJob({ builders: [fixedKey('worker-1').did, fixedKey('worker-2').did].sort() })
const A = fakeTreeCid('artifact-A')

function records (jobs: SignedJob[]): ConstructorParameters<typeof CommitmentBook>[1]['records'] {
  return {
    getJob: (id) => jobs.find(j => j.jobId === id),
    hasJob: (id) => jobs.some(j => j.jobId === id),
    hasBuild: (b) => jobs.some(j => j.job.buildId === b)
  }
}

describe('the commitment book', () => {
  it('keeps the arrival order of commitments and reveals across a restart, and goes on counting after it', async () => {
    const datastore = new MemoryDatastore()
    const book = new CommitmentBook({}, { datastore, records: records([job]) })
    const w1 = fixedKey('worker-1')
    const w2 = fixedKey('worker-2')
    expect(book.put(createCommitment(job, w1, A))).toBe(true)
    book.noteReveal(attest(w1, { jobId: job.jobId, artifact: A, buildId: job.job.buildId, def: job.job.definition }))
    expect(book.put(createCommitment(job, w2, A))).toBe(true)
    const before = book.evidence(job.job.buildId)
    // writes are not awaited by put (the place is given at once): let them land
    await new Promise(resolve => setImmediate(resolve))

    const again = new CommitmentBook({}, { datastore, records: records([job]) })
    expect(await again.load({ now: T0 })).toEqual({ commitments: 2, reveals: 1 })
    const after = again.evidence(job.job.buildId)
    expect(after.revealed).toEqual(before.revealed)
    expect(after.commitments.map(c => [c.commitment.worker, c.order]).sort()).toEqual(before.commitments.map(c => [c.commitment.worker, c.order]).sort())
    // w1 before the reveal, w2 after it, as they came
    const order = new Map(after.commitments.map(c => [c.commitment.worker, c.order]))
    const reveal = after.revealed.get(A)!.order
    expect(order.get(w1.did)! < reveal && reveal < order.get(w2.did)!).toBe(true)
    // a commitment after the restart comes after everything before it
    const w3 = fixedKey('worker-3')
    expect(again.put(createCommitment(job, w3, A))).toBe(true)
    expect(Math.max(...again.evidence(job.job.buildId).commitments.filter(c => c.commitment.worker === w3.did).map(c => c.order))).toBeGreaterThan(Math.max(reveal, ...order.values()))
  })

  it('keeps the first commitment of a key on a job, and none for a job not held or of another build', () => {
    const book = new CommitmentBook({}, { datastore: new MemoryDatastore(), records: records([job]) })
    const w1 = fixedKey('worker-1')
    const first = createCommitment(job, w1, A)
    expect(book.put(first)).toBe(true)
    expect(book.refusal(createCommitment(job, w1, fakeTreeCid('artifact-B')))?.code).toBe('ERR_DUPLICATE')
    expect(book.commitments(job.jobId)).toEqual([first])
    const other = makeJob({ replicas: 3 })
    expect(book.refusal(createCommitment(other, w1, A))?.code).toBe('ERR_UNKNOWN_JOB')
    const wrongBuild = createCommitment(job, fixedKey('worker-2'), A, { buildId: makeJob({ def: { ...job.job.definition, output: 'elsewhere' } }).job.buildId })
    expect(book.refusal(wrongBuild)).toMatchObject({ code: 'ERR_UNKNOWN_BUILD', charged: true })
  })

  it('keeps at most MAX_STRANGER_COMMITMENTS_PER_JOB from strangers; always a key it trusts, a live claimant, and a builder its own job names', () => {
    const trusted = fixedKey('trusted-elsewhere').did
    const claimant = fixedKey('claimant').did
    const fill = (book: CommitmentBook): number => {
      let kept = 0
      for (let i = 0; i < MAX_STRANGER_COMMITMENTS_PER_JOB + 10; i++) if (book.put(createCommitment(job, fixedKey(fakeKeyLabel(i)), A))) kept++
      return kept
    }
    const mine = new CommitmentBook({ trusts: (did) => did === trusted, own: requester.did, claimant: (_, did) => did === claimant }, { datastore: new MemoryDatastore(), records: records([job]) })
    expect(fill(mine)).toBe(MAX_STRANGER_COMMITMENTS_PER_JOB)
    expect(mine.put(createCommitment(job, fixedKey('worker-1'), A))).toBe(true)
    expect(mine.put(createCommitment(job, fixedKey('trusted-elsewhere'), A))).toBe(true)
    expect(mine.put(createCommitment(job, fixedKey('claimant'), A))).toBe(true)
    // someone else's job: the 128 builders any requester may name are strangers
    // here (else one announcement would lift the cap for 128 fresh keys), but
    // a builder holding a live lease is a claimant, and passed on
    const theirs = new CommitmentBook({ own: fixedKey('another-requester').did, claimant: (_, did) => did === claimant }, { datastore: new MemoryDatastore(), records: records([job]) })
    expect(fill(theirs)).toBe(MAX_STRANGER_COMMITMENTS_PER_JOB)
    expect(theirs.put(createCommitment(job, fixedKey('worker-1'), A))).toBe(false)
    expect(theirs.put(createCommitment(job, fixedKey('claimant'), A))).toBe(true)
  })

  it('a tampered stored commitment is dropped at load, not believed', async () => {
    const datastore = new MemoryDatastore()
    const book = new CommitmentBook({}, { datastore, records: records([job]) })
    book.put(createCommitment(job, fixedKey('worker-1'), A))
    await new Promise(resolve => setImmediate(resolve))
    const entries = []
    for await (const e of datastore.query({ prefix: '/concur/commitments' })) entries.push(e)
    const [entry] = entries
    const stored = JSON.parse(new TextDecoder().decode(entry!.value)) as { order: number, bytes: string }
    const forged = createCommitment(job, fixedKey('worker-2'), A)
    // worker-2's envelope relabelled as worker-1's: its signature no longer verifies
    const env = JSON.parse(Buffer.from(forged.bytes).toString()) as { signatures: Array<{ sig: string }> }
    const mine = JSON.parse(Buffer.from(stored.bytes, 'base64').toString()) as { signatures: Array<{ sig: string }> }
    mine.signatures[0]!.sig = env.signatures[0]!.sig
    await datastore.put(new Key(entry!.key.toString()), new TextEncoder().encode(JSON.stringify({ order: stored.order, bytes: Buffer.from(JSON.stringify(mine)).toString('base64') })))
    const again = new CommitmentBook({}, { datastore, records: records([job]) })
    expect(await again.load({ now: T0 })).toEqual({ commitments: 0, reveals: 0 })
  })

  it('an attestation, or an equivocation proof, makes its CIDs revealed once it verified, even when a cap here drops it', () => {
    const book = new CommitmentBook({}, { datastore: new MemoryDatastore(), records: records([job]) })
    // the daemon's wiring: `verified` sees every message that verified, before it is refused
    const validate = createMessageValidator({
      now: () => T0 + 300_000,
      verified: (m) => { book.verified(m) },
      refuse: () => ({ code: 'ERR_BUILD_FULL', reason: 'full', charged: false })
    })
    const liar = fixedKey('worker-2')
    const X = fakeTreeCid('artifact-X')
    const Y = fakeTreeCid('artifact-Y')
    const on = (key: ReturnType<typeof fixedKey>, artifact: string, finishedAt = T0 + 120_000) => attest(key, { jobId: job.jobId, artifact, buildId: job.job.buildId, def: job.job.definition, finishedAt })
    // a stranger's attestation this node drops at its per-build cap: its CID is public all the same
    expect(validate(ATTESTATIONS_TOPIC, on(fixedKey('stranger-early'), A).bytes)).toMatchObject({ action: 'ignore', code: 'ERR_BUILD_FULL' })
    expect(book.evidence(job.job.buildId).revealed.has(A)).toBe(true)
    // the proof's CIDs were never in an attestation of their own here: a copier
    // reading the proofs topic learns them all the same
    expect(validate(EQUIVOCATIONS_TOPIC, createEquivocationProof(on(liar, X), on(liar, Y, T0 + 121_000)).bytes).action).toBe('ignore')
    expect([...book.evidence(job.job.buildId).revealed.keys()].sort()).toEqual([A, X, Y].sort())
  })

  it('a stranger flood past the reveal cap places every later artifact at the cap (strangers\' not kept at all): a copier hiding its source gains nothing', () => {
    const trusted = fixedKey('worker-2')
    const book = new CommitmentBook({ trusts: (did) => did === trusted.did }, { datastore: new MemoryDatastore(), records: records([job]) })
    const junk = (i: number) => attest(fixedKey(fakeKeyLabel(i % 8)), { jobId: job.jobId, artifact: fakeTreeCid(`junk-${i}`), buildId: job.job.buildId, def: job.job.definition })
    for (let i = 0; i < MAX_STRANGER_REVEALS_PER_BUILD + 1; i++) book.noteReveal(junk(i))
    expect(book.evidence(job.job.buildId).revealed.size).toBe(MAX_STRANGER_REVEALS_PER_BUILD)
    // past the mark, more strangers' artifacts add nothing (they were kept, and written, before: review)
    for (let i = MAX_STRANGER_REVEALS_PER_BUILD + 1; i < MAX_STRANGER_REVEALS_PER_BUILD + 40; i++) book.noteReveal(junk(i))
    expect(book.evidence(job.job.buildId).revealed.size).toBe(MAX_STRANGER_REVEALS_PER_BUILD)
    const w1 = fixedKey('worker-1')
    book.put(createCommitment(job, w1, A))
    // the copier's own reveal of A, after its commitment: no place of its own, so not committed in time
    const copy = attest(w1, { jobId: job.jobId, artifact: A, buildId: job.job.buildId, def: job.job.definition })
    book.noteReveal(copy)
    expect(committedInTime(copy, book.evidence(job.job.buildId))).toBe(false)
    // a trusted key's artifact first seen now is placed at the mark: before the commitment too
    const B = fakeTreeCid('artifact-B')
    book.noteReveal(attest(trusted, { jobId: job.jobId, artifact: B, buildId: job.job.buildId, def: job.job.definition }))
    const e = book.evidence(job.job.buildId)
    expect(e.revealed.get(B)!.order).toBeLessThan(e.commitments[0]!.order)
  })

  it('a restart keeps counting strangers\' reveals against the cap', async () => {
    const datastore = new MemoryDatastore()
    const junk = (i: number) => attest(fixedKey(fakeKeyLabel(i % 8)), { jobId: job.jobId, artifact: fakeTreeCid(`junk-${i}`), buildId: job.job.buildId, def: job.job.definition })
    const book = new CommitmentBook({}, { datastore, records: records([job]) })
    for (let i = 0; i < 10; i++) book.noteReveal(junk(i))
    await new Promise(resolve => setImmediate(resolve))
    const again = new CommitmentBook({}, { datastore, records: records([job]) })
    expect((await again.load({ now: T0 })).reveals).toBe(10)
    for (let i = 10; i < MAX_STRANGER_REVEALS_PER_BUILD + 10; i++) again.noteReveal(junk(i))
    // before the fix the 10 from before the restart were not counted: 1,034 kept
    expect(again.evidence(job.job.buildId).revealed.size).toBe(MAX_STRANGER_REVEALS_PER_BUILD)
  })

  it('workers holding a lease are kept past the stranger cap, but only as many per job as the claim book keeps claimants', () => {
    const open = makeJob({})
    const book = new CommitmentBook({ claimant: () => true }, { datastore: new MemoryDatastore(), records: records([open]) })
    for (let i = 0; i < MAX_CLAIMANT_COMMITMENTS_PER_JOB; i++) expect(book.put(createCommitment(open, fixedKey(`claimant-${i}`), A))).toBe(true)
    // a throw-away key taking a lapsed slot: before the review, kept without end
    expect(book.refusal(createCommitment(open, fixedKey('claimant-next'), A))).toMatchObject({ code: 'ERR_COMMITMENTS_FULL' })
  })

  it('after a restart, a stored attestation whose reveal place was lost is placed before every commitment', async () => {
    const datastore = new MemoryDatastore()
    const stored = attest(fixedKey('worker-1'), { jobId: job.jobId, artifact: A, buildId: job.job.buildId, def: job.job.definition })
    const withHeld = { ...records([job]), jobs: () => [job], attestations: () => [stored], equivocations: () => [] }
    const book = new CommitmentBook({}, { datastore, records: withHeld })
    await book.load({ now: T0 })
    book.put(createCommitment(job, fixedKey('worker-2'), A))
    const e = book.evidence(job.job.buildId)
    expect(e.revealed.get(A)).toEqual({ order: 0, at: 0 })
    expect(e.revealed.get(A)!.order).toBeLessThan(e.commitments[0]!.order)
  })
})
