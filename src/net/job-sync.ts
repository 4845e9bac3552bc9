import { logger } from '@libp2p/logger'
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'
import { SHARD_COUNT, isShard, shardOf } from '../../protocol/index.ts'
import type { JobAnnouncement } from '../../protocol/index.ts'
import type { MessageKind } from './topics.ts'
import { answerRequests, connectedPeers, exchangeWith, readSection } from './frames.ts'

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

export const MAX_JOBS = 256
/** the most jobs of one requester key in one answer */
export const MAX_JOBS_PER_REQUESTER = 32

/**
 * The order of the jobs in a catch-up answer, fair across requesters
 * (PROTOCOL.md §15): round-robin over requester keys, each requester's jobs
 * newest-received first, at most `perRequester` each. Not by `createdAt`: a
 * sender chooses it (up to the allowed clock skew ahead), so ordering by it
 * let one requester re-announcing 256 future-dated jobs keep every other job
 * out of every answer. `jobs` come in the order this node received them.
 */
export function fairJobOrder<T extends { requester: string }> (jobs: readonly T[], perRequester = MAX_JOBS_PER_REQUESTER, max = MAX_JOBS): T[] {
  const byRequester = new Map<string, T[]>()
  for (let i = jobs.length - 1; i >= 0; i--) {
    const j = jobs[i] as T
    let list = byRequester.get(j.requester)
    if (list == null) { list = []; byRequester.set(j.requester, list) }
    if (list.length < perRequester) list.push(j)
  }
  const out: T[] = []
  for (let round = 0; out.length < max; round++) {
    let any = false
    for (const list of byRequester.values()) {
      const j = list[round]
      if (j == null) continue
      any = true
      out.push(j)
      if (out.length >= max) break
    }
    if (!any) break
  }
  return out
}
const MAX_CLAIMS = 1024
const MAX_FRAME = 64 * 1024
const MAX_HELD_CLAIM_BYTES = 1024 * 1024
const MAX_REQUEST = 1024

/**
 * The shards an asker wants (PROTOCOL.md §15), from its request: a list of
 * 1..SHARD_COUNT shard numbers, or undefined (every shard: an empty request,
 * a v1 asker's, or anything else, which is not refused: the filter only
 * saves the answer's bytes, the asker drops what it does not serve anyway).
 */
export function requestedShards (request: unknown): ReadonlySet<number> | undefined {
  const shards = (request as { shards?: unknown } | null)?.shards
  if (!Array.isArray(shards) || shards.length === 0 || shards.length > SHARD_COUNT || !shards.every(isShard)) return undefined
  return new Set(shards)
}

/** Whether a held job (or the job of a claim) belongs in an answer for `shards`: an unsharded one always, a sharded one if its shard is asked for. */
export function inShards (job: { job: Pick<JobAnnouncement, 'buildId' | 'shards'> } | undefined, shards: ReadonlySet<number> | undefined): boolean {
  return shards == null || job == null || job.job.shards === undefined || shards.has(shardOf(job.job.buildId))
}

export interface JobSyncInit {
  /**
   * wire bytes of the unexpired jobs this node holds, in the order to send
   * them (fairJobOrder); of sharded jobs only those of `shards` (undefined:
   * all), unsharded ones always
   */
  openJobs: (shards?: ReadonlySet<number>) => Uint8Array[]
  /** wire bytes of the latest unexpired claim of each worker on those jobs */
  liveClaims: (shards?: ReadonlySet<number>) => Uint8Array[]
  /** the shards this node serves, asked of peers (none, or all of them: no filter) */
  shards?: () => readonly number[]
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

    // the request is a JSON object: empty, or the shards the asker serves
    const handler = answerRequests({ maxFrame: MAX_FRAME, maxRequest: MAX_REQUEST, timeoutMs, log }, async (request, lp, signal) => {
      const shards = requestedShards(request)
      for (const bytes of init.liveClaims(shards).slice(0, MAX_CLAIMS)) {
        if (bytes.byteLength <= MAX_FRAME) await lp.write(bytes, { signal })
      }
      // an empty frame ends each section
      await lp.write(new Uint8Array(0), { signal })
      for (const bytes of init.openJobs(shards).slice(0, MAX_JOBS)) {
        if (bytes.byteLength <= MAX_FRAME) await lp.write(bytes, { signal })
      }
      await lp.write(new Uint8Array(0), { signal })
    })

    const pullFrom = async (peer: PeerId, options?: AbortOptions): Promise<JobPullResult> => {
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options?.signal != null ? [options.signal] : [])])
      return await exchangeWith(libp2p, peer, JOB_SYNC_PROTOCOL, { maxFrame: MAX_FRAME, signal }, async (lp) => {
        const shards = init.shards?.() ?? []
        // a node serving every shard asks for everything, as a v1 node does
        const request = shards.length > 0 && shards.length < SHARD_COUNT ? { shards } : {}
        await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal })
        // claims come first on the wire but are taken in after the jobs: a
        // node keeps claims only on jobs it holds (PROTOCOL.md §6), and these
        // are claims on the jobs of this very answer
        // (bounded: an honest claim is under 1 KiB, so 1 MiB holds every claim of an honest answer)
        const held: Uint8Array[] = []
        let heldBytes = 0
        const claims = await readSection(lp, MAX_CLAIMS, (b) => {
          heldBytes += b.byteLength
          if (heldBytes <= MAX_HELD_CLAIM_BYTES) held.push(b)
        }, { signal })
        const jobs = await readSection(lp, MAX_JOBS, (b) => { init.ingest('job', b) }, { signal })
        for (const b of held) init.ingest('claim', b)
        return { jobs, claims }
      })
    }

    return {
      async start () {
        await libp2p.handle(JOB_SYNC_PROTOCOL, handler, { maxInboundStreams: 8, runOnLimitedConnection: true })
      },
      async stop () {
        await libp2p.unhandle(JOB_SYNC_PROTOCOL)
      },
      pullFrom,
      async pull (options) {
        // a random few: every peer holds much the same jobs
        const peers = connectedPeers(libp2p, { shuffle: true })
        const results = await Promise.allSettled(peers.slice(0, options?.maxPeers ?? 2).map(async p => await pullFrom(p)))
        return results.reduce((s, r) => r.status === 'fulfilled' ? { jobs: s.jobs + r.value.jobs, claims: s.claims + r.value.claims } : s, { jobs: 0, claims: 0 })
      }
    }
  }
}
