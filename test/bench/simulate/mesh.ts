/**
 * One gossipsub topic's mesh and how a message floods it.
 *
 * The mesh is a random regular-ish graph of degree D among the topic's
 * subscribers (a configuration model: D stubs per node, paired at random,
 * self-loops and repeated pairs dropped), each link with a fixed one-way
 * latency. A message is forwarded once by each node that receives it, after
 * validating it, to every mesh peer except the one it came from and its
 * publisher (gossipsub's rule); so a node receives one copy from every mesh
 * peer that did not get the message first from it — the duplicates gossipsub
 * delivers, counted as received messages. Lazy gossip (IHAVE/IWANT) is not
 * modelled: in a connected mesh it only repairs losses, and this model loses
 * nothing.
 *
 * Flooding is a shortest-path computation (first copy = earliest arrival),
 * which depends only on the mesh and the publisher: it is memoised per
 * publisher, and what each node received is added up per publisher (a tally)
 * and spread over the nodes once, when the flood leaves the cache.
 */
import type { Rng } from './random.ts'

/** the shortest one-way link latency a mesh may have, ms (the latency model's floor) */
export const MIN_LINK_MS = 1
const BUCKET_MS = 1

export interface Mesh {
  readonly name: string
  /** global node ids of the subscribers, by local index */
  readonly members: Int32Array
  /** global id → local index, -1 for a node not subscribed */
  readonly local: Int32Array
  /** CSR adjacency: neighbours of local i are nbrs[offsets[i] .. offsets[i + 1]) */
  readonly offsets: Int32Array
  readonly nbrs: Int32Array
  /** one-way latency of each adjacency entry, ms (symmetric) */
  readonly lat: Float64Array
  /** publishers outside the topic (gossipsub fanout): the D members they send to, and the latencies */
  readonly fanout: Map<number, { to: Int32Array, lat: Float64Array }>
  readonly degree: number
  readonly latency: (rng: Rng) => number
  readonly rng: Rng
}

export function buildMesh (name: string, members: readonly number[], totalNodes: number, degree: number, rng: Rng, latency: (rng: Rng) => number): Mesh {
  const n = members.length
  const local = new Int32Array(totalNodes).fill(-1)
  members.forEach((g, i) => { local[g] = i })
  const adj: Array<Set<number>> = Array.from({ length: n }, () => new Set())
  if (n <= degree + 1) {
    // a topic with this few subscribers is one clique
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) { adj[a]!.add(b); adj[b]!.add(a) }
  } else {
    const stubs: number[] = []
    for (let i = 0; i < n; i++) for (let d = 0; d < degree; d++) stubs.push(i)
    for (let i = stubs.length - 1; i > 0; i--) {
      const j = rng.int(i + 1)
      ;[stubs[i], stubs[j]] = [stubs[j]!, stubs[i]!]
    }
    for (let i = 0; i + 1 < stubs.length; i += 2) {
      const a = stubs[i]!
      const b = stubs[i + 1]!
      if (a !== b) { adj[a]!.add(b); adj[b]!.add(a) }
    }
    // a node left without peers (all its stubs dropped) grafts onto one at random, as gossipsub would
    for (let i = 0; i < n; i++) {
      while (adj[i]!.size === 0) {
        const j = rng.int(n)
        if (j !== i) { adj[i]!.add(j); adj[j]!.add(i) }
      }
    }
  }
  const offsets = new Int32Array(n + 1)
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + adj[i]!.size
  const nbrs = new Int32Array(offsets[n]!)
  const lat = new Float64Array(offsets[n]!)
  const linkLatency = new Map<number, number>()
  for (let i = 0; i < n; i++) {
    let k = offsets[i]!
    for (const j of [...adj[i]!].sort((x, y) => x - y)) {
      const key = Math.min(i, j) * n + Math.max(i, j)
      let l = linkLatency.get(key)
      if (l === undefined) { l = latency(rng); linkLatency.set(key, l) }
      nbrs[k] = j
      lat[k] = l
      k++
    }
  }
  return { name, members: Int32Array.from(members), local, offsets, nbrs, lat, fanout: new Map(), degree, latency, rng }
}

export interface Flood {
  /**
   * local index → ms from publish to the message's validation there
   * (Infinity: never reached). For a publisher in the mesh it is also the
   * time from each node to the publisher: a path costs the same both ways.
   */
  readonly arrival: Float32Array
  /** local index → copies received (first one and duplicates; a mesh degree stays far below 255) */
  readonly received: Uint8Array
}

/**
 * Earliest arrival at every subscriber of a message published by global node
 * `source` (Dijkstra over link latency + a per-hop validation delay), and the
 * copies each receives. A publisher outside the topic sends to D subscribers
 * (fanout), fixed per publisher as gossipsub keeps its fanout peers.
 */
