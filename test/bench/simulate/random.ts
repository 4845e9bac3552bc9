/**
 * Seeded randomness for the simulator (xoshiro128**, seeded by splitmix32 over
 * the seed and a stream name). Each purpose draws from a stream of its own, so
 * adding a draw in one place (say, the latency model) does not shift every
 * other draw of the run: a v1 and a v1.1 run with one seed share their jobs,
 * keys and build times, and differ only where the protocols differ.
 */
export class Rng {
  private readonly s = new Uint32Array(4)

  constructor (seed: number, stream: string) {
    let h = (seed ^ 0x9e3779b9) >>> 0
    for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x85ebca6b) >>> 0
    for (let i = 0; i < 4; i++) {
      h = (h + 0x9e3779b9) >>> 0
      let z = h
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0
      this.s[i] = (z ^ (z >>> 15)) >>> 0
    }
  }

  /** uniform in [0, 1) */
  next (): number {
    const s = this.s
    const r = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0
    const t = (s[1]! << 9) >>> 0
    s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 11)
    return r / 4294967296
  }

  /** an integer in [0, n) */
  int (n: number): number { return Math.floor(this.next() * n) }

  /** exponential with this mean (Poisson arrivals) */
  exp (mean: number): number { return -Math.log(1 - this.next()) * mean }

  /** lognormal with this median and shape (sigma of the underlying normal) */
  lognormal (median: number, sigma: number): number {
    // Box–Muller; 1 - u keeps the logarithm finite
    const z = Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next())
    return median * Math.exp(sigma * z)
  }

  /** k distinct integers of [0, n), in draw order (partial Fisher–Yates over a sparse map) */
  sample (n: number, k: number): number[] {
    const swapped = new Map<number, number>()
    const out: number[] = []
    for (let i = 0; i < Math.min(k, n); i++) {
      const j = i + this.int(n - i)
      const vj = swapped.get(j) ?? j
      swapped.set(j, swapped.get(i) ?? i)
      out.push(vj)
    }
    return out
  }
}

function rotl (x: number, k: number): number { return ((x << k) | (x >>> (32 - k))) >>> 0 }

/**
 * A discrete-event queue in virtual milliseconds: no timer is ever set, the
 * run is as fast as the events can be handled. Ties run in scheduling order,
 * so a run is a pure function of its seed.
 */
export class EventQueue {
  private times: number[] = []
  private seqs: number[] = []
  private fns: Array<() => void> = []
  private seq = 0
  now = 0

  get size (): number { return this.times.length }

  at (t: number, fn: () => void): void {
    const time = Math.max(t, this.now)
    const seq = this.seq++
    let i = this.times.length
    this.times.push(time); this.seqs.push(seq); this.fns.push(fn)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.before(i, p)) break
      this.swap(i, p)
      i = p
    }
  }

  /** runs events in time order until none is left or the next is after `until` */
  run (until: number): void {
    while (this.times.length > 0 && this.times[0]! <= until) {
      const fn = this.fns[0]!
      this.now = this.times[0]!
      this.pop()
      fn()
    }
  }

  private pop (): void {
    const last = this.times.length - 1
    this.swap(0, last)
    this.times.pop(); this.seqs.pop(); this.fns.pop()
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < this.times.length && this.before(l, m)) m = l
      if (r < this.times.length && this.before(r, m)) m = r
      if (m === i) return
      this.swap(i, m)
      i = m
    }
  }

  private before (a: number, b: number): boolean {
    return this.times[a]! < this.times[b]! || (this.times[a] === this.times[b] && this.seqs[a]! < this.seqs[b]!)
  }

  private swap (a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!]
    ;[this.seqs[a], this.seqs[b]] = [this.seqs[b]!, this.seqs[a]!]
    ;[this.fns[a], this.fns[b]] = [this.fns[b]!, this.fns[a]!]
  }
}
