/**
 * `npm run bench -- --simulate`: N simulated concur nodes in one process, in
 * virtual time (a discrete-event queue; no timer is set), over a gossipsub-like
 * mesh with per-link latency, running the real protocol code where it decides
 * something: every message is a real signed envelope (protocol/, real keys)
 * put once through the real topic validator; a worker decides whether to
 * claim a job with the real rules (countsAsBuilder, takenSlots) over the
 * claims and attestations that have reached it by then; the requester's
 * acceptance is the real verdict (evaluateVerdict) over what it has received.
 *
 * v1: what runs today (PROTOCOL.md §6, §7): one topic per kind, every node on
 * all of them; a claim renews every LEASE_RENEW_MS while building.
 * v1.1: modelled by its parameters (being built in parallel): topics sharded
 * by buildId prefix (16 shards; a worker on `shardsPerWorker` of them),
 * renewals scaled to the build's expected duration, commit-then-reveal, and
 * periodic worker adverts on a topic the requesters read.
 *
 * What is simplified is said where it is done; the table's notes list it.
 */
import {
  CLAIM_JITTER_MAX_MS, LEASE_MS, LEASE_RENEW_MS, countsAsBuilder, createPolicy, evaluateVerdict, parseCid, sha256HexOfCid, takenSlots,
  CODEC_DAG_CBOR, SHARD_COUNT, claimOrder, claimOrderWaitMs, leaseFor, shardOf as protocolShardOf, COMMITMENT_LEAD_MS, REVEAL_MARGIN_MS, revealWaitMs
} from '../../../protocol/index.ts'
import type { Claim, SignedAttestation, SignedJob, TrustPolicy } from '../../../protocol/index.ts'
import { quantile } from '../stats.ts'
import { FloodCache, MIN_LINK_MS, buildMesh, newNodeLoad } from './mesh.ts'
import type { Mesh } from './mesh.ts'
import {
  EXPECTED_FIELD_BYTES, Validation, advertMessage, iso, wall, attestationMessage, claimMessage, commitmentMessage, jobMessage, nodeKey
} from './messages.ts'
import type { Kind } from './messages.ts'
import { EventQueue, Rng } from './random.ts'

export type Version = 'v1' | 'v1.1'

export interface SimulateOptions {
  nodes: number
  version: Version
  /** jobs per second, network-wide (Poisson arrivals) */
  jobsPerS: number
  /** jobs arrive during this many virtual seconds; the run then drains */
  seconds: number
  seed: number
  /** per-node load is measured over messages published in [warmupS, seconds] */
  warmupS?: number
  degree?: number
  replicas?: number
  threshold?: number
  /** keys each requester trusts (and names as the job's builders) */
  trusted?: number
  /** share of the nodes that are requesters (the rest are workers) */
  requesterShare?: number
  shards?: number
  shardsPerWorker?: number
  buildMedianS?: number
  buildSigma?: number
  /** false: workers claim as before the claim order (every idle builder within the jitter), to measure what the order buys */
  claimOrder?: boolean
  /** v1.1: a worker reveals at most this long after its commitment (default: the real revealWaitMs of its build time) */
  commitWindowMs?: number
  /** v1.1: … or this long after every builder it knows of has committed (default REVEAL_MARGIN_MS) */
  revealMarginMs?: number
  /** v1.1: each worker adverts this often */
  advertEveryMs?: number
  latencyMedianMs?: number
  latencySigma?: number
  /** validation before forwarding, per hop */
  hopMs?: number
}

export interface Quantiles { p50: number, p99: number }

export interface SimulateResult {
  nodes: number
  version: Version
  workers: number
  requesters: number
  jobs: number
  /** seconds of the load window */
  windowS: number
  /** copies received per worker per second, duplicates included (median and p99 over the workers) */
  messagesPerS: Quantiles
  bytesPerS: Quantiles
  /** distinct messages per worker per second: what a node validates */
  uniquePerS: Quantiles
  /** the requesters' median copies per second (1% of the nodes: apart, so the workers' quantiles are the workers') */
  requesterMessagesPerS: number
  /** share of one core spent validating (distinct messages × the real validator's mean time), median worker */
  validateCoreShare: number
  validateMsPerMessage: number
  /** ms from publishing a job to its requester's accepting verdict */
  timeToK: Quantiles
  accepted: number
  /** builds beyond `replicas` per job, and their share of all builds */
  duplicateBuildsPerJob: number
  duplicateShare: number
  builds: number
  /** v1.1: attestations the requester did not count (commitment seen after a reveal) */
  lateAttestations: number
  /** jobs fewer than k of whose named builders are on the job's shard (v1: on the topic): no verdict can accept them */
  unservable: number
  /** distinct messages published in the window, by kind */
  published: Partial<Record<Kind, number>>
  /** bytes of one message of each kind (the first made) */
  messageBytes: Partial<Record<Kind, number>>
  elapsedMs: number
  /** for tests: per-node distinct messages in the window, each node's shards, and what each shard carried */
  detail: { unique: Float64Array, shardsOf: number[][], publishedPerShard: number[], meshOf: (shard: number) => Mesh }
}

