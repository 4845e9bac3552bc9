/**
 * Announcement delivery to N nodes, concur vs bare gossipsub, all N nodes in
 * ONE process (one clock for publish and receipt; N separate processes of
 * ~150 MB each do not fit the 50-node row on a 2-core machine).
 *
 * Topology (identical for every variant, from a seeded generator): node i
 * dials two distinct earlier nodes picked uniformly (average degree ~4, a
 * random tree plus one extra edge per node, so it is connected; its diameter
 * grows like log N). Node 0 publishes. The gossipsub options are concur's
 * (StrictNoSign, sha256 message ids, D=6, Dlo=2, Dhi=12, Dout=1).
 *
 * Variants:
 * - `bare`: libp2p (tcp/noise/yamux/identify) + gossipsub, no validator;
 * - `validated`: the same bare nodes with concur's topic validator
 *   (createMessageValidator: decode + schema + buildId + ed25519 verify),
 *   which isolates the cost of verifying on every node;
 * - `concur`: full concur peers (createConcurPeer: helia/bitswap, ping, the
 *   three concur topics, the decoded-message hand-over), discovery off.
 *
 * In one process every node's validation runs on the same thread, so the
 * verification cost of all N nodes adds up on the critical path; across
 * processes only the cost along one path (hops × one verification) would.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import type { Libp2p } from '@libp2p/interface'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { messageId } from '../../src/net/gossip.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import { JOBS_TOPIC } from '../../src/net/topics.ts'
import { signedJob } from '../helpers/fixtures.ts'
import { spread } from './stats.ts'
import type { Spread } from './stats.ts'

/** Deterministic edge list: node i → two distinct earlier nodes (mulberry32 PRNG). */
export function topology (nodes: number, seed = 0x5eed): Array<[number, number]> {
  let a = seed >>> 0
  const rand = (): number => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const edges: Array<[number, number]> = []
  for (let i = 1; i < nodes; i++) {
    const picks = new Set<number>()
    while (picks.size < Math.min(2, i)) picks.add(Math.floor(rand() * i))
    for (const j of picks) edges.push([i, j])
  }
  return edges
}

async function connect (nodes: Libp2p[], edges: Array<[number, number]>): Promise<void> {
  for (const [i, j] of edges) {
    // a dial can be reset while the other side is busy: retry a few times (bounded)
    for (let attempt = 0; attempt < 5; attempt++) {
      try { await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!); break } catch { await new Promise(resolve => setTimeout(resolve, 200)) }
    }
  }
  // let subscriptions propagate and the meshes form (a few heartbeats)
  await new Promise(resolve => setTimeout(resolve, 4000))
}

async function measure (publish: (i: number) => Promise<void>, waitAll: (i: number) => Promise<void>, runs: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const t = performance.now()
    const done = waitAll(i)
    await publish(i)
    await done
    if (i > 0) out.push(performance.now() - t) // run 0 is the warm-up
    // let heartbeats and IHAVE/IWANT of this run settle before the next
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return out
}

function waiter (count: number): { arrive: (run: number) => void, all: (run: number) => Promise<void> } {
  const seen = new Map<number, number>()
  const resolvers = new Map<number, () => void>()
  return {
    arrive (run) {
      const n = (seen.get(run) ?? 0) + 1
      seen.set(run, n)
      if (n >= count) resolvers.get(run)?.()
    },
    async all (run) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>(resolve => { resolvers.set(run, resolve); if ((seen.get(run) ?? 0) >= count) resolve() }),
        new Promise<void>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`only ${seen.get(run) ?? 0} of ${count} nodes received run ${run}`)) }, 20_000) })
      ]).finally(() => { clearTimeout(timer) })
    }
  }
}

// the same gossipsub options as concur's peers (src/net/peer.ts), loopback exempt from the IP-colocation penalty included
const GOSSIP_OPTIONS = { globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, D: 6, Dlo: 2, Dhi: 12, Dout: 1, scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) } } as const

async function bareRun (nodes: number, runs: number, edges: Array<[number, number]>, validated: boolean): Promise<number[]> {
  const bare: Array<Libp2p<{ pubsub: GossipSub }>> = []
  try {
    for (let i = 0; i < nodes; i++) {
      bare.push(await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify(), pubsub: gossipsub({ ...GOSSIP_OPTIONS, msgIdFn: (m) => messageId(m.data) }) }
      }))
    }
    const w = waiter(nodes - 1)
    // jobs are real signed announcements in both variants (same bytes on the wire)
    const jobs = Array.from({ length: runs + 1 }, () => signedJob())
    const runOf = new Map<string, number>(jobs.map((j, i) => [Buffer.from(messageId(j.bytes)).toString('hex'), i]))
    bare.forEach((n, i) => {
      n.services.pubsub.subscribe(JOBS_TOPIC)
      if (validated) {
        const validate = createMessageValidator()
        n.services.pubsub.topicValidators.set(JOBS_TOPIC, (_peer, msg) => validate(JOBS_TOPIC, msg.data).action === 'accept' ? TopicValidatorResult.Accept : TopicValidatorResult.Reject)
      }
      if (i > 0) n.services.pubsub.addEventListener('message', (e) => { w.arrive(runOf.get(Buffer.from(messageId(e.detail.data)).toString('hex')) ?? -1) })
    })
    await connect(bare, edges)
    return await measure(async (run) => {
      await bare[0]!.services.pubsub.publish(JOBS_TOPIC, jobs[run]!.bytes)
    }, async (run) => { await w.all(run) }, runs)
  } finally {
    await Promise.all(bare.map(async n => { await n.stop() }))
  }
}

async function concurRun (nodes: number, runs: number, edges: Array<[number, number]>): Promise<number[]> {
  const peers: ConcurPeer[] = []
  try {
    for (let i = 0; i < nodes; i++) {
      peers.push(await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), discovery: false }))
    }
    const w = waiter(nodes - 1)
    const jobs = Array.from({ length: runs + 1 }, () => signedJob())
    const runOf = new Map<string, number>(jobs.map((j, i) => [j.jobId, i]))
    peers.forEach((p, i) => {
      if (i > 0) p.gossip.onMessage((m) => { if (m.kind === 'job') w.arrive(runOf.get(m.value.jobId) ?? -1) })
    })
    await connect(peers.map(p => p.libp2p as unknown as Libp2p), edges)
    return await measure(async (run) => {
      await peers[0]!.gossip.publish('job', jobs[run]!.bytes)
    }, async (run) => { await w.all(run) }, runs)
  } finally {
    await Promise.all(peers.map(async p => { await p.stop() }))
  }
}

export interface GossipFigures { nodes: number, edges: number, bare: Spread, validated: Spread, concur: Spread }

export async function gossipBench (opts: { nodes: number, runs: number, seed?: number }): Promise<GossipFigures> {
  const edges = topology(opts.nodes, opts.seed)
  const bare = await bareRun(opts.nodes, opts.runs, edges, false)
  const validated = await bareRun(opts.nodes, opts.runs, edges, true)
  const concur = await concurRun(opts.nodes, opts.runs, edges)
  return { nodes: opts.nodes, edges: edges.length, bare: spread(bare), validated: spread(validated), concur: spread(concur) }
}
