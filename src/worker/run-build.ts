import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { logger } from '@libp2p/logger'
import type { AbortOptions } from '@libp2p/interface'
import { createAttestation, owedVariation } from '../../protocol/index.ts'
import type { AttestationClaim, BuildResult, BuildVariation, HostToolchain, SandboxTier, SignedAttestation, SignedJob, SigningKey } from '../../protocol/index.ts'
import { DEFAULT_PREFETCH_CONCURRENCY, addBytes, addDirectory, exportToDirectory } from '../content/index.ts'
import type { ExportOptions, FetchLimits, FetchProgress, ReadableBlockstore, SizeLimitUnit, WritableBlockstore } from '../content/index.ts'
import type { SandboxResult, SandboxSpec } from '../sandbox/types.ts'
import { BuildAbortedError, InputFetchError } from './errors.ts'
import { checkOutputTree } from './output-check.ts'
import type { EnvCache, EnvLease } from './env-cache.ts'

const log = logger('concur:worker:build')

export type BuildProgress =
  /** `progress`: how far the fetch is (reported while it runs, and once when complete) */
  | { stage: 'fetching', what: 'source' | 'rootfs', cid: string, progress?: FetchProgress }
  /** the rootfs is ready: `cached`, it was already on disk from an earlier job (nothing fetched or written) */
  | { stage: 'environment', cid: string, cached: boolean, ms: number }
  | { stage: 'building' }
  | { stage: 'importing' }
  | { stage: 'attesting', result: BuildResult }

export interface BuildComponents {
  blockstore: ReadableBlockstore & WritableBlockstore
  pin: (cid: CID, options?: AbortOptions) => Promise<void>
  runSandboxed: (spec: SandboxSpec, options?: AbortOptions) => Promise<SandboxResult>
  /** environments by CID, exported once and shared read-only (env-cache.ts); none or disabled: exported per job */
  envs?: Pick<EnvCache, 'acquire' | 'enabled'>
  /** inputs fetched by the DAG transfer first (several peers, one stream each); bitswap fetches what it leaves */
  transfer?: ExportOptions['transfer']
}

export interface BuildInit {
  job: SignedJob
  key: SigningKey
  peerId: string
  tier: SandboxTier
  parallelism: number
  workDir: string
  /** caps of each input fetch (the volunteer's maxInput* settings) */
  inputLimits: FetchLimits
  fetchTimeoutMs: number
  /** this host's toolchain, recorded in the attestation of a `host`-environment build (host-toolchain.ts) */
  host?: HostToolchain
  now?: () => number
  onProgress?: (p: BuildProgress) => void
  /**
   * Demos and adversary tests only: plant a file in the output before import,
   * as a malicious worker embedding code would. The attestation is still
   * honestly signed by this worker, so requesters see it as dissent.
   */
  tamperOutput?: boolean
}

/** How a volunteer raises each input cap (the message names it: the job is abandoned, the volunteer may want it). */
const INPUT_LIMIT_REMEDY: Record<SizeLimitUnit, string> = {
  bytes: 'a volunteer raises it with `concur daemon --worker --max-input-bytes SIZE` or "maxInputBytes" in config.json\'s "worker" section',
  entries: 'a volunteer raises it with `concur daemon --worker --max-input-entries N` or "maxInputEntries" in config.json\'s "worker" section',
  'directory-bytes': 'a volunteer raises it with `concur daemon --worker --max-input-dir-bytes SIZE` or "maxInputDirectoryBytes" in config.json\'s "worker" section'
}

function sandboxFailureReason (r: SandboxResult): string {
  switch (r.reason) {
    case 'wall-clock': return 'killed at the wall-clock limit'
    case 'memory': return 'killed by the memory limit (out of memory)'
    case 'setup-failed': return 'the sandbox could not be set up'
    case 'killed': return 'the sandbox died'
    case 'aborted': return 'aborted'
    default:
      if (r.pidsLimitHit) return `exited with status ${r.exitCode ?? 'none'} after hitting the process limit`
      return r.signal != null ? `killed by ${r.signal}` : `exited with status ${r.exitCode ?? 'none'}`
  }
}

/**
 * One build, end to end: fetch inputs by CID, run sandboxed, check and import
 * the output, store the log, sign the attestation. Success and failure are
 * both attested (a failure names its reason and carries the log CID); only a
 * missing input or an abort ends without an attestation.
 */
