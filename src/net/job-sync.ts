import { lpStream } from '@libp2p/utils'
import { logger } from '@libp2p/logger'
import type { AbortOptions, Libp2p, PeerId, Stream, Connection } from '@libp2p/interface'
import type { MessageKind } from './topics.ts'

const log = logger('concur:job-sync')

/**
 * Job catch-up: a job is gossiped once, and gossip reaches only the peers on
 * the mesh at that moment. A worker that joins later (a volunteer switching
 * on their machine, a restarted worker, a replacement for one that died
 * mid-build) would never hear of jobs still waiting for builders. So a worker
 * asks each peer it connects to, and a couple of random peers every lease
 * period, for the open jobs they hold, together with the live claims on them.
 * Claims come first so that the asker knows who holds a lease before it
 * considers a job: a newcomer must not pile onto a job that is being built.
 *
 * Answers are untrusted exactly like gossip: each envelope goes through the
 * same decoder and validator before the application sees it.
 */
export const JOB_SYNC_PROTOCOL = '/concur/sync/jobs/1.0.0'

const MAX_JOBS = 256
const MAX_CLAIMS = 1024
const MAX_FRAME = 64 * 1024
const MAX_REQUEST = 1024

export interface JobSyncInit {
  /** wire bytes of the unexpired jobs this node holds, newest first */
  openJobs: () => Uint8Array[]
  /** wire bytes of the latest unexpired claim of each worker on those jobs */
  liveClaims: () => Uint8Array[]
  /** hand an answer to the application (it validates and delivers) */
  ingest: (kind: MessageKind, bytes: Uint8Array) => void
  timeoutMs?: number
}

export interface JobPullResult { jobs: number, claims: number }

export interface JobSync {
  start (): Promise<void>
  stop (): Promise<void>
  /** ask one peer for its open jobs and live claims */
  pullFrom (peer: PeerId, options?: AbortOptions): Promise<JobPullResult>
  /** ask up to `maxPeers` connected peers, chosen at random */
  pull (options?: { maxPeers?: number }): Promise<JobPullResult>
}

export function jobSync (init: JobSyncInit) {
  return (components: { libp2p: Libp2p }): JobSync => {
    const { libp2p } = components
    const timeoutMs = init.timeoutMs ?? 5000

    const handler = async (stream: Stream, _connection: Connection): Promise<void> => {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
      const signal = AbortSignal.timeout(timeoutMs)
      try {
        const req = await lp.read({ signal })
        if (req.byteLength > MAX_REQUEST) throw new Error('request too large')
        // the request is an (empty) JSON object, kept for future filters
        JSON.parse(new TextDecoder().decode(req.subarray()))
        for (const bytes of init.liveClaims().slice(0, MAX_CLAIMS)) {
          if (bytes.byteLength <= MAX_FRAME) await lp.write(bytes, { signal })
        }
        await lp.write(new Uint8Array(0), { signal })
        for (const bytes of init.openJobs().slice(0, MAX_JOBS)) {
          if (bytes.byteLength <= MAX_FRAME) await lp.write(bytes, { signal })
        }
        // an empty frame ends each section
        await lp.write(new Uint8Array(0), { signal })
        await stream.close({ signal })
      } catch (err) {
        log('job sync request failed: %s', (err as Error).message)
        stream.abort(err as Error)
      }
    }

    const pullFrom = async (peer: PeerId, options?: AbortOptions): Promise<JobPullResult> => {
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options?.signal != null ? [options.signal] : [])])
      const stream = await libp2p.dialProtocol(peer, JOB_SYNC_PROTOCOL, { signal })
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
      const result: JobPullResult = { jobs: 0, claims: 0 }
      try {
        await lp.write(new TextEncoder().encode('{}'), { signal })
        while (result.claims < MAX_CLAIMS) {
          const frame = await lp.read({ signal })
          if (frame.byteLength === 0) break
          result.claims++
          init.ingest('claim', frame.subarray())
        }
        while (result.jobs < MAX_JOBS) {
          const frame = await lp.read({ signal })
          if (frame.byteLength === 0) break
          result.jobs++
          init.ingest('job', frame.subarray())
        }
        await stream.close({ signal })
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
      return result
    }

    return {
      async start () {
        await libp2p.handle(JOB_SYNC_PROTOCOL, handler, { maxInboundStreams: 8 })
      },
      async stop () {
        await libp2p.unhandle(JOB_SYNC_PROTOCOL)
      },
      pullFrom,
      async pull (options) {
        const peers = [...new Map(libp2p.getConnections().map(c => [c.remotePeer.toString(), c.remotePeer])).values()]
        // a random few: every peer holds much the same jobs
        for (let i = peers.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1));
          [peers[i], peers[j]] = [peers[j]!, peers[i]!]
        }
        const results = await Promise.allSettled(peers.slice(0, options?.maxPeers ?? 2).map(async p => await pullFrom(p)))
        return results.reduce((s, r) => r.status === 'fulfilled' ? { jobs: s.jobs + r.value.jobs, claims: s.claims + r.value.claims } : s, { jobs: 0, claims: 0 })
      }
    }
  }
}
