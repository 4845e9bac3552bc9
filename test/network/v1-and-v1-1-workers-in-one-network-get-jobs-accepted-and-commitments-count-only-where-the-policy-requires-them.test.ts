/**
 * Protocol v1.1's commit-then-reveal (PROTOCOL.md §8.3) in a network with a
 * v1 worker. Two workers commit before they reveal (v1.1, the default); the
 * third runs with `--no-commit`, as a v1 worker does: it attests at once and
 * publishes no commitment. All real daemons on loopback.
 *
 * - A requester that does not require commitments accepts a job on all three
 *   keys: v1.1 attestations are v1 attestations byte for byte.
 * - `concur policy set --require-commitment on`: a job is accepted on the two
 *   v1.1 workers, and its bundle carries their commitments, which `concur
 *   verify` checks under the same policy.
 */
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagCbor from '@ipld/dag-cbor'
import { api, cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { setPolicy, submitJob, viewUntil } from '../adversary/adversary.ts'

type Events = { events: Array<{ event: { type: string, jobId?: string } }> }

describe('v1 and v1.1 workers in one network', () => {
  let net: Devnet
  /** the first job's bundle: accepted without commitments */
  let plainBundle: string
  const dids = (): string[] => net.workers.map(w => w.did)
  const committedOn = async (i: number, jobId: string): Promise<boolean> =>
    (await api<Events>(net.workers[i]!.api, 'GET', '/v1/events?after=0')).events.some(e => e.event.type === 'build:committed' && e.event.jobId === jobId)

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}, { args: ['--no-commit'] }], trust: [0, 1, 2], threshold: 3 })
  }, 120_000)

  afterAll(async () => { await cleanupAll() })

  it('a requester that does not require commitments counts v1 and v1.1 workers alike', async () => {
    const { jobId } = await submitJob(net.requester, { label: `compat-${process.pid}-1`, replicas: 3, script: 'mkdir -p out; cp label out/' })
    const v = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted' && v.record.bundle != null, 'accepted on three keys, with its bundle', 120_000)
    expect([...v.record.counted].sort()).toEqual([...dids()].sort())
    // a copy: the requester sets a bundle aside when a later policy no longer accepts its job
    plainBundle = join(await tempDir('concur-plain-bundle-'), 'plain.car')
    await copyFile(v.record.bundle!, plainBundle)
    // the v1.1 workers committed first; the v1 worker did not
    expect(await committedOn(0, jobId)).toBe(true)
    expect(await committedOn(1, jobId)).toBe(true)
    expect(await committedOn(2, jobId)).toBe(false)
  })

  it('with commitments required, a job is accepted on the v1.1 workers and its bundle carries their commitments for `concur verify`', async () => {
    // the v1 worker out of the policy: a worker that reveals at once makes
    // later commitments to the same CID late (§8.3: trust v1.1 workers only)
    await setPolicy(net.requester, dids().slice(0, 2), 2)
    const set = await runConcur(['policy', 'set', '--require-commitment', 'on'], { home: net.requester.home })
    expect(set.code).toBe(0)
    expect(set.json()).toMatchObject({ requireCommitment: true, threshold: 2 })
    const { jobId } = await submitJob(net.requester, { label: `compat-${process.pid}-2`, replicas: 2, script: 'mkdir -p out; cp label out/' })
    const v = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted' && v.record.bundle != null, 'accepted with its bundle', 120_000)
    expect([...v.record.counted].sort()).toEqual(dids().slice(0, 2).sort())
    expect(v.verdict?.candidates[0]?.uncommitted).toEqual([])

    // the bundle's manifest lists two commitments
    const car = await CarBlockIterator.fromBytes(await readFile(v.record.bundle!))
    const [root] = await car.getRoots()
    let manifest: { commitments?: unknown[] } | undefined
    for await (const block of car) if (block.cid.equals(root!)) manifest = dagCbor.decode(block.bytes)
    expect(manifest?.commitments).toHaveLength(2)
    const ok = await runConcur(['verify', v.record.bundle!], { home: net.requester.home, json: false })
    expect(ok.stdout).toMatch(/OK: bundle verified offline — accepted/)
    expect(ok.code).toBe(0)
    // the same check with the policy given on the command line; a bundle
    // without commitments does not pass it: the verifier counts no key it
    // cannot see commit
    const flags = ['--trusted', dids()[0]!, '--trusted', dids()[1]!, '--threshold', '2', '--require-commitment']
    expect((await runConcur(['verify', v.record.bundle!, ...flags], { home: net.requester.home, json: false })).code).toBe(0)
    const refused = await runConcur(['verify', plainBundle, ...flags], { home: net.requester.home, json: false })
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/without a commitment seen before that artifact was first revealed/)
  })
})