export async function runBuild (components: BuildComponents, init: BuildInit, options: AbortOptions = {}): Promise<SignedAttestation> {
  const { job, key } = init
  const def = job.job.definition
  const now = init.now ?? Date.now
  const jobDir = join(init.workDir, job.jobId)
  await rm(jobDir, { recursive: true, force: true })
  await mkdir(jobDir, { recursive: true })
  // the build runs as an unprivileged uid: it must be able to read its inputs
  await chmod(jobDir, 0o755)
  const srcDir = join(jobDir, 'src')
  const resultDir = join(jobDir, 'result')
  const startedAt = new Date(now()).toISOString()
  let envLease: EnvLease | undefined
  try {
    /** the input `cid` as a directory the build can read: `dir`, or for a rootfs the kept tree of its CID */
    const fetch = async (cid: string, dir: string, what: 'source' | 'rootfs'): Promise<string> => {
      init.onProgress?.({ stage: 'fetching', what, cid })
      const signal = AbortSignal.any([AbortSignal.timeout(init.fetchTimeoutMs), ...(options.signal != null ? [options.signal] : [])])
      const started = now()
      try {
        // a rootfs holds programs: older environments carry no modes, so its files are made executable
        const onFetchProgress = (progress: FetchProgress): void => { init.onProgress?.({ stage: 'fetching', what, cid, progress }) }
        const exportOptions = { signal, ...init.inputLimits, remedy: INPUT_LIMIT_REMEDY, prefetch: DEFAULT_PREFETCH_CONCURRENCY, onFetchProgress, ...(components.transfer != null ? { transfer: components.transfer } : {}), ...(what === 'rootfs' ? { fileMode: 0o755 } : {}) }
        let cached = false
        if (what === 'rootfs' && components.envs?.enabled === true) {
          // exported once per CID and shared read-only (the sandbox binds it so), not once per job
          envLease = await components.envs.acquire(components.blockstore, cid, exportOptions)
          cached = envLease.cached
          dir = envLease.path
        } else {
          await exportToDirectory(components.blockstore, CID.parse(cid), dir, exportOptions)
        }
        if (what === 'rootfs') init.onProgress?.({ stage: 'environment', cid, cached, ms: now() - started })
        return dir
      } catch (err) {
        // stopped by the worker (its own abort), not a fetch that timed out
        if (options.signal?.aborted === true) throw new BuildAbortedError()
        throw new InputFetchError(`could not fetch the ${what} ${cid}: ${signal.aborted ? `no peer delivered it within ${init.fetchTimeoutMs} ms` : (err as Error).message}`, { cause: err })
      }
    }
    await fetch(def.source, srcDir, 'source')
    const rootfsDir = def.environment.kind === 'rootfs' ? await fetch(def.environment.rootfs, join(jobDir, 'rootfs'), 'rootfs') : undefined

    init.onProgress?.({ stage: 'building' })
    const r = job.job.resources
    // vary (PROTOCOL.md §5.1): this worker's own clock offset, CPU count,
    // hostname and zone, each derived from its key and the job, so replicas
    // started together see different ones; recorded in the attestation,
    // where anyone can recompute them
    const variation: BuildVariation | undefined = owedVariation(job.job.vary, key.did, job.jobId, init.parallelism)
    const sandboxResult = await components.runSandboxed({
      argv: def.command,
      buildDir: srcDir,
      outputDir: resultDir,
      env: {
        ...def.env,
        // the parallelism is chosen per job (not per host) and signed into the
        // attestation, so two hosts with different core counts build alike
        CONCUR_JOBS: String(init.parallelism),
        MAKEFLAGS: `-j${init.parallelism}`
      },
      environment: rootfsDir != null ? { kind: 'rootfs', root: rootfsDir } : { kind: 'host' },
      limits: { memoryBytes: r.memoryBytes, cpus: r.cpus, diskBytes: r.diskBytes, wallSeconds: r.wallSeconds, processes: r.processes },
      tier: init.tier === 'vm' ? 'namespaces+cgroups' : init.tier,
      ...(variation?.clockOffsetSeconds != null ? { clockOffsetSeconds: variation.clockOffsetSeconds } : {}),
      ...(variation?.cpus != null ? { cpus: variation.cpus } : {}),
      ...(variation?.hostname != null ? { hostname: variation.hostname } : {}),
      ...(variation?.timezone != null ? { timezone: variation.timezone } : {})
    }, options)
    if (sandboxResult.reason === 'aborted' || options.signal?.aborted === true) {
      throw new BuildAbortedError()
    }

    init.onProgress?.({ stage: 'importing' })
    let result: BuildResult
    if (sandboxResult.reason === 'exited' && sandboxResult.exitCode === 0) {
      const checked = await checkOutputTree(resultDir, def.output)
      if (checked.ok) {
        if (init.tamperOutput === true) await writeFile(join(checked.path, 'INJECTED'), '#!/bin/sh\n# planted by a dishonest worker\n')
        const added = await addDirectory(components.blockstore, checked.path, { signal: options.signal })
        await components.pin(added.cid, options)
        result = { status: 'success', artifact: added.cid.toString(), exitCode: 0 }
      } else {
        result = { status: 'failure', exitCode: 0, reason: checked.reason }
      }
    } else {
      result = { status: 'failure', exitCode: sandboxResult.exitCode, reason: sandboxFailureReason(sandboxResult) }
    }
    const logBytes = sandboxResult.logTruncated
      ? Buffer.concat([Buffer.from('[concur: log truncated, tail kept]\n'), sandboxResult.log])
      : sandboxResult.log
    const logCid = await addBytes(components.blockstore, logBytes, { signal: options.signal })
    await components.pin(logCid, options)

    init.onProgress?.({ stage: 'attesting', result })
    const claim: AttestationClaim = {
      buildId: job.job.buildId,
      jobId: job.jobId,
      source: def.source,
      environment: def.environment,
      definition: def,
      worker: key.did,
      workerPeerId: init.peerId,
      sandboxTier: init.tier,
      parallelism: init.parallelism,
      startedAt,
      finishedAt: new Date(now()).toISOString(),
      result,
      log: logCid.toString(),
      ...(variation != null ? { variation } : {}),
      // a rootfs build's toolchain is named by its CID; a host build's is this machine's
      ...(def.environment.kind === 'host' && init.host != null ? { host: init.host } : {})
    }
    const att = createAttestation(claim, key)
    log('job %s: %s %s', job.jobId, result.status, result.status === 'success' ? result.artifact : result.reason)
    return att
  } finally {
    envLease?.release()
    await rm(jobDir, { recursive: true, force: true }).catch(() => {})
  }
}
