/**
 * One peer floods 6,000 invalid messages (PROTOCOL.md §6: a REJECT scores its
 * sender down). Every honest node connected to it scores it below the
 * graylist threshold (-80), after which everything it sends is dropped
 * unread: its next message, a perfectly valid job announcement, is stored and
 * relayed by no one. Before the flood, the same peer's valid announcement
 * reaches everyone (the control).
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
    // control: before the flood its valid announcement reaches every node that stores jobs
    const before = advJob()
    await waitFor(async () => {
      await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(before.bytes).toString('base64') }).catch(() => {})
      return (await Promise.all(stores.map(async s => await holds(s, before.jobId)))).every(Boolean)
    }, 'the control announcement reaching every node')

    const rejectedBefore = await Promise.all(honest.map(gossipStats))
    const flood = await api<{ published: number }>(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: randomBytes(48).toString('base64'), repeat: 6000 })
    expect(flood.published).toBe(6000)
    // the flood has been dealt with by each honest node it reached: every
    // honest node scores, so each one that rejected some of it (the rest is
    // dropped unread past the per-peer budget) has graylisted its sender. A
    // node the flooder links to only after the flood saw none of it (score 0)
    const reached = await waitFor(async () => {
      const out: Array<{ node: Node, score: number }> = []
      for (const [i, node] of honest.entries()) {
        const link = (await peersOf(node)).find(p => p.peerId === adv.node.peerId)
        if (link == null) continue
        const rejected = (await gossipStats(node)).rejected - (rejectedBefore[i]?.rejected ?? 0)
        if (rejected === 0) continue
        if (link.score >= GRAYLIST) return null
        out.push({ node, score: link.score })
      }
      return out.length > 0 ? out : null
    }, 'each honest node that the flood reached graylisting the flooder')

    // its next message is valid, and nobody takes it
    const after = advJob()
    await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: JOBS_TOPIC, data: Buffer.from(after.bytes).toString('base64') })
    // a barrier: an honest job announced after it has reached every node
    const { jobId } = await submitJob(net.requester, { label: `after-flood-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    await waitFor(async () => (await Promise.all(stores.map(async s => await holds(s, jobId)))).every(Boolean), 'the honest job reaching every node')
    const dealt = new Set(reached.map(r => r.node.did))
    for (const s of stores) {
      const held = await holds(s, after.jobId)
      if (dealt.has(s.did)) {
        expect(held, `${s.did.slice(-8)} holds the flooder's next job`).toBe(false)
      } else if (held) {
        // a node the flooder was not linked to during the flood has no reason
        // to distrust it: it may take the job straight from the flooder over a
        // link made since (peer exchange), but never relayed by a node that
        // graylisted it (seen once in CI: the worker linked after the flood)
        const linked = (await peersOf(s)).some(p => p.peerId === adv.node.peerId)
        expect(linked, `${s.did.slice(-8)} holds the flooder's next job with no link to the flooder: it was relayed`).toBe(true)
      }
    }
    // because each of them scored the flooder below the graylist threshold
    expect(reached.map(r => r.score).every(s => s < GRAYLIST), `scores of the flooder: ${reached.map(r => r.score.toFixed(0)).join(', ')}`).toBe(true)
  })
})