interface Build {
  worker: number
  start: number
  end: number
  committedAt?: number
  /** distinct workers' commitments this worker has seen (its own included) */
  seen: Set<number>
  revealing?: boolean
  revealed: boolean
}

interface Job {
  index: number
  signed: SignedJob
  requester: number
  submittedAt: number
  shard: number
  cache: FloodCache
  baseMs: number
  /** per worker: its claims, in publish order, with their publish times */
  claims: Map<number, Array<{ claim: Claim, at: number }>>
  attests: Array<{ worker: number, did: string, at: number }>
  builds: Map<number, Build>
  counted: SignedAttestation[]
  acceptedAt?: number
  firstRevealAtRequester?: number
  commitsAtRequester: Map<number, number>
}

interface WorkerState { busy: boolean, pending: Job[], shards: number[] }

const HEX = 16

/**
 * A buildId's shard: protocol's rule (PROTOCOL.md §6.1: the first hex digit
 * of sha256 of the buildId text) for the network's 16; for another count
 * (a what-if run) the same hash's first byte scaled to it.
 */
export function shardOf (buildId: string, shards: number): number {
  if (shards === SHARD_COUNT) return protocolShardOf(buildId)
  const firstByte = parseInt(sha256HexOfCid(parseCid(buildId, 'buildId', [CODEC_DAG_CBOR])).slice(0, 2), HEX)
  return Math.floor(firstByte * shards / 256)
}

