/**
 * A per-peer budget for valid but useless messages. Signing costs an attacker
 * ~0.7 ms per message with a fresh key; checking one costs us ~5 ms. Gossip
 * scoring (score.ts) only charges for invalid messages, so a peer could send
 * an unbounded stream of well-formed messages we verify and then IGNORE
 * (duplicates under new wrappings, claims on jobs nobody announced,
 * attestations of builds nobody asked for). Each such message spends a token
 * of the peer it came from; a peer with none left has its messages IGNOREd
 * unread until the bucket refills. Honest peers rarely spend: they do not
 * relay what they IGNORE themselves.
 *
 * A keyed token bucket, so the worker's release budgets (src/worker/worker.ts:
 * in all, and per requester) are this too.
 */
export interface PeerBudgetInit {
  /** tokens a peer starts with (and at most holds) */
  burst?: number
  /** tokens added per second */
  perSecond?: number
  /** peers tracked at once; the least recently charged go first (they are back at a full bucket) */
  maxPeers?: number
  now?: () => number
}

export const DEFAULT_USELESS_BURST = 200
export const DEFAULT_USELESS_PER_SECOND = 20

interface Bucket { tokens: number, at: number }

export class PeerBudget {
  private readonly burst: number
  private readonly perSecond: number
  private readonly maxPeers: number
  private readonly now: () => number
  private readonly buckets = new Map<string, Bucket>()

  constructor (init: PeerBudgetInit = {}) {
    this.burst = init.burst ?? DEFAULT_USELESS_BURST
    this.perSecond = init.perSecond ?? DEFAULT_USELESS_PER_SECOND
    this.maxPeers = init.maxPeers ?? 4096
    this.now = init.now ?? Date.now
  }

  private refill (peer: string): Bucket | undefined {
    const b = this.buckets.get(peer)
    if (b == null) return undefined
    const t = this.now()
    b.tokens = Math.min(this.burst, b.tokens + (t - b.at) / 1000 * this.perSecond)
    b.at = t
    return b
  }

  /** whether `peer` has budget left (its next message is worth reading) */
  allows (peer: string): boolean {
    const b = this.refill(peer)
    return b == null || b.tokens >= 1
  }

  /** spend one token of `peer` for a useless message */
  charge (peer: string): void {
    const b = this.refill(peer) ?? { tokens: this.burst, at: this.now() }
    b.tokens = Math.max(0, b.tokens - 1)
    // re-inserted so the map's order is least recently charged first
    this.buckets.delete(peer)
    this.buckets.set(peer, b)
    if (this.buckets.size > this.maxPeers) this.buckets.delete(this.buckets.keys().next().value as string)
  }
}
