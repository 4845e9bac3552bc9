/**
 * An artifact is named only while one is usable (issue 19: an EXPIRED job
 * still printed the `artifact` line an earlier provisional evaluation had
 * set). A provisional job that expires, and one that turns disputed, lose
 * `record.artifact`; the history keeps what was named when.
 */
import { describe, expect, it } from 'vitest'
import { MemoryDatastore } from 'datastore-core'
import { recordStore } from '../../src/store/records.ts'
import { requester } from '../../src/requester/requester.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'
import { T0, attest, definition, fakeTreeCid, fixedKey, makeJob } from '../protocol/fixtures.ts'
import { describeRequest } from '../../node/render/request.ts'

const workers = [fixedKey('w1'), fixedKey('w2'), fixedKey('w3')]
const A = fakeTreeCid('artifact-A')
const B = fakeTreeCid('artifact-B')

async function setup (): Promise<{ svc: ReturnType<ReturnType<typeof requester>>, records: ReturnType<ReturnType<typeof recordStore>>, clock: { now: number } }> {
  const clock = { now: T0 + 60_000 }
  const records = recordStore({ now: () => clock.now })({ datastore: new MemoryDatastore() })
  const policy = new TestPolicy()
  policy.set({ trusted: workers.map(w => w.did), threshold: 3 })
  const svc = requester({ now: () => clock.now, catchUpMs: 0 })(inMemoryComponents({ policy, records, publish: async () => ({ recipients: 0 }) }))
  await svc.start()
  return { svc, records, clock }
}

describe('a job with no usable artifact names none', () => {
  it('provisional, then expired: no artifact, and `status` prints none', async () => {
    const { svc, records, clock } = await setup()
    const job = makeJob({ expiresAt: T0 + 120_000 })
    await svc.submit(job, { reuse: false })
    await records.putAttestation(attest(workers[0]!, { jobId: job.jobId, artifact: A }))
    const provisional = await svc.view(job.jobId)
    expect(provisional.record.status).toBe('provisional')
    expect(provisional.record.artifact).toBe(A)
    // past its expiry; the re-evaluation the expiry timer would make
    clock.now = T0 + 121_000
    await records.putAttestation(attest(fixedKey('stranger'), { jobId: job.jobId, artifact: A }))
    const expired = await svc.view(job.jobId)
    expect(expired.record.status).toBe('expired')
    expect(expired.record.artifact).toBeUndefined()
    expect(expired.record.history.find(h => h.status === 'provisional')?.artifact).toBe(A)
    expect(describeRequest(expired)).not.toMatch(/^artifact/m)
    await svc.stop()
  })

  it('provisional, then disputed: no artifact', async () => {
    const { svc, records } = await setup()
    const def = { ...definition, command: ['sh', '-c', 'echo two > out/x'] }
    const job = makeJob({ def })
    await svc.submit(job, { reuse: false })
    await records.putAttestation(attest(workers[0]!, { def, jobId: job.jobId, artifact: A }))
    expect((await svc.view(job.jobId)).record.artifact).toBe(A)
    await records.putAttestation(attest(workers[1]!, { def, jobId: job.jobId, artifact: B }))
    const v = await svc.view(job.jobId)
    expect(v.record.status).toBe('disputed')
    expect(v.record.artifact).toBeUndefined()
    await svc.stop()
  })
})
