/**
 * The requester as a service, without a network: it re-evaluates a job when
 * the record store announces an attestation (no timer, no sleep: the view
 * taken right after the store has it already shows the new verdict), and the
 * bundle it writes names the policy its verdict was made under, whatever the
 * policy becomes later.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import * as dagCbor from '@ipld/dag-cbor'
import { addBytes } from '../../src/content/index.ts'
import { recordStore } from '../../src/store/records.ts'
import { requester } from '../../src/requester/requester.ts'
import type { Requester } from '../../src/requester/requester.ts'
import type { TrustPolicyInput } from '../../protocol/index.ts'
import type { VerdictChange } from '../../src/requester/types.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'
import { parseCar } from '../../src/requester/bundle/index.ts'
import { T0, attest, definition, fixedKey, makeJob } from '../protocol/fixtures.ts'

const workers = [fixedKey('w1'), fixedKey('w2'), fixedKey('w3')]

describe('the requester follows the record store, and its bundle names the verdict\'s policy', () => {
  let dir = ''
  let svc: Requester
  let records: ReturnType<ReturnType<typeof recordStore>>
  const policy = new TestPolicy()
  const blockstore = new MemoryBlockstore()
  const published: string[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-requester-'))
    records = recordStore()({ datastore: new MemoryDatastore() })
    policy.set({ trusted: workers.map(w => w.did), threshold: 2 })
    svc = requester({ dirs: { bundles: join(dir, 'bundles'), disputes: join(dir, 'disputes') }, now: () => T0 + 60_000, catchUpMs: 0 })(inMemoryComponents({
      policy,
      records,
      blockstore,
      publish: async (kind) => { published.push(kind); return { recipients: 0 } }
    }))
    await svc.start()
  })

  afterAll(async () => {
    await svc.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('an attestation the store announces is in the verdict the next view shows: no timer between them', async () => {
    const job = makeJob()
    const record = await svc.submit(job, { reuse: false })
    expect(record.status).toBe('pending')
    expect(published).toEqual(['job'])
    const artifact = (await addBytes(blockstore, new TextEncoder().encode('the artifact\n'))).toString()
    const changes: VerdictChange[] = []
    svc.addEventListener('verdict:changed', (e) => { changes.push(e.detail) })

    await records.putAttestation(attest(workers[0]!, { jobId: job.jobId, artifact }))
    expect((await svc.view(job.jobId)).record.status).toBe('provisional')
    await records.putAttestation(attest(workers[1]!, { jobId: job.jobId, artifact }))
    const view = await svc.view(job.jobId)
    expect(view.record.status).toBe('accepted')
    expect(view.verdict?.counted).toEqual([workers[0]!.did, workers[1]!.did].sort())
    expect(changes.map(c => c.status)).toEqual(['provisional', 'accepted'])
  })

  it('the bundle records the policy that accepted the job, and a later policy change does not rewrite it', async () => {
    // another build (another buildId): the first test's attestations are not this one's
    const def = { ...definition, command: ['sh', '-c', 'echo another > out/x'] }
    const job = makeJob({ def, replicas: 3 })
    await svc.submit(job, { reuse: false })
    const artifact = (await addBytes(blockstore, new TextEncoder().encode('another artifact\n'))).toString()
    const written = new Promise<string>((resolve) => {
      svc.addEventListener('bundle:written', (e) => { if (e.detail.jobId === job.jobId) resolve(e.detail.path) })
    })
    await records.putAttestation(attest(workers[0]!, { def, jobId: job.jobId, artifact }))
    await records.putAttestation(attest(workers[1]!, { def, jobId: job.jobId, artifact }))
    const path = await written
    // a copy: in-process, the view holds the live record
    const accepted = structuredClone(await svc.view(job.jobId))
    expect(accepted.record.policy).toEqual({ trusted: workers.map(w => w.did), threshold: 2 })

    // the policy changes after acceptance: a stricter one the job still meets
    policy.set({ trusted: workers.map(w => w.did), threshold: 1 })
    const after = await svc.view(job.jobId)
    expect(after.record.status, JSON.stringify(after.record)).toBe('accepted')
    // the record describes its last evaluation; the bundle, the one that accepted
    expect(after.record.policy?.threshold).toBe(1)
    const car = parseCar(new Uint8Array(await readFile(path)))
    const root = car.blocks.find(b => b.cid.equals(car.roots[0]!))
    const manifest = dagCbor.decode(root!.bytes) as { policy?: TrustPolicyInput }
    expect(manifest.policy).toEqual(accepted.record.policy)
  })
})
