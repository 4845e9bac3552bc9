/**
 * 2,000 attestations from 2,000 fresh keys, each ~45 KB: 500 of them on a
 * job the requester holds (wrong CIDs), 1,500 of builds nobody announced.
 * Sybil keys are free, so what a node keeps must be bounded by its own
 * configuration (src/store/limits.ts), not by the attacker's budget: the
 * requester keeps at most `maxUntrustedPerBuild` of the first kind and none
 * of the second, its memory does not grow with the flood, a restart reads
 * back only that much, and the honest job is accepted all the same. (Before
 * the limits, 1,500 such attestations took a node from 154 MB to 569 MB RSS,
 * and 527 MB after a restart.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClaim, createJobAnnouncement, generateSigningKey } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { api, cleanupAll, startConcur, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import type { EventsResponse, StatsResponse } from '../../node/api/types.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, artifactOf, startAdversary, submitJob, viewUntil, wrongCid } from './adversary.ts'
import type { Adversary } from './adversary.ts'

const ON_KNOWN = 500
const ON_UNKNOWN = 1500
const MiB = 1024 * 1024
/** the default cap of attestations per build from keys the node does not trust (src/store/limits.ts) */
const MAX_UNTRUSTED_PER_BUILD = 32

const stats = async (n: Node): Promise<StatsResponse> => await api<StatsResponse>(n.api, 'GET', '/v1/stats')
const handled = (s: StatsResponse): number => s.gossip.accepted + s.gossip.ignored + s.gossip.rejected

/** a job of the attacker's own for a build nobody asked for, with a ~45 KB definition (so ~60 KB attestations) */
function bigJob (adv: Adversary, i: number): SignedJob {
  const env: Record<string, string> = { SOURCE_DATE_EPOCH: '1700000000' }
  for (let v = 0; v < 11; v++) env[`PAD_${v}`] = `${i}-${v}-`.padEnd(4000, 'x')
  const t = Date.now()
  return createJobAnnouncement({
    definition: { version: 1, source: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', environment: { kind: 'host', platform: 'linux/amd64' }, command: ['true'], env, output: 'out' },
    requester: adv.key.did,
    replicas: 1,
    resources: { memoryBytes: 2 ** 28, cpus: 1, diskBytes: 2 ** 27, wallSeconds: 60, processes: 64 },
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + 600_000).toISOString()
  }, adv.key)
}

