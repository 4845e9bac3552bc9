/**
 * The store's one write lock: every change to a file (appending records or
 * tombstones, rolling a pack, committing a compaction, saving the index)
 * runs under it, one at a time, so the in-memory index and the files never
 * disagree about what was acknowledged. Reads never take it.
 */
export class WriteLock {
  private tail: Promise<unknown> = Promise.resolve()

  /** Runs `fn` after every function queued before it has settled. */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn)
    // the next in line waits for this one to settle, whatever its outcome
    this.tail = result.catch(() => {})
    return await result
  }

  /** resolves once everything queued so far has settled */
  async idle (): Promise<void> {
    await this.tail
  }
}
