/**
 * A worker (src/worker/worker.ts) in the test process, on fakes: a record
 * store that is a Map, a gossip that records what is published, an in-memory
 * block store that plays the network (a block it does not hold never arrives:
 * `get` waits until it is aborted, as a bitswap want no peer answers does),
 * and a sandbox whose builds end when the test says so. Nothing is timed:
 * a test waits on the worker's events and on what it published.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import type { CID } from 'multiformats/cid'
import { createJobAnnouncement, decodeAttestation, decodeClaim, generateSigningKey } from '../../protocol/index.ts'
import type { BuildDefinition, JobInput, SignedAttestation, SignedClaim, SignedJob, SigningKey } from '../../protocol/index.ts'
import { ClaimBook } from '../../src/store/claim-book.ts'
import { worker } from '../../src/worker/worker.ts'
import type { Worker, WorkerComponents, WorkerEvent, WorkerInit } from '../../src/worker/worker.ts'
import type { VolunteerPolicy } from '../../src/worker/volunteer-policy.ts'
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/types.ts'
import { tempDir } from '../helpers/processes.ts'

const MiB = 1024 * 1024

export const POLICY: VolunteerPolicy = {
  maxConcurrent: 1,
  memoryBytes: 1024 * MiB,
  cpus: 1,
  diskBytes: 512 * MiB,
  wallSeconds: 600,
  processes: 256,
  requesters: [],
  environments: ['host', 'rootfs'],
  minTier: 'namespaces',
  maxInputBytes: 64 * MiB,
  maxInputEntries: 10_000,
  maxInputDirectoryBytes: 16 * MiB
}

/** a block store that is also "the network": what it does not hold never comes */
export class NetworkBlockstore extends MemoryBlockstore {
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    if (!(await this.has(cid))) {
      const signal = options?.signal
      await new Promise<void>((resolve, reject) => {
        if (signal == null) return
        if (signal.aborted) { reject(signal.reason); return }
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })
    }
    yield * super.get(cid, options)
  }
}

class FakeRecords extends TypedEventEmitter<{ 'job:stored': CustomEvent<SignedJob> }> {
  private readonly held = new Map<string, SignedJob>()
  readonly atts: SignedAttestation[] = []

  add (job: SignedJob): void {
    this.held.set(job.jobId, job)
    this.safeDispatchEvent('job:stored', { detail: job })
  }

  jobs (): SignedJob[] { return [...this.held.values()] }
  getJob (jobId: string): SignedJob | undefined { return this.held.get(jobId) }
  attestations (buildId?: string): SignedAttestation[] { return this.atts.filter(a => buildId == null || a.claim.buildId === buildId) }
}

export interface InProcessWorker {
  worker: Worker
  key: SigningKey
  blockstore: NetworkBlockstore
  records: FakeRecords
  events: WorkerEvent[]
  /** every claim the worker published, in order */
  claims: SignedClaim[]
  /** every attestation the worker published, in order */
  attestations: SignedAttestation[]
  /** jobs claimed, in order of their first claim (a lease renewal is not a new start; a release is no claim of a slot) */
  claimedJobs: () => string[]
  /** builds waiting in the fake sandbox; `finish()` ends the oldest */
  inSandbox: () => number
  finish: () => void
  /** resolves when `ok()` holds, checked after every event and publish; rejects after `timeoutMs` saying what it waited for */
  until: (ok: () => boolean, what: string, timeoutMs?: number) => Promise<void>
}

export async function inProcessWorker (opts: { policy?: Partial<VolunteerPolicy>, init?: Partial<WorkerInit> } = {}): Promise<InProcessWorker> {
  const key = generateSigningKey()
  const blockstore = new NetworkBlockstore()
  const records = new FakeRecords()
  const events: WorkerEvent[] = []
  const claims: SignedClaim[] = []
  const attestations: SignedAttestation[] = []
  const waiting: Array<(r: SandboxResult) => void> = []
  const watchers = new Set<() => void>()
  const poke = (): void => { for (const w of watchers) w() }

  const components: WorkerComponents = {
    gossip: {
      publish: async (kind, bytes) => {
        if (kind === 'claim') claims.push(decodeClaim(bytes, { now: opts.init?.now?.() ?? Date.now() }))
        if (kind === 'attestation') attestations.push(decodeAttestation(bytes, { now: opts.init?.now?.() ?? Date.now() }))
        poke()
        return { recipients: 0 }
      }
    },
    records: records as unknown as WorkerComponents['records'],
    datastore: new MemoryDatastore(),
    claims: new ClaimBook(),
    blockstore,
    pin: async () => {},
    runSandboxed: async (_spec: SandboxSpec, options) => await new Promise<SandboxResult>((resolve) => {
      const done = (r: SandboxResult): void => { resolve(r) }
      waiting.push(done)
      options?.signal?.addEventListener('abort', () => { done({ ...FAILED, reason: 'aborted' }) }, { once: true })
      poke()
    })
  }
  const w = worker({
    key,
    peerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    policy: { ...POLICY, ...opts.policy },
    tier: 'namespaces+cgroups',
    workDir: await tempDir('concur-inproc-worker-'),
    onEvent: (e) => { events.push(e); poke() },
    ...opts.init
  })(components)

  return {
    worker: w,
    key,
    blockstore,
    records,
    events,
    claims,
    attestations,
    claimedJobs: () => [...new Set(claims.filter(c => c.claim.release == null).map(c => c.claim.jobId))],
    inSandbox: () => waiting.length,
    finish: () => { waiting.shift()?.(FAILED) },
    until: async (ok, what, timeoutMs = 20_000) => {
      if (ok()) return
      await new Promise<void>((resolve, reject) => {
        const check = (): void => { if (ok()) { cleanup(); resolve() } }
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${what}`)) }, timeoutMs)
        const cleanup = (): void => { clearTimeout(timer); watchers.delete(check) }
        watchers.add(check)
      })
    }
  }
}

/** what the fake sandbox answers: the build ran and failed (attested as a failure, which is all a scheduling test needs) */
const FAILED: SandboxResult = { exitCode: 1, signal: null, reason: 'exited', log: Buffer.from('fake build\n'), logTruncated: false, durationMs: 1, oomKilled: false, pidsLimitHit: false, cgroupPaths: [], tier: 'namespaces+cgroups' }

/**
 * A job of `key` that this worker's policy accepts; `n` makes its build (and
 * so its id) differ; `ask` overrides the announcement's own fields (replicas,
 * resources, vary, builders).
 */
export function jobOf (key: SigningKey, source: string, n: number, def: Partial<BuildDefinition> = {}, ask: Partial<Pick<JobInput, 'replicas' | 'resources' | 'vary' | 'builders'>> = {}): SignedJob {
  const t = Date.now()
  return createJobAnnouncement({
    definition: {
      version: 1,
      source,
      environment: { kind: 'host', platform: 'linux/amd64' },
      command: ['sh', '-c', `echo ${n}`],
      env: { SOURCE_DATE_EPOCH: '1700000000' },
      output: 'out',
      ...def
    },
    requester: key.did,
    replicas: 1,
    resources: { memoryBytes: 64 * MiB, cpus: 1, diskBytes: 16 * MiB, wallSeconds: 60, processes: 64 },
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + 3 * 3_600_000).toISOString(),
    ...ask
  }, key)
}
