/**
 * One operator, many keys (PROTOCOL.md §8.1, issue 16). The requester's
 * policy trusts three keys of operator "acme" (one honest worker that really
 * builds, and two keys the same operator holds that copy its CID without
 * building) and one key of operator "bob"; k = 2, minOperators = 2. The
 * three acme keys agreeing are one operator's word: the job stays
 * provisional, and the requester's record says why. Control: bob's key
 * attests the same CID and the job is accepted. Real daemons on loopback;
 * the policy goes through the API (`POST /v1/policy`) as `concur policy set`
 * sends it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../protocol/index.ts'
import type { SigningKey } from '../../protocol/index.ts'
import type { PolicyResponse } from '../../node/api/types.ts'
import { api, cleanupAll, runConcur } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { ATTESTATIONS_TOPIC, artifactOf, startAdversary, submitJob, viewUntil } from './adversary.ts'
import type { Adversary } from './adversary.ts'

describe('a policy requiring 2 operators', () => {
  let net: Devnet
  let adv: Adversary
  let acme: SigningKey[]
  let bob: SigningKey

  beforeAll(async () => {
    // no policy from startNetwork: this test sets its own, with operators
    net = await startNetwork({ workers: [{}], trust: [] })
    adv = await startAdversary(net.bootAddr)
    acme = [generateSigningKey(), generateSigningKey()]
    bob = generateSigningKey()
    const worker = net.workers[0]!.did
    const policy = {
      version: 1,
      trusted: [worker, ...acme.map(k => k.did), bob.did],
      threshold: 2,
      required: [],
      minTier: null,
      operators: { acme: [worker, ...acme.map(k => k.did)], bob: [bob.did] },
      minOperators: 2
    }
    // refused up front, like an unmeetable threshold: 3 operators of the 2 its keys have
    await expect(api<PolicyResponse>(net.requester.api, 'POST', '/v1/policy', { policy: { ...policy, threshold: 3, minOperators: 3 } }))
      .rejects.toThrow(/400 minOperators 3 exceeds the 2 distinct operator\(s\) of the trusted keys: it could never be met/)
    const r = await api<PolicyResponse>(net.requester.api, 'POST', '/v1/policy', { policy })
    expect(r.problem).toBeUndefined()
    expect(r.policy).toMatchObject({ operators: policy.operators, minOperators: 2 })
  }, 120_000)

  afterAll(async () => { await cleanupAll() })

  it('refuses 3 keys of one operator on one CID, with the reason; a key of a second operator makes it accepted', async () => {
    const { jobId } = await submitJob(net.requester, { label: `operators-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    const honest = (a: { claim: { worker: string } }): boolean => a.claim.worker === net.workers[0]!.did
    // acme's two other keys copy the CID its worker built: three keys, one operator
    for (const k of acme) await adv.publishRaw(ATTESTATIONS_TOPIC, (await adv.lazyCopy(job, k, honest)).bytes)
    const held = await viewUntil(net.requester, jobId, v => v.record.counted.length === 3, 'three acme keys counted on one CID')
    expect(held.record.status).toBe('provisional')
    const C = artifactOf(held.attestations.find(a => a.worker === net.workers[0]!.did)!)!
    expect(held.record.artifact).toBe(C)
    expect(held.verdict?.operators).toEqual({ spanned: ['acme'], min: 2 })
    expect(held.record.reasons.join('\n')).toMatch(/has 3 >= 2 trusted keys but they span 1 operator\(s\) \(acme\) and the policy requires 2 distinct operators/)
    expect(held.record.history.map(h => h.status)).not.toContain('accepted')
    // what a person reads: `concur status` says why it is not accepted
    const status = await runConcur(['status', jobId], { home: net.requester.home, json: false })
    expect(status.stdout).toMatch(/operators 1\/2: acme/)
    expect(status.stdout).toMatch(/they span 1 operator\(s\) \(acme\) and the policy requires 2 distinct operators/)

    // control: bob's key on the same CID
    await adv.publishRaw(ATTESTATIONS_TOPIC, adv.attest(job, { key: bob, artifact: C }).bytes)
    const done = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'accepted once a second operator agrees')
    expect(done.record.artifact).toBe(C)
    expect(done.verdict?.operators).toEqual({ spanned: ['acme', 'bob'], min: 2 })
    expect([...done.record.counted].sort()).toEqual([net.workers[0]!.did, ...acme.map(k => k.did), bob.did].sort())
  })
})