describe('an attestation flood from 2,000 fresh keys', () => {
  let net: Devnet
  let adv: Adversary

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
    adv = await startAdversary(net.bootAddr)
  })

  afterAll(async () => {
    for (const n of [net.requester, adv.node]) if (n.proc.child.exitCode != null) console.log(n.proc.stderr().slice(-3000))
    await cleanupAll()
  })

  it('the requester keeps at most its caps, its memory stays flat, a restart reads back no more, and the honest job is accepted', async () => {
    const { jobId, buildId } = await submitJob(net.requester, { label: `flood-${process.pid}`, replicas: 1, script: 'sleep 2; mkdir out; cp label out/' })
    const job = await adv.heardJob(jobId)
    const flood = [
      ...Array.from({ length: ON_KNOWN }, () => adv.attest(job, { key: generateSigningKey(), artifact: wrongCid('flood') })),
      ...Array.from({ length: ON_UNKNOWN }, (_, i) => { const j = bigJob(adv, i); return adv.attest(j, { key: generateSigningKey() }) })
    ]
    const unknownBuilds = flood.slice(ON_KNOWN, ON_KNOWN + 5).map(a => a.claim.buildId)
    expect(Math.min(...flood.slice(ON_KNOWN).map(a => a.bytes.byteLength))).toBeGreaterThan(40_000)
    // signing took the event loop for seconds: let the HTTP client see the
    // keep-alive sockets the daemons closed meanwhile before it reuses one
    for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
    // claims on jobs nobody announced are not kept (nor relayed): IGNOREd as unknown
    const invented = Array.from({ length: 20 }, (_, i) => bigJob(adv, 100_000 + i))
    for (const j of invented) {
      const k = generateSigningKey()
      const t = Date.now()
      const c = createClaim({ jobId: j.jobId, buildId: j.job.buildId, worker: k.did, workerPeerId: adv.node.peerId, issuedAt: new Date(t).toISOString(), leaseUntil: new Date(t + 30_000).toISOString(), seq: 1 }, k)
      await adv.publishRaw(CLAIMS_TOPIC, c.bytes)
    }
    await waitFor(async () => (await stats(net.requester)).gossip.lastIgnored.filter(e => e.code === 'ERR_UNKNOWN_JOB' && e.from === adv.node.peerId).length >= 20, 'the requester ignoring 20 claims on unknown jobs')
    const feed = await api<EventsResponse>(net.requester.api, 'GET', '/v1/events?after=0')
    expect(feed.events.filter(e => e.event.type === 'claim' && invented.some(j => j.jobId === (e.event as { jobId?: string }).jobId))).toEqual([])

    const before = await stats(net.requester)
    const startedAt = Date.now()
    let peakRss = before.memory.rss
    for (let i = 0; i < flood.length; i++) {
      await adv.publishRaw(ATTESTATIONS_TOPIC, flood[i]!.bytes)
      if (i % 200 === 0) peakRss = Math.max(peakRss, (await stats(net.requester)).memory.rss)
    }
    // every message of the flood reached the requester and was dealt with (kept, IGNOREd or refused unread)
    const after = await waitFor(async () => {
      const s = await stats(net.requester)
      peakRss = Math.max(peakRss, s.memory.rss)
      return handled(s) - handled(before) >= flood.length && s
    }, 'the requester handling all 2,000 messages', 120_000)

    const onKnown = (await api<{ attestations: unknown[] }>(net.requester.api, 'GET', `/v1/attestations?buildId=${buildId}`)).attestations.length
    const onUnknown = await Promise.all(unknownBuilds.map(async b => (await api<{ attestations: unknown[] }>(net.requester.api, 'GET', `/v1/attestations?buildId=${b}`)).attestations.length))
    const growth = peakRss - before.memory.rss
    console.log(`flood: ${flood.length} messages; requester kept ${onKnown} on the held build, ${onUnknown.join('+')} on 5 sampled unknown builds;`,
      `RSS ${Math.round(before.memory.rss / MiB)} -> peak ${Math.round(peakRss / MiB)} MiB; store ${JSON.stringify(after.store)}; rate-limited ${after.gossip.rateLimited}`)
    // the sender's budget of useless messages (200, then 20 per second): attestations of
    // builds nobody announced are charged, the rest not even verified. Those refused at
    // the per-build cap are not charged (a cap says nothing of the relay), so all 500
    // on the held build may be verified
    const verified = after.gossip.verified - before.gossip.verified
    const budget = 200 + 20 * Math.ceil((Date.now() - startedAt) / 1000)
    expect(after.gossip.rateLimited, 'messages IGNOREd unread').toBeGreaterThan(0)
    expect(verified, `${verified} signatures checked for a budget of ${budget} useless ones (plus the ${ON_KNOWN} on the held build, and honest traffic)`).toBeLessThanOrEqual(budget + ON_KNOWN + 50)
    expect(onUnknown.every(n => n === 0), 'attestations of builds nobody announced were kept').toBe(true)
    expect(onKnown, 'attestations from untrusted keys on the held build').toBeLessThanOrEqual(MAX_UNTRUSTED_PER_BUILD + 1)
    // ~90 MB of attestations went by: memory grows with the caps, not with them
    expect(growth, `RSS grew by ${Math.round(growth / MiB)} MiB`).toBeLessThan(150 * MiB)

    const done = await viewUntil(net.requester, jobId, v => v.record.status === 'accepted', 'the honest job accepted')
    expect(done.record.artifact).toBe(artifactOf(done.attestations.find(a => a.trusted)!))

    // a restart reads back what was kept, and no more
    await net.requester.proc.kill('SIGTERM')
    const proc = startConcur(['daemon', '--bootstrap', net.bootAddr], { home: net.requester.home })
    const r = await proc.ready
    const again: Node = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home: net.requester.home }
    const restarted = await stats(again)
    console.log(`after a restart: RSS ${Math.round(restarted.memory.rss / MiB)} MiB; store ${JSON.stringify(restarted.store)}`)
    expect(restarted.store?.attestations).toBeLessThanOrEqual(MAX_UNTRUSTED_PER_BUILD + 1)
    expect(restarted.memory.rss - before.memory.rss).toBeLessThan(64 * MiB)
    const view = await viewUntil(again, jobId, v => v.record.status === 'accepted', 'the accepted job after the restart')
    expect(view.attestations.length).toBeLessThanOrEqual(MAX_UNTRUSTED_PER_BUILD + 1)
  })
})
