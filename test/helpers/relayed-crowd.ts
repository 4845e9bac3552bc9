/**
 * `relayed-crowd.ts COUNT TARGET`: COUNT bare libp2p peers (TCP, noise,
 * yamux, identify, the circuit-relay transport, gossipsub subscribed to
 * concur's topics) that each dial TARGET, a relayed multiaddr
 * (`…/p2p-circuit/p2p/PEER`), so that PEER sees COUNT peers arriving through
 * one relay. Prints `connected N` once every dial has succeeded, then stays up
 * until killed (SIGTERM; the netns teardown SIGKILLs it). Run inside a namespace
 * by the netns tests; it never listens (a NAT'd host cannot be dialled anyway).
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { CONCUR_TOPICS } from '../../src/net/topics.ts'

const [countArg, target] = process.argv.slice(2)
const count = Number(countArg)
if (!Number.isInteger(count) || count < 1 || count > 64 || target == null) {
  process.stderr.write('usage: relayed-crowd.ts COUNT(1..64) RELAYED-MULTIADDR\n')
  process.exit(2)
}

const nodes = await Promise.all(Array.from({ length: count }, async () => await createLibp2p({
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    // as a concur peer's: unsigned messages, streams on relayed (limited) connections
    pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', runOnLimitedConnection: true, allowPublishToZeroTopicPeers: true })
  }
})))
for (const n of nodes) for (const t of CONCUR_TOPICS) n.services.pubsub.subscribe(t)
const addr = multiaddr(target)
// one at a time, again after a refusal: the relay takes a few new connections
// a second from one IP (libp2p's inboundConnectionThreshold) and resets the rest
for (const n of nodes) {
  for (let attempt = 1; ; attempt++) {
    try {
      await n.dial(addr, { signal: AbortSignal.timeout(30_000) })
      break
    } catch (err) {
      if (attempt >= 10) throw err
      await new Promise(resolve => setTimeout(resolve, 500 * attempt))
    }
  }
}
process.stdout.write(`connected ${nodes.length}\n`)

const stop = async (): Promise<void> => {
  await Promise.allSettled(nodes.map(async n => { await n.stop() }))
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
