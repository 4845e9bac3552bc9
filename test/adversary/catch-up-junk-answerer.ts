/**
 * A hostile peer for the catch-up adversary test, in a process of its own so
 * that what it spends (signing 3,000 keys, encrypting megabytes of answers)
 * is not counted against the requester it floods. The daemon's own libp2p
 * stack, with one thing added: a handler of `/concur/sync/attestations/1.0.0`
 * that answers every request naming the job's build with `count`
 * attestations of that job, each from a fresh key, then the end frame.
 *
 * Usage: node catch-up-junk-answerer.ts <job envelope, base64> <count>
 * Prints JSON lines: { ready: multiaddr } once listening with the junk made,
 * then { served, written } as each answer starts and ends.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { createAttestation, decodeJobAnnouncement, generateSigningKey } from '../../protocol/index.ts'
import type { SignedAttestation, SignedJob } from '../../protocol/index.ts'
import { answerRequests } from '../../src/net/frames.ts'
import { createConcurPeer } from '../../src/net/peer.ts'
import { SYNC_PROTOCOL } from '../../src/net/sync.ts'
import { wrongCid } from './adversary.ts'

const iso = (ms: number): string => new Date(ms).toISOString()

/** a correctly signed attestation of `job` by a key nobody trusts, of an artifact nobody built */
function junkAttestation (job: SignedJob, workerPeerId: string): SignedAttestation {
  const key = generateSigningKey()
  const def = job.job.definition
  const t = Date.now()
  return createAttestation({
    buildId: job.job.buildId,
    jobId: job.jobId,
    source: def.source,
    environment: def.environment,
    definition: def,
    worker: key.did,
    workerPeerId,
    sandboxTier: 'namespaces+cgroups',
    parallelism: 1,
    startedAt: iso(t - 1000),
    finishedAt: iso(t),
    result: { status: 'success', artifact: wrongCid('catch-up junk'), exitCode: 0 },
    log: null
  }, key)
}

const [jobText, countText] = process.argv.slice(2)
const job = decodeJobAnnouncement(Buffer.from(jobText ?? '', 'base64'), { now: Date.now() })
const count = Number(countText)
const peer = await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), bootstrap: [], discovery: false })
const junk = Array.from({ length: count }, () => junkAttestation(job, peer.libp2p.peerId.toString()))
const say = (doc: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(doc) + '\n') }

let served = 0
let written = 0
await peer.libp2p.handle(SYNC_PROTOCOL, answerRequests({ maxFrame: 64 * 1024, maxRequest: 8192, timeoutMs: 60_000, log: () => {} }, async (request, lp, signal) => {
  const asked = (request as { buildIds?: unknown } | null)?.buildIds
  if (Array.isArray(asked) && asked.includes(job.job.buildId)) {
    served++
    say({ served, written })
    try {
      for (const a of junk) {
        await lp.write(a.bytes, { signal })
        written++
      }
    } finally {
      say({ served, written })
    }
  }
  await lp.write(new Uint8Array(0), { signal })
}), { maxInboundStreams: 64 })

say({ ready: peer.libp2p.getMultiaddrs()[0]!.toString() })
process.on('SIGTERM', () => { void peer.stop().finally(() => process.exit(0)) })
