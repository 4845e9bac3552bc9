/**
 * The worker role of a daemon, wired: the volunteer's policy from flags and
 * config, the sandbox probe (no safe sandbox: refuse to start), a private
 * work directory, the worker (src/worker) and job catch-up from peers.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, chmod, readdir, rm, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Helia } from '@helia/interface'
import type { PeerId, Startable, TypedEventTarget, Libp2pEvents } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { Datastore } from 'interface-datastore'
import { SandboxUnavailableError, allowedCpus, probeSandbox, runSandboxed, sandboxScratchRoot } from '../src/sandbox/index.ts'
import type { SandboxProbe } from '../src/sandbox/index.ts'
import { worker } from '../src/worker/worker.ts'
import type { Worker, WorkerComponents, WorkerEvent } from '../src/worker/worker.ts'
import { perRequesterLimits } from '../src/worker/volunteer-policy.ts'
import type { VolunteerPolicy } from '../src/worker/volunteer-policy.ts'
import type { JobSync } from '../src/net/job-sync.ts'
import { pin } from '../src/store/pin.ts'
import { ADVERT_RENEW_MS, LEASE_MS } from '../protocol/index.ts'
import { noteAdvert, scheduleAdvert, workerAdvert } from '../src/worker/advert.ts'
import type { ConcurGossip } from '../src/net/gossip.ts'
import type { SandboxTier, SigningKey } from '../protocol/index.ts'
import type { NodeConfig } from './home.ts'
import { envCacheBytes, fetchTimeoutMs, rebuildOptions, volunteerPolicy } from './worker-options.ts'
import { EnvCache } from '../src/worker/env-cache.ts'
import { readHostToolchain } from '../src/worker/host-toolchain.ts'
import type { EnvEntry } from '../src/worker/env-cache.ts'

const log = logger('concur:worker')

/**
 * Work directories of workers that died without cleaning up (SIGKILL, OOM,
 * power loss) hold a job's fetched inputs and outputs: a worker made to
 * crash again and again would fill the disk with them. Each is named after
 * its worker's pid; those whose process is gone are removed at start.
 */
async function sweepStaleWorkDirs (scratch: string): Promise<void> {
  for (const name of await readdir(scratch).catch(() => [] as string[])) {
    const m = /^work-(\d+)-/.exec(name)
    if (m?.[1] == null) continue
    const pid = Number(m[1])
    let alive = true
    try { process.kill(pid, 0) } catch (err) { alive = (err as NodeJS.ErrnoException).code === 'EPERM' }
    if (alive) continue
    log('removing the work directory of a worker that is gone: %s', name)
    await rm(join(scratch, name), { recursive: true, force: true }).catch(() => {})
  }
}

export interface WorkerServiceComponents extends Pick<WorkerComponents, 'records' | 'claims' | 'commitments'> {
  /** the worker's records, and the last advert it signed (kept across restarts) */
  datastore: WorkerComponents['datastore'] & Pick<Datastore, 'get'>
  /** shards: what its advert says it reads (PROTOCOL.md §5.4) */
  gossip: Pick<ConcurGossip, 'publish' | 'shards'>
  identity: { signing: SigningKey, peerId: string }
  config: Pick<NodeConfig, 'worker'>
  helia: Pick<Helia, 'blockstore' | 'pins'>
  jobSync: Pick<JobSync, 'pull' | 'pullFrom'>
  libp2p: TypedEventTarget<Libp2pEvents> & { getConnections: () => Array<{ remotePeer: PeerId }> }
  onEvent: (e: WorkerEvent) => void
  /** inputs by the DAG transfer first (see BuildComponents.transfer) */
  transfer?: WorkerComponents['transfer']
}

export interface WorkerInfo {
  tier: SandboxTier
  policy: VolunteerPolicy
  probe: SandboxProbe
  running: string[]
  /** build environments kept by CID (env-cache.ts), and the bound on their bytes (0: none kept) */
  environments: { maxBytes: number, entries: EnvEntry[] }
}

export class WorkerService implements Startable {
  private readonly values: Record<string, unknown>
  private readonly components: WorkerServiceComponents
  private worker: Worker | undefined
  private workDir: string | undefined
  private timer: ReturnType<typeof setInterval> | undefined
  private advertTimer: ReturnType<typeof setInterval> | undefined
  private stopped = false
  private state: Omit<WorkerInfo, 'running' | 'environments'> | undefined
  private envs: EnvCache | undefined

  constructor (values: Record<string, unknown>, components: WorkerServiceComponents) {
    this.values = values
    this.components = components
  }

