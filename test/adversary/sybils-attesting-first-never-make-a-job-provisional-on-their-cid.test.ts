/**
 * 50 sybil keys attest a wrong CID before any honest worker has finished:
 * the requester's job is never `provisional` on their CID. Untrusted
 * attestations are shown, never chosen (PROTOCOL.md §8): anyone consuming
 * provisional results would otherwise have taken the attacker's bytes until
 * the first trusted attestation arrived.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupAll } from '../helpers/processes.ts'
import { DEFAULT_STORE_LIMITS } from '../../src/store/limits.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { ATTESTATIONS_TOPIC, artifactOf, requestView, startAdversary, submitJob, viewUntil, wrongCid } from './adversary.ts'
import type { Adversary } from './adversary.ts'

describe('sybils attesting first', () => {
  let net: Devnet
  let adv: Adversary

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 })
    adv = await startAdversary(net.bootAddr)
  })

  afterAll(async () => { await cleanupAll() })

  it('50 fresh keys attesting a wrong CID before the honest builds end: never provisional on it, then accepted on the honest CID', async () => {
    // the honest builds take a while: the sybils are all in long before them
    const { jobId } = await submitJob(net.requester, { label: `sybils-first-${process.pid}`, replicas: 2, script: 'sleep 4; mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    const X = wrongCid('sybils-first')
    for (const s of adv.sybils(job, X, 50)) await adv.publishRaw(ATTESTATIONS_TOPIC, s.bytes)
    // stored and shown up to the store's cap for untrusted keys per build, and the view's verdict covers them
    const cap = DEFAULT_STORE_LIMITS.maxUntrustedPerBuild
    const seen = await viewUntil(net.requester, jobId, v => v.attestations.filter(a => artifactOf(a) === X).length === cap, 'the sybil attestations stored, up to the cap')
    expect(seen.attestations.filter(a => a.trusted)).toEqual([])
    expect(seen.record.status).toBe('pending')
    expect(seen.record.artifact).toBeUndefined()
    expect(seen.verdict?.artifact).toBeUndefined()
    expect(seen.verdict?.candidates.find(c => c.artifact === X)?.untrusted).toHaveLength(cap)

    const done = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'the honest verdict')
    expect(done.record.artifact).not.toBe(X)
    // at no point did the record name the sybils' CID
    expect(done.record.history.filter(h => h.artifact === X)).toEqual([])
    expect(done.record.history.map(h => h.status)).not.toContain('expired')
    const final = await requestView(net.requester, jobId)
    expect(final.verdict?.counted.sort()).toEqual(net.workers.map(w => w.did).sort())
  })
})
