/**
 * One peer floods 6,000 invalid messages (PROTOCOL.md §6: a REJECT scores its
 * sender down). Every honest node connected to it scores it below the
 * graylist threshold (-80), after which everything it sends is dropped
 * unread: its next message, a perfectly valid job announcement, is stored and
 * relayed by no one. Before the flood, the same peer's valid announcement
 * reaches everyone (the control).
 *
 * gossipsub alone failed this about 1 run in 2: it lets a peer it last scored
 * at 0 through for up to 128 RPCs or 1 s, so the valid message sent just
 * after the flood reached the validator; the validators now drop the message
 * of a graylisted sender themselves (src/net/score.ts isGraylisted).
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SignedJob } from '../../protocol/index.ts'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { definition, makeJob } from '../protocol/fixtures.ts'
import { JOBS_TOPIC, gossipStats, startAdversary, submitJob } from './adversary.ts'
import type { Adversary } from './adversary.ts'

const GRAYLIST = -80

describe('a peer sending 6,000 invalid messages', () => {
  let net: Devnet
  let adv: Adversary
  let n = 0

  /** a valid job signed by the adversary's own key (fresh, so it is a new message) */
  const advJob = (): SignedJob => makeJob({
    key: adv.key,
    def: { ...definition, command: ['sh', '-c', `echo flood-${process.pid}-${n++}`] },
    createdAt: Date.now(),
    expiresAt: Date.now() + 3_600_000
  })
  const holds = async (node: Node, jobId: string): Promise<boolean> =>
    await api(node.api, 'GET', `/v1/jobs/${jobId}`).then(() => true, () => false)
  const peersOf = async (node: Node): Promise<Array<{ peerId: string, score: number }>> =>
    (await api<{ peers: Array<{ peerId: string, score: number }> }>(node.api, 'GET', '/v1/peers')).peers

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
    adv = await startAdversary(net.bootAddr)
  })

  afterAll(async () => { await cleanupAll() })

  it('is graylisted by the honest nodes it reaches, and its next valid message is relayed by none', async () => {
    const stores = [net.requester, ...net.workers]
    const honest = [net.bootstrap, ...stores]
    // the flooder is linked to every honest node before it floods (peer
    // exchange links it to the workers and the requester after it joins the
    // bootstrap): a node it linked to only after the flood would have no
    // reason to distrust it, would take its next job and relay it to the rest
    // legitimately (seen in CI), which is not what this test is about
    await waitFor(async () => (await Promise.all(honest.map(async n => (await peersOf(n)).some(p => p.peerId === adv.node.peerId)))).every(Boolean),
      'the flooder being linked to every honest node')

    // control: before the flood its valid announcement reaches every node that stores jobs
    const before = advJob()
    await waitFor(async () => {
      await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(before.bytes).toString('base64') }).catch(() => {})
      return (await Promise.all(stores.map(async s => await holds(s, before.jobId)))).every(Boolean)
    }, 'the control announcement reaching every node')

    const rejectedBefore = await Promise.all(honest.map(gossipStats))
    const flood = await api<{ published: number }>(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: randomBytes(48).toString('base64'), repeat: 6000 })
    expect(flood.published).toBe(6000)
    // the flood has been dealt with by every honest node (each is linked to
    // the flooder): each rejected some of it (the rest is dropped unread past
    // the per-peer budget) and has graylisted its sender
    const reached = await waitFor(async () => {
      const out: Array<{ node: Node, score: number }> = []
      for (const [i, node] of honest.entries()) {
        const link = (await peersOf(node)).find(p => p.peerId === adv.node.peerId)
        const rejected = (await gossipStats(node)).rejected - (rejectedBefore[i]?.rejected ?? 0)
        if (link == null || rejected === 0 || link.score >= GRAYLIST) return null
        out.push({ node, score: link.score })
      }
      return out
    }, 'every honest node rejecting some of the flood and graylisting the flooder')

    // its next message is valid, and nobody takes it
    const after = advJob()
    await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(after.bytes).toString('base64') })
    // a barrier: an honest job announced after it has reached every node
    const { jobId } = await submitJob(net.requester, { label: `after-flood-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    await waitFor(async () => (await Promise.all(stores.map(async s => await holds(s, jobId)))).every(Boolean), 'the honest job reaching every node')
    const dealt = new Set(reached.map(r => r.node.did))
    for (const s of stores) {
      expect(dealt.has(s.did), `${s.did.slice(-8)} was linked to the flooder during the flood but did not reject any of it`).toBe(true)
      expect(await holds(s, after.jobId), `${s.did.slice(-8)} holds the flooder's next job`).toBe(false)
    }
    // because each of them scored the flooder below the graylist threshold
    expect(reached.map(r => r.score).every(s => s < GRAYLIST), `scores of the flooder: ${reached.map(r => r.score.toFixed(0)).join(', ')}`).toBe(true)
  })

  it('a burst of 20 invalid messages and a valid one at once, within a second: the valid one is relayed by none', async () => {
    // gossipsub's score is cached for a heartbeat (1 s): read alone, it still
    // said 0 when the valid message came; concur's own count of its REJECTs does not wait
    const stores = [net.requester, ...net.workers]
    const honest = [net.bootstrap, ...stores]
    const burst = await startAdversary(net.bootAddr)
    await waitFor(async () => (await Promise.all(honest.map(async n => (await peersOf(n)).some(p => p.peerId === burst.node.peerId)))).every(Boolean),
      'the second flooder being linked to every honest node')
    const saved = adv
    adv = burst
    const control = advJob()
    await waitFor(async () => {
      await api(burst.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(control.bytes).toString('base64') }).catch(() => {})
      return (await Promise.all(stores.map(async s => await holds(s, control.jobId)))).every(Boolean)
    }, 'its control announcement reaching every node')
    const after = advJob()
    adv = saved
    await api(burst.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: randomBytes(48).toString('base64'), repeat: 20 })
    await api(burst.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(after.bytes).toString('base64') })
    const { jobId } = await submitJob(net.requester, { label: `after-burst-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    await waitFor(async () => (await Promise.all(stores.map(async s => await holds(s, jobId)))).every(Boolean), 'the honest job reaching every node')
    for (const s of stores) expect(await holds(s, after.jobId), `${s.did.slice(-8)} holds the valid job sent right after the burst`).toBe(false)
  })
})