  async start (): Promise<void> {
    this.stopped = false
    const c = this.components
    const given = volunteerPolicy(c.config.worker, this.values)
    // the per-requester limits in effect, defaults filled in, so GET /v1/worker shows what the worker enforces
    const policy: VolunteerPolicy = { ...given, ...perRequesterLimits(given) }
    // inputs are written by this process and read by the sandbox's unprivileged
    // uid: a volunteer's umask 077 would make them unreadable (and it must not
    // change what a build sees). Secrets are written with explicit modes.
    process.umask(0o022)
    const probe = await probeSandbox({ allowWeakTier: policy.minTier === 'namespaces' })
    const tier = probe.tier as SandboxTier | null
    if (tier == null) throw new SandboxUnavailableError('refusing to run as a worker: no safe sandbox on this machine.', probe.remedy ?? 'install bubblewrap: apt-get install bubblewrap')
    // a capability, found by the probe, never taken from config.json: without it jobs asking to vary the clock are declined
    policy.canVaryClock = probe.mechanisms.clockOffset.ok
    policy.canVaryHostname = probe.mechanisms.hostname.ok
    policy.canVaryTimezone = probe.mechanisms.timezone.ok
    policy.cpusForVariation = probe.mechanisms.cpuAffinity.ok ? (await allowedCpus()).length : 0
    // builds run as an unprivileged uid: the work dir must be searchable by it,
    // and it lives outside the home so the build can never see the keys
    const scratch = await sandboxScratchRoot()
    await sweepStaleWorkDirs(scratch)
    this.workDir = await mkdtemp(join(scratch, `work-${process.pid}-`))
    await chmod(this.workDir, 0o711)
    // one cache per worker key (several workers may share a machine and its
    // scratch root; none may evict what another is building in)
    const envDir = join(scratch, `envs-${createHash('sha256').update(c.identity.signing.did).digest('hex').slice(0, 16)}`)
    this.envs = new EnvCache({ dir: envDir, maxBytes: envCacheBytes(this.values) })
    await this.envs.start()
    this.worker = worker({
      key: c.identity.signing,
      peerId: c.identity.peerId,
      policy,
      tier,
      workDir: this.workDir,
      fetchTimeoutMs: fetchTimeoutMs(this.values),
      // recorded in its host-environment attestations, so requesters see what built them
      hostToolchain: await readHostToolchain(),
      tamperOutput: this.values['tamper-output'] === true,
      rebuild: rebuildOptions(this.values),
      onEvent: c.onEvent
    })({
      gossip: c.gossip,
      records: c.records,
      datastore: c.datastore,
      claims: c.claims,
      // commit, then reveal (PROTOCOL.md §8.3), unless the volunteer asked for a v1 worker
      ...(c.commitments != null && this.values['no-commit'] !== true ? { commitments: c.commitments } : {}),
      blockstore: c.helia.blockstore,
      pin: async (cid, options) => { await pin(c.helia.pins, cid, options) },
      runSandboxed: async (spec, options) => await runSandboxed(spec, options),
      envs: this.envs,
      ...(c.transfer != null ? { transfer: c.transfer } : {})
    })
    this.state = { tier, policy, probe }
    await this.worker.start()
    // job catch-up (src/net/job-sync.ts): ask every peer we connect to, and two
    // random peers each lease period, for open jobs we may have missed
    c.libp2p.addEventListener('peer:identify', this.onIdentify)
    for (const conn of c.libp2p.getConnections()) this.pull(conn.remotePeer)
    this.timer = setInterval(() => { void c.jobSync.pull({ maxPeers: 2 }).catch(() => {}) }, LEASE_MS)
    this.timer.unref()
    // what this worker would take (PROTOCOL.md §5.4): now (or, restarted
    // within a minute of its last advert, once the minute is out), and again
    // before it lapses
    const next = await scheduleAdvert(c.datastore, Date.now())
    // stopped while the schedule was read: no timer outlives the service
    if (this.stopped) return
    let seq = next.seq
    const advertise = async (): Promise<void> => {
      try {
        const signed = workerAdvert({ key: c.identity.signing, peerId: c.identity.peerId, policy, tier, shards: c.gossip.shards(), now: Math.max(Date.now(), next.at), seq: seq++ }) // a timer may fire a little early: never stamped before the minute is out
        await noteAdvert(c.datastore, signed)
        await c.gossip.publish('advert', signed.bytes)
      } catch (err) {
        // a policy the advert cannot state (e.g. a requester key not in canonical form), or a publish
        // with no peer: no advert this time, the worker still works
        log('no advert: %s', (err as Error).message)
      }
    }
    const renew = (): void => { void advertise() }
    this.advertTimer = setTimeout(() => {
      renew()
      this.advertTimer = setInterval(renew, ADVERT_RENEW_MS)
      this.advertTimer.unref()
    }, Math.max(0, next.at - Date.now()))
    this.advertTimer.unref()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer != null) clearInterval(this.timer)
    if (this.advertTimer != null) clearInterval(this.advertTimer)
    this.components.libp2p.removeEventListener('peer:identify', this.onIdentify)
    await this.worker?.stop()
    if (this.workDir != null) await rm(this.workDir, { recursive: true, force: true })
    // an environment cache that kept nothing is not left behind (a worker that never ran a rootfs job)
    if (this.envs != null && this.envs.list().length === 0) await rmdir(this.envs.dir).catch(() => {})
  }

  info (): WorkerInfo | null {
    return this.state == null ? null : { ...this.state, running: this.worker?.running() ?? [], environments: { maxBytes: this.envs?.maxBytes ?? 0, entries: this.envs?.list() ?? [] } }
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId }>): void => { this.pull(evt.detail.peerId) }

  private pull (peer: PeerId): void {
    void this.components.jobSync.pullFrom(peer).then(
      (r) => { if (r.jobs > 0) log('job catch-up from %p: %d jobs, %d claims', peer, r.jobs, r.claims) },
      (err: Error) => { log('job catch-up from %p failed: %s', peer, err.message) })
  }
}

export function workerService (values: Record<string, unknown>) {
  return (components: WorkerServiceComponents): WorkerService => new WorkerService(values, components)
}
