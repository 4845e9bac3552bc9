import { mkdtemp, chmod, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { probeSandbox, runSandboxed, sandboxScratchRoot } from '../src/sandbox/index.ts'
import { worker } from '../src/worker/worker.ts'
import { pin } from '../src/store/pin.ts'
import { LEASE_MS } from '../protocol/index.ts'
import type { SandboxTier } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { CliError } from './errors.ts'
import { rebuildOptions, volunteerPolicy } from './worker-options.ts'
import type { DaemonContext } from './daemon.ts'

const log = logger('concur:worker')

export class NoSandboxError extends CliError {
  constructor (remedy: string) {
    super(`refusing to run as a worker: no safe sandbox on this machine.\n${remedy}`, 'ERR_CONFIG', 78)
    this.name = 'NoSandboxError'
  }
}

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

export function workerExtension (values: Record<string, unknown>) {
  return async (ctx: DaemonContext): Promise<void> => {
    const policy = volunteerPolicy(ctx.config.worker, values)
    // inputs are written by this process and read by the sandbox's unprivileged
    // uid: a volunteer's umask 077 would make them unreadable (and it must not
    // change what a build sees). Secrets are written with explicit modes.
    process.umask(0o022)
    const probe = await probeSandbox({ allowWeakTier: policy.minTier === 'namespaces' })
    const tier = probe.tier as SandboxTier | null
    if (tier == null) throw new NoSandboxError(probe.remedy ?? 'install bubblewrap: apt-get install bubblewrap')
    // builds run as an unprivileged uid: the work dir must be searchable by it,
    // and it lives outside the home so the build can never see the keys
    const scratch = await sandboxScratchRoot()
    await sweepStaleWorkDirs(scratch)
    const workDir = await mkdtemp(join(scratch, `work-${process.pid}-`))
    await chmod(workDir, 0o711)
    const w = worker({
      key: ctx.identity.signing,
      peerId: ctx.identity.peerId,
      policy,
      tier,
      workDir,
      tamperOutput: values['tamper-output'] === true,
      rebuild: rebuildOptions(values),
      onEvent: (e) => { ctx.events.emit({ ...e, worker: ctx.identity.signing.did }) }
    })({
      gossip: ctx.peer.gossip,
      records: ctx.records,
      datastore: ctx.stores.datastore,
      claims: ctx.claims,
      blockstore: ctx.peer.helia.blockstore,
      pin: async (cid, options) => { await pin(ctx.peer.helia.pins, cid, options) },
      runSandboxed: async (spec, options) => await runSandboxed(spec, options)
    })
    ctx.router.on('GET', '/v1/worker', async () => ({ tier, policy, probe, running: w.running() }))
    ctx.onStop(async () => {
      await w.stop()
      await rm(workDir, { recursive: true, force: true })
    })
    await w.start()

    // job catch-up (src/net/job-sync.ts): ask every peer we connect to, and two
    // random peers each lease period, for open jobs we may have missed
    const pull = (peer: PeerId): void => {
      void ctx.jobSync.pullFrom(peer).then(
        (r) => { if (r.jobs > 0) log('job catch-up from %p: %d jobs, %d claims', peer, r.jobs, r.claims) },
        (err: Error) => { log('job catch-up from %p failed: %s', peer, err.message) })
    }
    const onConnect = (evt: CustomEvent<PeerId>): void => { pull(evt.detail) }
    ctx.peer.libp2p.addEventListener('peer:connect', onConnect)
    for (const c of ctx.peer.libp2p.getConnections()) pull(c.remotePeer)
    const timer = setInterval(() => { void ctx.jobSync.pull({ maxPeers: 2 }).catch(() => {}) }, LEASE_MS)
    timer.unref()
    ctx.onStop(() => {
      clearInterval(timer)
      ctx.peer.libp2p.removeEventListener('peer:connect', onConnect)
    })
  }
}
