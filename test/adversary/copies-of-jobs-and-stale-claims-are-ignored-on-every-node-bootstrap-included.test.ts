/**
 * PROTOCOL.md §6: what a node already holds is IGNOREd, not relayed again.
 * Two gaps it closes: a bootstrap node (no record store) accepted and relayed
 * every re-wrapped copy of a job (same object, other bytes, so a new gossip
 * id); and no node applied the claims' seq rule at gossip, so a worker's
 * older claim, replayed, was relayed network-wide.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClaim } from '../../protocol/index.ts'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { definition, makeJob } from '../protocol/fixtures.ts'
import { CLAIMS_TOPIC, JOBS_TOPIC, gossipStats, startAdversary } from './adversary.ts'
import type { Adversary } from './adversary.ts'

describe('copies and stale claims', () => {
  let net: Devnet
  let adv: Adversary

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
    adv = await startAdversary(net.bootAddr)
  })

  afterAll(async () => { await cleanupAll() })

  const publish = async (topic: string, bytes: Uint8Array): Promise<void> => {
    await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic, data: Buffer.from(bytes).toString('base64') })
  }
  /** `node` IGNOREd a message from the adversary on `topic` as already held */
  const ignoredFromAdversary = async (node: Node, topic: string, since: number): Promise<boolean> =>
    (await gossipStats(node)).lastIgnored.some(e => e.topic === topic && e.code === 'ERR_DUPLICATE' && e.from === adv.node.peerId && (e as { at?: number }).at! >= since)
  const linked = async (node: Node): Promise<boolean> =>
    (await api<{ peers: Array<{ peerId: string }> }>(node.api, 'GET', '/v1/peers')).peers.some(p => p.peerId === adv.node.peerId)

  it('a re-wrapped copy of a job is IGNOREd by the bootstrap node and by the nodes that store it', async () => {
    const now = Date.now()
    const job = makeJob({ key: adv.key, def: { ...definition, command: ['sh', '-c', `echo copies-${process.pid}`] }, createdAt: now, expiresAt: now + 3_600_000, replicas: 1 })
    await publish(JOBS_TOPIC, job.bytes)
    await waitFor(async () => await api(net.requester.api, 'GET', `/v1/jobs/${job.jobId}`).then(() => true, () => false), 'the job reaching the requester')
    const since = Date.now()
    await publish(JOBS_TOPIC, adv.rewrap(job, 'copy'))
    const nodes = [net.bootstrap, net.requester, ...net.workers]
    const direct = (await Promise.all(nodes.map(async n => await linked(n) ? n : null))).filter((n): n is Node => n != null)
    expect(direct).toContain(net.bootstrap)
    await waitFor(async () => (await Promise.all(direct.map(async n => await ignoredFromAdversary(n, JOBS_TOPIC, since)))).every(Boolean),
      'every node linked to the adversary ignoring the copy', 20_000)
  })

  it('a worker\'s older claim replayed after its newer one is IGNOREd everywhere, and never reaches the feed', async () => {
    const now = Date.now()
    const job = makeJob({ key: adv.key, def: { ...definition, command: ['sh', '-c', `echo claims-${process.pid}`] }, createdAt: now, expiresAt: now + 3_600_000, replicas: 1 })
    const claim = (seq: number): Uint8Array => createClaim({
      jobId: job.jobId, buildId: job.job.buildId, worker: adv.key.did, workerPeerId: adv.node.peerId,
      issuedAt: new Date(now).toISOString(), leaseUntil: new Date(now + 60_000).toISOString(), seq
    }, adv.key).bytes
    await publish(JOBS_TOPIC, job.bytes)
    await publish(CLAIMS_TOPIC, claim(2))
    type Ev = { event: { type: string, jobId?: string, worker?: string, seq?: number } }
    const claimsSeen = async (): Promise<Ev[]> => (await api<{ events: Ev[] }>(net.requester.api, 'GET', `/v1/events?after=0&jobId=${job.jobId}`)).events
      .filter(e => e.event.type === 'claim' && e.event.worker === adv.key.did)
    await waitFor(async () => (await claimsSeen()).some(e => e.event.seq === 2), 'the newer claim reaching the requester')
    const since = Date.now()
    await publish(CLAIMS_TOPIC, claim(1))
    const nodes = [net.bootstrap, net.requester, ...net.workers]
    const direct = (await Promise.all(nodes.map(async n => await linked(n) ? n : null))).filter((n): n is Node => n != null)
    await waitFor(async () => (await Promise.all(direct.map(async n => await ignoredFromAdversary(n, CLAIMS_TOPIC, since)))).every(Boolean),
      'every node linked to the adversary ignoring the older claim', 20_000)
    expect((await claimsSeen()).map(e => e.event.seq)).toEqual([2])
  })
})
