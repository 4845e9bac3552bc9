/**
 * Announcement delivery to N nodes, concur vs bare gossipsub, in one process
 * (same clock for publish and receipt). Topology: node i dials two random
 * earlier nodes (average degree about 4). The concur nodes are full peers
 * (createConcurPeer: validators decode and verify every job on every node);
 * the bare nodes run gossipsub with the same options and no validator.
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import type { Libp2p } from '@libp2p/interface'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { messageId } from '../../src/net/gossip.ts'
import { JOBS_TOPIC } from '../../src/net/topics.ts'
import { signedJob } from '../helpers/fixtures.ts'
import { spread } from './stats.ts'
import type { Spread } from './stats.ts'

async function connect (nodes: Libp2p[]): Promise<void> {
  for (let i = 1; i < nodes.length; i++) {
    const picks = new Set<number>()
    while (picks.size < Math.min(2, i)) picks.add(Math.floor(Math.random() * i))
    for (const j of picks) {
      // a dial can be reset while the other side is busy: retry a few times
      for (let attempt = 0; attempt < 5; attempt++) {
        try { await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!); break } catch { await new Promise(resolve => setTimeout(resolve, 200)) }
      }
    }
  }
  // let subscriptions propagate and the meshes form: every node must see a
  // subscriber to the topic (bounded wait), then a few heartbeats more
  const deadline = Date.now() + 60_000
  const ps = (n: Libp2p): GossipSub => (n as unknown as Libp2p<{ pubsub: GossipSub }>).services.pubsub
  while (Date.now() < deadline && !nodes.every(n => ps(n).getSubscribers(JOBS_TOPIC).length > 0)) {
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  await new Promise(resolve => setTimeout(resolve, 3000))
}

async function measure (publish: (i: number) => Promise<void>, waitAll: (i: number) => Promise<void>, runs: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const t = performance.now()
    const done = waitAll(i)
    await publish(i)
    await done
    if (i > 0) out.push(performance.now() - t)
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
      await Promise.race([
        new Promise<void>(resolve => { resolvers.set(run, resolve); if ((seen.get(run) ?? 0) >= count) resolve() }),
        new Promise<void>((_resolve, reject) => setTimeout(() => { reject(new Error(`only ${seen.get(run) ?? 0} of ${count} nodes received run ${run}`)) }, 20_000))
      ])
    }
  }
}

export async function gossipBench (opts: { nodes: number, runs: number }): Promise<{ concur: Spread, bare: Spread }> {
  // bare gossipsub
  const bare: Libp2p<{ pubsub: GossipSub }>[] = []
  for (let i = 0; i < opts.nodes; i++) {
    bare.push(await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', msgIdFn: (m) => messageId(m.data), allowPublishToZeroTopicPeers: true, D: 6, Dlo: 2, Dhi: 12, Dout: 1 }) }
    }))
  }
  const w1 = waiter(opts.nodes - 1)
  bare.forEach((n, i) => {
    n.services.pubsub.subscribe(JOBS_TOPIC)
    if (i > 0) n.services.pubsub.addEventListener('message', (e) => { w1.arrive(e.detail.data[0] ?? 0) })
  })
  let bareTimes: number[]
  try {
    await connect(bare)
    const payloadSize = signedJob().bytes.byteLength
    bareTimes = await measure(async (run) => {
      const data = new Uint8Array(payloadSize).fill(run)
      data[1] = Math.floor(Math.random() * 256)
      await bare[0]!.services.pubsub.publish(JOBS_TOPIC, data)
    }, async (run) => { await w1.all(run) }, opts.runs)
  } finally {
    await Promise.all(bare.map(async n => { await n.stop() }))
  }

  // concur peers
  const peers: ConcurPeer[] = []
  for (let i = 0; i < opts.nodes; i++) {
    peers.push(await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), discovery: false }))
  }
  const w2 = waiter(opts.nodes - 1)
  const runOf = new Map<string, number>()
  peers.forEach((p, i) => {
    if (i > 0) p.gossip.onMessage((m) => { if (m.kind === 'job') w2.arrive(runOf.get(m.value.jobId) ?? -1) })
  })
  let concurTimes: number[]
  try {
    await connect(peers.map(p => p.libp2p as unknown as Libp2p))
    const jobs = Array.from({ length: opts.runs + 1 }, () => signedJob())
    jobs.forEach((j, i) => runOf.set(j.jobId, i))
    concurTimes = await measure(async (run) => {
      await peers[0]!.gossip.publish('job', jobs[run]!.bytes)
    }, async (run) => { await w2.all(run) }, opts.runs)
  } finally {
    await Promise.all(peers.map(async p => { await p.stop() }))
  }
  return { concur: spread(concurTimes), bare: spread(bareTimes) }
}
