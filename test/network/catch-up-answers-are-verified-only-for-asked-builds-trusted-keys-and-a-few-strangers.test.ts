/**
 * The asker's side of attestation catch-up (src/net/sync.ts, PROTOCOL.md
 * §13), between two in-process peers: an answer is peeked frame by frame and
 * only what the asker can use is verified (handed to `ingest`): builds it
 * asked for, attestations it does not hold, keys it trusts, and a few from
 * strangers. An honest answer is read to its end; one carrying a build not
 * asked for, a forgery, or a pile of strangers' attestations is cut there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { ATTESTATION_PAYLOAD_TYPE, decodeAttestation, envelopeBytes, envelopePayload, signEnvelope } from '../../protocol/index.ts'
import type { SignedAttestation } from '../../protocol/index.ts'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { attestationSync } from '../../src/net/sync.ts'
import type { AttestationSync, IngestOutcome } from '../../src/net/sync.ts'
import { waitFor } from '../helpers/processes.ts'
import { attest, definition, fixedKey, T0 } from '../protocol/fixtures.ts'

const trustedKey = fixedKey('catch-up trusted')
const stranger = (i: number): SignedAttestation => attest(fixedKey(`catch-up stranger ${i}`))
const otherBuild = { ...definition, command: ['sh', '-c', 'something else'] }

async function peer (): Promise<ConcurPeer> {
  return await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), bootstrap: [], discovery: false })
}

describe('catch-up answers', () => {
  const peers: ConcurPeer[] = []
  let answer: Uint8Array[] = []
  const ingested: SignedAttestation[] = []
  const held = new Set<string>()
  let asker: AttestationSync
  const buildId = attest(trustedKey).claim.buildId

  beforeAll(async () => {
    const [a, b] = [await peer(), await peer()]
    peers.push(a, b)
    // the answerer sends whatever the test scripted, under any buildId
    const answerer = attestationSync({ lookup: () => answer, ingest: () => 'ignore' })({ libp2p: a.libp2p })
    await answerer.start()
    asker = attestationSync({
      lookup: () => [],
      ingest: (bytes): IngestOutcome => {
        try {
          ingested.push(decodeAttestation(bytes, { now: Date.now() }))
          return 'accept'
        } catch {
          return 'reject'
        }
      },
      trustedSigners: () => new Set([trustedKey.did]),
      holds: (_, id) => held.has(id),
      budget: { untrustedPerBuild: 2, skippedPerBuild: 5 }
    })({ libp2p: b.libp2p })
    await b.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    await waitFor(async () => b.libp2p.getConnections().length > 0, 'the peers connected', 10_000)
  })

  afterAll(async () => {
    await Promise.allSettled(peers.map(async p => { await p.stop() }))
  })

  const pull = async (frames: Array<SignedAttestation | Uint8Array>): Promise<{ accepted: number, ingested: SignedAttestation[], stats: ReturnType<AttestationSync['stats']> }> => {
    answer = frames.map(f => f instanceof Uint8Array ? f : f.bytes)
    ingested.length = 0
    const before = asker.stats()
    const accepted = await asker.pull([buildId])
    const after = asker.stats()
    const stats = { ...after }
    for (const k of Object.keys(stats) as Array<keyof typeof stats>) stats[k] -= before[k]
    return { accepted, ingested: [...ingested], stats }
  }

  it('an honest answer is read to its end: held ones skipped, the trusted one verified, two strangers of five', async () => {
    const old = attest(trustedKey)
    held.add(old.id)
    const fresh = attest(trustedKey, { finishedAt: T0 + 180_000 })
    const strangers = [1, 2, 3, 4, 5].map(stranger)
    const r = await pull([old, ...strangers, fresh])
    expect(r.stats).toMatchObject({ read: 7, held: 1, verified: 3, untrustedVerified: 2, skipped: 3, cut: 0 })
    expect(r.ingested.map(a => a.id)).toEqual([strangers[0]!.id, strangers[1]!.id, fresh.id])
    expect(r.accepted).toBe(3)
  })

  it('an attestation of a build not asked for cuts the answer, unverified', async () => {
    const r = await pull([attest(fixedKey('x'), { def: otherBuild }), attest(trustedKey, { finishedAt: T0 + 240_000 })])
    expect(r.stats).toMatchObject({ read: 1, verified: 0, cut: 1 })
  })

  it('a forgery in a trusted key\'s name costs one verification and cuts the answer', async () => {
    const real = attest(fixedKey('forger'), { finishedAt: T0 + 200_000 })
    const statement = JSON.parse(new TextDecoder().decode(envelopePayload(real.envelope))) as { predicate: { runDetails: { builder: { id: string } } } }
    statement.predicate.runDetails.builder.id = trustedKey.did
    const forged = envelopeBytes(signEnvelope(ATTESTATION_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(statement)), fixedKey('forger')))
    const r = await pull([forged, attest(trustedKey, { finishedAt: T0 + 300_000 })])
    expect(r.stats).toMatchObject({ read: 1, verified: 1, cut: 1 })
    expect(r.ingested).toEqual([])
  })

  it('a pile of strangers\' attestations gets two verified, five skipped, and is cut at the sixth', async () => {
    const r = await pull(Array.from({ length: 40 }, (_, i) => stranger(100 + i)))
    expect(r.stats).toMatchObject({ verified: 2, skipped: 6, cut: 1 })
    expect(r.stats.read).toBe(8)
  })

  it('a frame that is no attestation cuts the answer', async () => {
    const r = await pull([new TextEncoder().encode('{"not":"an envelope"}')])
    expect(r.stats).toMatchObject({ read: 1, verified: 0, cut: 1 })
  })
})
