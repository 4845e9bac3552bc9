/**
 * The ids of jobs and attestations a node without a record store has already
 * passed on (a bootstrap node): without it, every re-wrapped copy of a job
 * or attestation (same object, other bytes, so a new gossip message id) was
 * accepted and relayed again, where PROTOCOL.md §6 says IGNORE. Bounded: the
 * oldest ids go first, and a copy that arrives after its id was forgotten is
 * relayed once more, nothing worse.
 */
export const DEFAULT_SEEN_IDS = 100_000

export class SeenIds {
  private readonly ids = new Set<string>()
  private readonly max: number

  constructor (max = DEFAULT_SEEN_IDS) {
    this.max = max
  }

  has (id: string): boolean {
    return this.ids.has(id)
  }

  add (id: string): void {
    if (this.ids.has(id)) return
    this.ids.add(id)
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value as string)
  }
}