export function simulate (o: SimulateOptions): SimulateResult {
  const started = performance.now()
  const degree = o.degree ?? 6
  const replicas = o.replicas ?? 3
  const k = o.threshold ?? 2
  const shardCount = o.shards ?? 16
  const perWorker = Math.min(o.shardsPerWorker ?? 2, shardCount)
  const hopMs = o.hopMs ?? 1
  const revealMarginMs = o.revealMarginMs ?? REVEAL_MARGIN_MS
  const advertEveryMs = o.advertEveryMs ?? 600_000
  const endMs = o.seconds * 1000
  const warmMs = (o.warmupS ?? Math.min(120, o.seconds / 3)) * 1000
  const v11 = o.version === 'v1.1'
  const requesterCount = Math.max(2, Math.round(o.nodes * (o.requesterShare ?? 0.01)))
  const workerCount = o.nodes - requesterCount
  const trusted = Math.min(o.trusted ?? 64, workerCount)
  // nodes 0..R-1 are requesters, R..N-1 workers
  const isWorker = (i: number): boolean => i >= requesterCount

  const rolesRng = new Rng(o.seed, 'roles')
  const latencyMedian = o.latencyMedianMs ?? 40
  const latencySigma = o.latencySigma ?? 0.6
  const latency = (r: Rng): number => Math.min(500, Math.max(MIN_LINK_MS, r.lognormal(latencyMedian, latencySigma)))

  // who trusts whom: a requester names its trusted keys as the job's builders (src/requester, buildersOf)
  const trustOf: number[][] = []
  const policies: TrustPolicy[] = []
  for (let r = 0; r < requesterCount; r++) {
    const set = rolesRng.sample(workerCount, trusted).map(i => i + requesterCount)
    trustOf.push(set)
    policies.push(createPolicy({ trusted: set.map(i => nodeKey(i).did), threshold: k }))
  }
  const shardRng = new Rng(o.seed, 'shards')
  const workers: WorkerState[] = []
  for (let i = 0; i < o.nodes; i++) {
    // v1.1: requesters are on every shard (modelled: a requester with jobs in flight on all of them)
    const shards = !v11 ? [] : isWorker(i) ? shardRng.sample(shardCount, perWorker).sort((a, b) => a - b) : Array.from({ length: shardCount }, (_, s) => s)
    workers.push({ busy: false, pending: [], shards })
  }

  const load = newNodeLoad(o.nodes)
  const meshRng = new Rng(o.seed, 'mesh')
  const everyone = Array.from({ length: o.nodes }, (_, i) => i)
  // v1: the three topics have the same subscribers (everyone); one mesh graph stands for all three
  const meshes: Mesh[] = v11
    ? Array.from({ length: shardCount }, (_, s) => buildMesh(`shard ${s}`, everyone.filter(i => workers[i]!.shards.includes(s)), o.nodes, degree, meshRng, latency))
    : [buildMesh('v1', everyone, o.nodes, degree, meshRng, latency)]
  const caches = meshes.map(m => new FloodCache(m, load, hopMs))
  const cacheFor = (shard: number): FloodCache => caches[v11 ? shard : 0]!

  const q = new EventQueue()
  const validation = new Validation()
  const published: Partial<Record<Kind, number>> = {}
  const messageBytes: Partial<Record<Kind, number>> = {}
  const publishedPerShard = new Array<number>(shardCount).fill(0)
  const inWindow = (t: number): boolean => t >= warmMs && t <= endMs
  /** one distinct message: validated once for real, then counted towards every receiving node's load */
  const publish = (kind: Kind, cache: FloodCache, shard: number, source: number, bytes: number, t: number): void => {
    messageBytes[kind] ??= bytes
    if (!inWindow(t)) return
    published[kind] = (published[kind] ?? 0) + 1
    publishedPerShard[shard]!++
    cache.count(source, bytes)
  }

  const jobRng = new Rng(o.seed, 'jobs')
  const buildRng = new Rng(o.seed, 'builds')
  const jitterRng = new Rng(o.seed, 'jitter')
  const jobs: Job[] = []
  let lateAttestations = 0

  /** what worker w has received of job j's claims and attestations by t: the real slot count over it */
  const taken = (w: number, j: Job, t: number): number => {
    const seen: Claim[] = []
    // w's own flood holds the time from every claimer to w (see FloodCache.arrival)
    const fromW = j.cache.get(w).arrival
    const local = j.cache.mesh.local
    for (const [from, list] of j.claims) {
      const arrival = fromW[local[from]!]!
      // in publish order: the first not yet arrived ends the worker's list
      for (const c of list) {
        if (c.at + arrival > t) break
        seen.push(c.claim)
      }
    }
    const attested = j.attests.filter(a => a.at + fromW[local[a.worker]!]! <= t).map(a => a.did)
    return takenSlots(seen, attested, wall(t), nodeKey(w).did, j.signed.job.builders)
  }

  /**
   * The worker's consider() (src/worker/worker.ts): skip a job it may not
   * take or that is fully claimed; probe its inputs (modelled: one round trip
   * at a link latency), wait a random spread that grows with how contested
   * the job is, check again, build. A worker builds one job at a time; jobs
   * heard while busy wait, first come first served (the real worker's fair
   * queue goes round-robin over requesters).
   */
  const consider = (w: number, j: Job): void => {
    const st = workers[w]!
    if (!countsAsBuilder(j.signed.job.builders, nodeKey(w).did) || j.builds.has(w)) return
    if (st.busy) { st.pending.push(j); return }
    if (taken(w, j, q.now) >= replicas) return
    st.busy = true
    const probeMs = 2 * latency(jitterRng)
    q.at(q.now + probeMs, () => {
      const spreadMs = Math.min(CLAIM_JITTER_MAX_MS, 50 + 150 * taken(w, j, q.now))
      // the claim order (PROTOCOL.md §7 rule 4), in both versions: the worker's own code
      const orderMs = o.claimOrder === false ? 0 : claimOrderWaitMs(claimOrder({ jobId: j.signed.jobId, builders: j.signed.job.builders }, nodeKey(w).did), replicas)
      q.at(q.now + orderMs + Math.floor(jitterRng.next() * spreadMs), () => {
        if (taken(w, j, q.now) >= replicas) { st.busy = false; pump(w); return }
        startBuild(w, j)
      })
    })
  }

  const pump = (w: number): void => {
    const st = workers[w]!
    while (!st.busy && st.pending.length > 0) consider(w, st.pending.shift()!)
  }

  const startBuild = (w: number, j: Job): void => {
    const t = q.now
    const end = t + j.baseMs * buildRng.lognormal(1, 0.1)
    const b: Build = { worker: w, start: t, end, seen: new Set(), revealed: false }
    j.builds.set(w, b)
    // v1: a 30 s lease renewed every 10 s; v1.1: protocol's leaseFor the
    // expected build time (PROTOCOL.md §7 rule 1; a worker that built the
    // environment before, so it expects the build's own length)
    const timing = v11 ? leaseFor(j.baseMs) : { leaseMs: LEASE_MS, renewMs: LEASE_RENEW_MS }
    const interval = timing.renewMs
    const lease = timing.leaseMs
    const list: Array<{ claim: Claim, at: number }> = []
    j.claims.set(w, list)
    // the claim is signed and validated for real; its renewals are the same
    // claim with a later issuedAt, leaseUntil and seq (same field widths, so
    // the same size), made now with the times they will carry, unsigned (a
    // signature costs 0.75 ms here and renewals outnumber everything else):
    // a node's view of each still depends on when it reaches that node
    const first = claimMessage(w, j.signed, t, lease, 1)
    validation.check('claim', first.bytes, t)
    const size = first.bytes.length + (v11 ? EXPECTED_FIELD_BYTES : 0)
    for (let at = t, seq = 1; at < end; at += interval, seq++) {
      const claim: Claim = seq === 1 ? first.claim : { ...first.claim, issuedAt: iso(wall(at)), leaseUntil: iso(wall(at) + lease), seq }
      list.push({ claim, at })
      publish('claim', j.cache, j.shard, w, size, at)
    }
    // commitments already made by others reach this late starter too
    if (v11) for (const other of j.builds.values()) if (other.committedAt !== undefined) seeCommit(j, other.worker, w)
    q.at(end, () => {
      workers[w]!.busy = false
      if (v11) commit(j, b)
      else reveal(j, b)
      pump(w)
    })
  }

  /** v1.1: the commitment goes out on the job's shard; the worker reveals once `replicas` are seen or its window ends */
  const commit = (j: Job, b: Build): void => {
    b.committedAt = q.now
    b.seen.add(b.worker)
    const bytes = commitmentMessage(b.worker, j.signed, q.now)
    validation.check('commitment', bytes, q.now, nodeKey(b.worker))
    publish('commitment', j.cache, j.shard, b.worker, bytes.length, q.now)
    for (const other of j.builds.values()) if (other.worker !== b.worker) seeCommit(j, b.worker, other.worker)
    q.at(q.now + j.cache.arrival(b.worker, j.requester), () => { j.commitsAtRequester.set(b.worker, q.now) })
    maybeReveal(j, b)
    q.at(q.now + (o.commitWindowMs ?? revealWaitMs(b.end - b.start)), () => { if (!b.revealed) reveal(j, b) })
  }

  const seeCommit = (j: Job, from: number, to: number): void => {
    const b = j.builds.get(to)!
    q.at(j.builds.get(from)!.committedAt! + j.cache.arrival(from, to), () => {
      b.seen.add(from)
      maybeReveal(j, b)
    })
  }

  /**
   * The real rule (PROTOCOL.md §8.3 rule 2): reveal once every other builder
   * whose claim has reached this worker has committed (its commitment seen
   * here), after REVEAL_MARGIN_MS; the cap (revealWaitMs of the build time)
   * is armed in commit(). A builder whose claim has not arrived yet is not
   * waited for, as a real worker cannot know of it.
   */
  const maybeReveal = (j: Job, b: Build): void => {
    if (b.committedAt === undefined || b.revealed || b.revealing) return
    const known = [...j.builds.values()].filter(o => o.worker !== b.worker && o.start + j.cache.arrival(o.worker, b.worker) <= q.now)
    if (known.some(o => !b.seen.has(o.worker))) return
    b.revealing = true
    q.at(q.now + revealMarginMs, () => { if (!b.revealed) reveal(j, b) })
  }

  /** the attestation goes out; the requester counts it (v1.1: only if its commitment came before any reveal) */
  const reveal = (j: Job, b: Build): void => {
    b.revealed = true
    const bytes = attestationMessage(b.worker, j.signed, b.start, b.end)
    const decoded = validation.check('attestation', bytes, q.now)
    if (decoded?.kind !== 'attestation') throw new Error('an attestation did not decode as one')
    const att = decoded.value
    publish('attestation', j.cache, j.shard, b.worker, bytes.length, q.now)
    j.attests.push({ worker: b.worker, did: att.claim.worker, at: q.now })
    q.at(q.now + j.cache.arrival(b.worker, j.requester), () => {
      if (v11) {
        j.firstRevealAtRequester ??= q.now
        const committed = j.commitsAtRequester.get(b.worker)
        // §8.3 rule 3: before the first reveal, by COMMITMENT_LEAD_MS
        if (committed === undefined || j.firstRevealAtRequester - committed < COMMITMENT_LEAD_MS) { lateAttestations++; return }
      }
      j.counted.push(att)
      if (j.acceptedAt === undefined && evaluateVerdict(policies[j.requester]!, j.signed.job.buildId, j.counted, { jobId: j.signed.jobId }).status === 'accepted') {
        j.acceptedAt = q.now
      }
    })
  }

  const submit = (t: number): void => {
    const index = jobs.length
    const requester = jobRng.int(requesterCount)
    const builders = trustOf[requester]!
    const signed = jobMessage(nodeKey(requester), index, t, replicas, builders.map(i => nodeKey(i).did), 3_600_000)
    validation.check('job', signed.bytes, t)
    const shard = v11 ? shardOf(signed.job.buildId, shardCount) : 0
    const j: Job = {
      index,
      signed,
      requester,
      submittedAt: t,
      shard,
      cache: cacheFor(shard),
      baseMs: Math.min(1_800_000, Math.max(5_000, jobRng.lognormal((o.buildMedianS ?? 60) * 1000, o.buildSigma ?? 0.8))),
      claims: new Map(),
      attests: [],
      builds: new Map(),
      counted: [],
      commitsAtRequester: new Map()
    }
    jobs.push(j)
    publish('job', j.cache, shard, requester, signed.bytes.length, t)
    for (const w of builders) {
      const arrival = j.cache.arrival(requester, w)
      // a builder off the job's shard never hears it
      if (arrival !== Infinity) q.at(t + arrival, () => { consider(w, j) })
    }
  }

  for (let t = jobRng.exp(1000 / o.jobsPerS); t < endMs; t += jobRng.exp(1000 / o.jobsPerS)) {
    const at = t
    q.at(at, () => { submit(at) })
  }

  if (v11) {
    // adverts: each worker every advertEveryMs from a random phase, published by
    // fanout into the requesters' topic; only their load matters, so they are
    // counted, not simulated as events. Signatures: the first 64 workers' are
    // made and validated for real, the rest counted at their mean size (the
    // payloads differ only in the key and the shard numbers).
    const advertMesh = buildMesh('adverts', everyone.filter(i => !isWorker(i)), o.nodes, degree, meshRng, latency)
    const advertCache = new FloodCache(advertMesh, load, hopMs)
    const advertRng = new Rng(o.seed, 'adverts')
    const sizes: number[] = []
    for (let w = requesterCount; w < o.nodes; w++) {
      for (let t = advertRng.next() * advertEveryMs; t <= endMs; t += advertEveryMs) {
        let size: number
        if (sizes.length < 64) {
          const bytes = advertMessage(w, workers[w]!.shards, t)
          validation.check('advert', bytes, t, nodeKey(w))
          size = bytes.length
          sizes.push(size)
        } else {
          size = Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length)
        }
        messageBytes.advert ??= size
        if (!inWindow(t)) continue
        published.advert = (published.advert ?? 0) + 1
        advertCache.count(w, size)
      }
    }
    advertCache.flush()
  }

  // arrivals end at `seconds`; what is under way then runs to its end (bounded, in case)
  q.run(endMs + 3 * 3_600_000)
  for (const c of caches) c.flush()

  const windowS = (endMs - warmMs) / 1000
  const perS = (xs: Float64Array, pick: (i: number) => boolean = () => true): number[] => [...xs].filter((_, i) => pick(i)).map(x => x / windowS)
  const qs = (xs: number[]): Quantiles => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) })
  const measured = jobs
  const times = measured.filter(j => j.acceptedAt !== undefined).map(j => j.acceptedAt! - j.submittedAt)
  const builds = measured.reduce((s, j) => s + j.builds.size, 0)
  const duplicates = measured.reduce((s, j) => s + Math.max(0, j.builds.size - replicas), 0)
  const validateMs = validation.cpuMsPerMessage()
  const unique = qs(perS(load.unique, isWorker))
  return {
    nodes: o.nodes,
    version: o.version,
    workers: workerCount,
    requesters: requesterCount,
    jobs: measured.length,
    windowS,
    messagesPerS: qs(perS(load.messages, isWorker)),
    bytesPerS: qs(perS(load.bytes, isWorker)),
    uniquePerS: unique,
    requesterMessagesPerS: quantile(perS(load.messages, i => !isWorker(i)), 0.5),
    validateCoreShare: unique.p50 * validateMs / 1000,
    validateMsPerMessage: validateMs,
    timeToK: qs(times),
    accepted: times.length,
    duplicateBuildsPerJob: duplicates / Math.max(1, measured.length),
    duplicateShare: duplicates / Math.max(1, builds),
    builds,
    lateAttestations,
    unservable: jobs.filter(j => trustOf[j.requester]!.filter(w => j.cache.mesh.local[w]! >= 0).length < k).length,
    published,
    messageBytes,
    elapsedMs: performance.now() - started,
    detail: { unique: load.unique, shardsOf: workers.map(w => w.shards), publishedPerShard, meshOf: (s: number) => meshes[v11 ? s : 0]! }
  }
}
