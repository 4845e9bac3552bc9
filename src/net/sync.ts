import { logger } from '@libp2p/logger'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { answerRequests, connectedPeers, exchangeWith, readSection } from './frames.ts'

const log = logger('concur:sync')

/**
 * Attestation catch-up: gossip is fire-and-forget, so a requester that was
 * down (crash, restart, laptop lid) misses attestations published meanwhile.
 * On start, on new connections and while a job is open, it asks its peers for
 * the attestations they hold for the buildIds it waits on. Answers are plain
 * envelopes that go through the same validation as gossip: a peer can only
 * send what it could have gossiped.
 */
export const SYNC_PROTOCOL = '/concur/sync/attestations/1.0.0'

const MAX_BUILD_IDS = 64
const MAX_ANSWERS = 1024
const MAX_FRAME = 64 * 1024
const MAX_REQUEST = 8 * 1024

export interface AttestationSyncInit {
  /** attestation envelopes (wire bytes) this node holds for a buildId */
  lookup: (buildId: string) => Uint8Array[]
  /** hand an answer to the application (it validates and stores) */
  ingest: (bytes: Uint8Array) => void
  timeoutMs?: number
}

export interface AttestationSync {
  start (): Promise<void>
  stop (): Promise<void>
  /** ask up to `maxPeers` connected peers; returns how many envelopes came back */
  pull (buildIds: string[], options?: { maxPeers?: number }): Promise<number>
}

export function attestationSync (init: AttestationSyncInit) {
  return (components: { libp2p: Libp2p }): AttestationSync => {
    const { libp2p } = components
    const timeoutMs = init.timeoutMs ?? 5000

    const handler = answerRequests({ maxFrame: MAX_FRAME, maxRequest: MAX_REQUEST, timeoutMs, log }, async (request, lp, signal) => {
      const { buildIds } = (request ?? {}) as { buildIds?: unknown }
      const ids = Array.isArray(buildIds) ? buildIds.filter((x): x is string => typeof x === 'string').slice(0, MAX_BUILD_IDS) : []
      let sent = 0
      for (const id of ids) {
        for (const bytes of init.lookup(id)) {
          if (sent++ >= MAX_ANSWERS || bytes.byteLength > MAX_FRAME) break
          await lp.write(bytes, { signal })
        }
      }
      // an empty frame ends the answer
      await lp.write(new Uint8Array(0), { signal })
    })

    const ask = async (peer: PeerId, buildIds: string[]): Promise<number> =>
      await exchangeWith(libp2p, peer, SYNC_PROTOCOL, { maxFrame: MAX_FRAME, signal: AbortSignal.timeout(timeoutMs) }, async (lp, signal) => {
        await lp.write(new TextEncoder().encode(JSON.stringify({ buildIds: buildIds.slice(0, MAX_BUILD_IDS) })), { signal })
        return await readSection(lp, MAX_ANSWERS, init.ingest, { signal })
      })

    return {
      async start () {
        await libp2p.handle(SYNC_PROTOCOL, handler, { maxInboundStreams: 8 })
      },
      async stop () {
        await libp2p.unhandle(SYNC_PROTOCOL)
      },
      async pull (buildIds, options) {
        if (buildIds.length === 0) return 0
        const peers = connectedPeers(libp2p).slice(0, options?.maxPeers ?? 16)
        const counts = await Promise.allSettled(peers.map(async p => await ask(p, buildIds)))
        return counts.reduce((s, r) => s + (r.status === 'fulfilled' ? r.value : 0), 0)
      }
    }
  }
}
