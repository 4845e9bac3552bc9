/** The `--simulate` bench mode: v1 and v1.1 side by side for each network size, as a table. */
import { simulate } from './simulate.ts'
import type { SimulateResult, Version } from './simulate.ts'

export interface SimulateBenchOptions {
  nodes: number[]
  jobsPerS: number
  seconds: number
  seed: number
  /** keys each requester trusts and names as its jobs' builders */
  trusted: number
  /** false: workers claim without the claim order (`--no-claim-order`), to see what it buys */
  claimOrder?: boolean
  log: (s: string) => void
}

export function simulateBench (o: SimulateBenchOptions): SimulateResult[] {
  const out: SimulateResult[] = []
  for (const nodes of o.nodes) {
    for (const version of ['v1', 'v1.1'] as Version[]) {
      o.log(`simulating ${nodes} nodes, ${version}: ${o.jobsPerS} jobs/s for ${o.seconds} s (seed ${o.seed}) …`)
      const r = simulate({ nodes, version, jobsPerS: o.jobsPerS, seconds: o.seconds, seed: o.seed, trusted: o.trusted, ...(o.claimOrder === false ? { claimOrder: false } : {}) })
      o.log(`${nodes} nodes, ${version}: ${r.jobs} jobs, ${r.builds} builds, ${(r.elapsedMs / 1000).toFixed(1)} s`)
      out.push(r)
    }
  }
  return out
}

const f0 = (x: number): string => Number.isFinite(x) ? x.toFixed(0) : '—'
const f1 = (x: number): string => Number.isFinite(x) ? x.toFixed(1) : '—'

export function simulateTable (rs: SimulateResult[]): string {
  const lines = [
    '| nodes | protocol | msgs/s per worker p50 | p99 | KB/s per worker p50 | p99 | distinct msgs/s per worker p50 | msgs/s per requester p50 | time to k p50 s | p99 s | jobs accepted (fewer than k builders on its shard; attestations not counted) | duplicate builds per job | run s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rs.map(r => `| ${r.nodes.toLocaleString('en')} | ${r.version} | ${f1(r.messagesPerS.p50)} | ${f1(r.messagesPerS.p99)} | ${f1(r.bytesPerS.p50 / 1000)} | ${f1(r.bytesPerS.p99 / 1000)} | ${f1(r.uniquePerS.p50)} | ${f0(r.requesterMessagesPerS)} | ${f1(r.timeToK.p50 / 1000)} | ${f1(r.timeToK.p99 / 1000)} | ${r.accepted} / ${r.jobs} (${r.unservable}; ${r.lateAttestations}) | ${r.duplicateBuildsPerJob.toFixed(2)} (${(100 * r.duplicateShare).toFixed(0)}% of builds) | ${f0(r.elapsedMs / 1000)} |`)
  ]
  return lines.join('\n')
}

/** what the table rests on that is a model, not the real thing */
export const SIMULATE_NOTES = [
  'messages are real signed envelopes (protocol/, real keys), each validated once by the real topic validator; a node\'s validation CPU is counted from that time',
  'claims are decided by the real rules (countsAsBuilder, takenSlots over what reached the worker, the claim order claimOrder/claimOrderWaitMs unless --no-claim-order), acceptance by the real verdict (evaluateVerdict)',
  'gossip: a degree-6 random mesh per topic, each node forwards once to its mesh peers (duplicates counted as received); no IHAVE/IWANT (lazy gossip only repairs losses, and the model loses nothing); the three v1 topics share one mesh graph',
  'latency: per link, lognormal (median 40 ms, sigma 0.6, 1–500 ms), fixed per link; +1 ms validation per hop; bandwidth not modelled; input probe before a claim: one round trip',
  'claim renewals: the worker\'s signed claim with later times and seq, counted at its size, not re-signed',
  'v1.1 runs protocol\'s rules where they exist: shards by protocol\'s shardOf (16), each worker on 2, requesters on all 16; leases by protocol\'s leaseFor the expected build time; real commitments (protocol/commitment.ts) on the job\'s shard, revealed REVEAL_MARGIN_MS after every builder whose claim has arrived has committed, or revealWaitMs(build time) after its own; the requester counts an attestation only if its commitment came COMMITMENT_LEAD_MS before the first reveal; adverts (a modelled signed envelope) every 10 min per worker, by fanout to the requesters\' topic'
]