export function flood (mesh: Mesh, source: number, hopMs: number): Flood {
  const n = mesh.members.length
  const dist = new Float64Array(n).fill(Infinity)
  const parent = new Int32Array(n).fill(-1)
  // Dial's algorithm: buckets of BUCKET_MS. Every hop costs at least
  // MIN_LINK_MS + hopMs > BUCKET_MS, so a relaxation always lands in a later
  // bucket and a node's distance is final when its bucket is reached: exact,
  // and several times faster than a binary heap at 10,000 nodes
  const buckets: number[][] = []
  const push = (v: number, d: number): void => {
    const b = Math.floor(d / BUCKET_MS)
    const list = buckets[b]
    if (list === undefined) buckets[b] = [v]
    else list.push(v)
  }
  const self = mesh.local[source] ?? -1
  /** members that got the message straight from an outside publisher */
  let entry: Int32Array | undefined
  if (self >= 0) {
    dist[self] = 0
    push(self, 0)
  } else {
    let f = mesh.fanout.get(source)
    if (f === undefined) {
      const to = Int32Array.from(mesh.rng.sample(n, mesh.degree))
      f = { to, lat: Float64Array.from(to, () => mesh.latency(mesh.rng)) }
      mesh.fanout.set(source, f)
    }
    entry = f.to
    f.to.forEach((v, i) => {
      const d = f.lat[i]! + hopMs
      if (d < dist[v]!) { dist[v] = d; parent[v] = -2; push(v, d) }
    })
  }
  for (let b = 0; b < buckets.length; b++) {
    const list = buckets[b]
    if (list === undefined) continue
    for (const u of list) {
      const du = dist[u]!
      // a stale entry: u was reached earlier (it sits in an earlier bucket)
      if (Math.floor(du / BUCKET_MS) !== b) continue
      for (let k = mesh.offsets[u]!; k < mesh.offsets[u + 1]!; k++) {
        const v = mesh.nbrs[k]!
        const d = du + mesh.lat[k]! + hopMs
        if (d < dist[v]!) { dist[v] = d; parent[v] = u; push(v, d) }
      }
    }
    buckets[b] = []
  }
  // u receives from each reached mesh peer v except when v got it from u (v does not send it back);
  // nobody sends the publisher its own message
  const received = new Uint8Array(n)
  for (let v = 0; v < n; v++) {
    if (dist[v] === Infinity) continue
    for (let k = mesh.offsets[v]!; k < mesh.offsets[v + 1]!; k++) {
      const u = mesh.nbrs[k]!
      if (u !== parent[v] && u !== self) received[u]!++
    }
  }
  if (entry !== undefined) for (const v of entry) received[v]!++
  return { arrival: Float32Array.from(dist), received }
}

/** Per-node totals the floods add to (indexed by global node id). */
export interface NodeLoad {
  /** copies received, duplicates included */
  readonly messages: Float64Array
  readonly bytes: Float64Array
  /** distinct messages received (what a node validates) */
  readonly unique: Float64Array
}

export function newNodeLoad (n: number): NodeLoad {
  return { messages: new Float64Array(n), bytes: new Float64Array(n), unique: new Float64Array(n) }
}

interface Entry { flood: Flood, messages: number, bytes: number }

/**
 * Floods memoised per publisher, least recently used first out, bounded by
 * the memory they take (5 bytes per node each: at most 160 MB by default;
 * at half that, a 10,000-node run recomputed about one flood per build).
 * The messages a publisher sent while its flood was cached are tallied and
 * added to every node's load once, when it leaves.
 */
export class FloodCache {
  private readonly entries = new Map<number, Entry>()
  private readonly capacity: number
  readonly mesh: Mesh
  private readonly load: NodeLoad
  private readonly hopMs: number

  constructor (mesh: Mesh, load: NodeLoad, hopMs: number, cells = 32_000_000) {
    this.mesh = mesh
    this.load = load
    this.hopMs = hopMs
    this.capacity = Math.max(16, Math.floor(cells / Math.max(1, mesh.members.length)))
  }

  get (source: number): Flood {
    let e = this.entries.get(source)
    if (e !== undefined) {
      // most recently used last
      this.entries.delete(source)
      this.entries.set(source, e)
      return e.flood
    }
    e = { flood: flood(this.mesh, source, this.hopMs), messages: 0, bytes: 0 }
    this.entries.set(source, e)
    if (this.entries.size > this.capacity) {
      const [oldest, old] = this.entries.entries().next().value as [number, Entry]
      this.entries.delete(oldest)
      this.spread(old)
    }
    return e.flood
  }

  /** counts one message of `bytes` published by `source` towards every node's load */
  count (source: number, bytes: number): void {
    this.get(source)
    const e = this.entries.get(source)!
    e.messages++
    e.bytes += bytes
  }

  /**
   * ms from `source`'s publish to validation at global node `node` (Infinity:
   * not subscribed or not reached). Either end's flood answers it (a path
   * costs the same both ways, when both are in the mesh): a worker asking
   * when each of 50 claimers' claims reached it needs its own flood, not 50.
   */
  arrival (source: number, node: number): number {
    const i = this.mesh.local[node]!
    if (i < 0) return Infinity
    const j = this.mesh.local[source]!
    if (j >= 0 && !this.entries.has(source) && this.entries.has(node)) return this.get(node).arrival[j]!
    return this.get(source).arrival[i]!
  }

  /** adds every tally still held to the node loads */
  flush (): void {
    for (const e of this.entries.values()) this.spread(e)
    this.entries.clear()
  }

  private spread (e: Entry): void {
    if (e.messages === 0) return
    const perMessage = e.bytes / e.messages
    const { members } = this.mesh
    for (let i = 0; i < members.length; i++) {
      const r = e.flood.received[i]!
      if (r === 0 && e.flood.arrival[i] === Infinity) continue
      const g = members[i]!
      this.load.messages[g]! += r * e.messages
      this.load.bytes[g]! += r * perMessage * e.messages
      // the publisher (arrival 0: hops cost > 0) does not validate its own message
      if (e.flood.arrival[i] !== Infinity && e.flood.arrival[i] !== 0) this.load.unique[g]! += e.messages
    }
    e.messages = 0
    e.bytes = 0
  }
}
