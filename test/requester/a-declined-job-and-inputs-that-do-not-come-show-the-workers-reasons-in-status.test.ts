/**
 * Failures reach the requester (issue 18), through real processes: a trusted
 * worker that declines a job (it asks for 2 cpus, the volunteer allows 1),
 * one that cannot fetch a job's environment (its root block is held by
 * nobody), and one whose environment stops coming in the middle of the fetch
 * (the requester lost its files' blocks) each publish a signed release, and
 * `concur status` shows the worker, the kind and the reason while the job is
 * still pending: before, the requester said "pending: no attestation for
 * this build yet" until the job expired.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
import type { RequestView } from '../../node/api/types.ts'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { PackBlockstore } from '../../src/store/pack/index.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { viewUntil } from '../adversary/adversary.ts'
import { fakeTreeCid } from '../protocol/fixtures.ts'

describe('a declined job and inputs that do not come', () => {
  let net: Devnet
  let src = ''

  beforeAll(async () => {
    net = await startNetwork({ workers: [{ args: ['--cpus', '1', '--fetch-timeout', '5'] }], trust: [0], threshold: 1 })
    src = await tempDir('concur-release-src-')
    await writeFile(join(src, 'label'), `releases ${process.pid}\n`)
  })

  afterAll(async () => { await cleanupAll() })

  const submit = async (extra: Record<string, unknown>): Promise<string> =>
    (await api<{ jobId: string }>(net.requester.api, 'POST', '/v1/jobs', { source: src, command: ['sh', '-c', `mkdir out; cp label out/; echo ${Math.random()}`], output: 'out', replicas: 1, ttlSeconds: 600, reuse: false, ...extra })).jobId
  const releaseOf = async (jobId: string, kind: string): Promise<RequestView> =>
    await viewUntil(net.requester, jobId, v => (v.record.releases ?? []).some(n => n.kind === kind), `a ${kind} release of ${jobId}`)
  const status = async (jobId: string): Promise<string> => {
    const r = await runConcur(['status', jobId], { home: net.requester.home, json: false })
    return r.stdout
  }

  it('a job asking for more than the trusted worker allows: its decline and the reason, at once', async () => {
    const jobId = await submit({ resources: { cpus: 2 } })
    const view = await releaseOf(jobId, 'declined')
    expect(view.record.status).toBe('pending')
    expect(view.record.releases).toEqual([expect.objectContaining({ worker: net.workers[0]?.did, kind: 'declined', reason: 'asks for more than this volunteer allows: cpus 2 > 1', trusted: true })])
    const text = await status(jobId)
    expect(text).toMatch(/not building \(signed releases\):\n {2}\S+ +trusted +declined: asks for more than this volunteer allows: cpus 2 > 1/)
  })

  it('an environment nobody holds: the worker says it could not fetch it, within its probe bound', async () => {
    const rootfs = fakeTreeCid(`an environment nobody holds ${Math.random()}`)
    const jobId = await submit({ environment: rootfs })
    const view = await releaseOf(jobId, 'inputs-unavailable')
    const note = view.record.releases?.find(n => n.kind === 'inputs-unavailable')
    expect(note?.reason).toMatch(new RegExp(`^the rootfs ${rootfs} could not be fetched: no peer delivered its root block within \\d+ ms \\(try 1 of \\d+; trying again in \\d+ s\\)$`))
    expect(await status(jobId)).toContain(`inputs did not come: the rootfs ${rootfs} could not be fetched`)
  })

  it('an environment that stops coming mid-fetch: the claimed job is released with the fetch error', async () => {
    // an environment the requester adds, then loses every block of but the root
    const env = await tempDir('concur-release-env-')
    await mkdir(join(env, 'bin'))
    await writeFile(join(env, 'bin', 'tool'), `${'x'.repeat(300_000)}${Math.random()}`)
    const added = await api<{ cid: string }>(net.requester.api, 'POST', '/v1/content/add', { path: env })
    const mem = new MemoryBlockstore()
    const same = await addDirectory(mem, env)
    expect(same.cid.toString()).toBe(added.cid)
    // (the memory store gives its CIDs back as raw: compare digests)
    const rootDigest = Buffer.from(same.cid.multihash.digest).toString('hex')
    const lose = new Set<string>()
    for await (const { cid } of mem.getAll()) lose.add(Buffer.from(cid.multihash.digest).toString('hex'))
    lose.delete(rootDigest)
    expect(lose.size).toBeGreaterThan(0)
    // the requester stops, its store loses them, it starts again (one process at a time opens a store)
    await net.requester.proc.kill()
    const store = new PackBlockstore(join(net.requester.home, 'blockstore'))
    await store.open()
    let lost = 0
    for await (const { cid } of mem.getAll()) {
      if (!lose.has(Buffer.from(cid.multihash.digest).toString('hex'))) continue
      if (await store.has(cid)) { await store.delete(cid); lost++ }
    }
    await store.close()
    expect(lost).toBe(lose.size)
    const again = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: net.requester.home })
    const r = await again.ready
    net.requester = { proc: again, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home: net.requester.home }
    await waitFor(async () => (await api<{ subscribers: { jobs: string[] } }>(net.requester.api, 'GET', '/v1/peers')).subscribers.jobs.includes(net.workers[0]?.peerId as string), 'the worker on the jobs topic again')

    const jobId = await submit({ environment: added.cid })
    const view = await releaseOf(jobId, 'inputs-unavailable')
    const note = view.record.releases?.find(n => n.kind === 'inputs-unavailable')
    expect(note?.reason).toBe(`could not fetch the rootfs ${added.cid}: no peer delivered it within 5000 ms`)
    expect(await status(jobId)).toContain(`inputs did not come: could not fetch the rootfs ${added.cid}`)
  })
})
