/**
 * Liveness attack (issue 13, item 2): claims are advisory and anyone may sign
 * one. Workers counted a replica slot for every key: one that claimed held it
 * while its lease ran, and for good once it had attested. So 100 throw-away
 * keys that each claimed a job with a 2 s lease and then attested it (four
 * messages would do for `replicas` 2) left the job with no slot for an honest
 * worker until it expired, never renewing anything; and a few keys re-claiming
 * every few seconds (a higher seq, a live lease) did the same. Nothing wrong
 * was accepted, but the job was never built.
 *
 * Defence: a job names its builders (the requester's trusted keys,
 * PROTOCOL.md §5.1), and a claim from any other key takes no slot, live or
 * attested (protocol's takenSlots, §7 rule 3; the worker counts with it).
 * Made deterministic like replica-slots-are-not-taken-by-bogus-attestations:
 * both workers are busy with a first job (max-concurrent 1) while the target
 * job is announced and the squatters strike, and the test checks that no
 * honest claim on the target came before the squatters' claims reached both
 * workers.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createClaim, generateSigningKey } from '../../protocol/index.ts'
import type { SignedJob, SigningKey } from '../../protocol/index.ts'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Node } from '../helpers/network.ts'
import type { EventsResponse, SequencedEvent } from '../../node/api/types.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, allAlive, startAdversary, submitJob, viewUntil, wrongCid } from './adversary.ts'
import type { Adversary } from './adversary.ts'

/** throw-away keys that claim with a short lease, then attest, then never sign again */
const SQUATTERS = 100
const SQUATTER_LEASE_MS = 2_000
/** keys that keep a live lease on the job by re-claiming with a higher seq */
const RENEWERS = 4
const RENEW_EVERY_MS = 3_000
const RENEWER_LEASE_MS = 10_000
/** bound on the renewing loop: it also stops when the test is done */
const MAX_RENEWALS = 40
/** messages published at once through the adversary's daemon */
const BATCH = 10

const iso = (ms: number): string => new Date(ms).toISOString()

async function claimEvents (node: Node, jobId: string): Promise<SequencedEvent[]> {
  const r = await api<EventsResponse>(node.api, 'GET', `/v1/events?after=0&jobId=${encodeURIComponent(jobId)}`)
  return r.events.filter(e => e.event.type === 'claim')
}

const claimers = (events: SequencedEvent[]): Set<string> => new Set(events.map(e => e.event.type === 'claim' ? e.event.worker : ''))

async function inBatches<T> (items: T[], publish: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(publish))
}

/** claims on `job` by `keys`, each with a fresh lease, re-sent every RENEW_EVERY_MS until stopped or MAX_RENEWALS */
function renewLeases (adv: Adversary, job: SignedJob, keys: SigningKey[]): { stop: () => Promise<number> } {
  let stopped = false
  let wake: () => void = () => {}
  let rounds = 0
  const loop = (async () => {
    while (!stopped && rounds < MAX_RENEWALS) {
      rounds++
      const t = Date.now()
      await Promise.all(keys.map(async k => await adv.publishRaw(CLAIMS_TOPIC, createClaim({
        jobId: job.jobId, buildId: job.job.buildId, worker: k.did, workerPeerId: adv.node.peerId, issuedAt: iso(t), leaseUntil: iso(t + RENEWER_LEASE_MS), seq: rounds
      }, k).bytes)))
      // a squatter's cadence is its own clock: nothing to wait for but time
      await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, RENEW_EVERY_MS) })
    }
  })()
  return {
    async stop () {
      stopped = true
      wake()
      await loop
      return rounds
    }
  }
}

describe('replica slots', () => {
  afterAll(async () => { await cleanupAll() })

  it(`a job naming its builders is built and accepted while ${SQUATTERS} fresh keys claim-then-attest it and ${RENEWERS} keep renewing leases on it`, async () => {
    const net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 })
    const adv = await startAdversary(net.bootAddr)
    const honest = net.workers.map(w => w.did)

    // both workers busy with a first job (replicas 2: each takes one slot)
    const first = await submitJob(net.requester, { label: `busy-${process.pid}`, replicas: 2, script: 'sleep 8; mkdir out; cp label out/' })
    await waitFor(async () => {
      const on = await claimEvents(net.requester, first.jobId).then(claimers)
      return honest.every(d => on.has(d))
    }, 'both workers on the first job')

    const { jobId } = await submitJob(net.requester, { label: `target-${process.pid}`, replicas: 2, script: 'mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    // the requester named its trusted keys as the job's builders
    expect(job.job.builders).toEqual([...honest].sort())

    // 100 throw-away keys: a claim with a short lease each, then an attestation each
    const squatters = Array.from({ length: SQUATTERS }, () => generateSigningKey())
    await inBatches(squatters, async k => {
      const t = Date.now()
      return await adv.publishRaw(CLAIMS_TOPIC, createClaim({
        jobId, buildId: job.job.buildId, worker: k.did, workerPeerId: adv.node.peerId, issuedAt: iso(t), leaseUntil: iso(t + SQUATTER_LEASE_MS), seq: 1
      }, k).bytes)
    })
    await inBatches(squatters, async k => await adv.publishRaw(ATTESTATIONS_TOPIC, adv.attest(job, { key: k, artifact: wrongCid('squatter') }).bytes))
    // and keys that keep their leases live for as long as the test runs
    const renewers = Array.from({ length: RENEWERS }, () => generateSigningKey())
    const renewing = renewLeases(adv, job, renewers)
    try {
      // the attack reached both workers before either was free to claim the target
      for (const w of net.workers) {
        await waitFor(async () => (await claimEvents(w, jobId).then(claimers)).size >= SQUATTERS + RENEWERS, `worker ${w.did.slice(-8)} holding every squatter's claim`, 30_000)
      }
      const early = [...await claimEvents(net.requester, jobId).then(claimers)].filter(d => honest.includes(d))
      expect(early, 'an honest worker claimed the target before the squatters struck: the busy job ended too soon').toEqual([])

      // the first job finishes; the workers are free again and rescan every 2 s
      await viewUntil(net.requester, first.jobId, v => v.record.status === 'accepted', 'the first job accepted')
      const v = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'the target job built by its named builders and accepted', 30_000)
      expect([...v.record.counted].sort()).toEqual([...honest].sort())

      // the honest workers claimed while every renewer still held a live lease
      const events = await claimEvents(net.requester, jobId)
      const claimedAt = Math.min(...events.filter(e => e.event.type === 'claim' && honest.includes(e.event.worker)).map(e => Date.parse(e.at)))
      for (const r of renewers) {
        const live = events.some(e => e.event.type === 'claim' && e.event.worker === r.did && Date.parse(e.at) <= claimedAt && Date.parse(e.event.leaseUntil) > claimedAt)
        expect(live, `renewer ${r.did.slice(-8)} holding a live lease when the honest workers claimed`).toBe(true)
      }
    } finally {
      await renewing.stop()
    }
    expect(await allAlive([net.requester, ...net.workers])).toBe(true)
  }, 120_000)
})
