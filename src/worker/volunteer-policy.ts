import type { SandboxTier, SignedJob } from '../../protocol/index.ts'
import { tierAtLeast } from '../../protocol/index.ts'

/** What a volunteer offers: ceilings per build, whom it serves, what it runs. */
export interface VolunteerPolicy {
  maxConcurrent: number
  memoryBytes: number
  cpus: number
  diskBytes: number
  wallSeconds: number
  processes: number
  /** did:keys of requesters served; empty means anyone */
  requesters: string[]
  environments: Array<'host' | 'rootfs'>
  /** the weakest sandbox this volunteer accepts to run builds in */
  minTier: SandboxTier
  /**
   * Caps of each input fetch (the source, the rootfs): file bytes written,
   * entries created, bytes of DAG structure read (directories, HAMT shards,
   * file nodes). A DAG is addressed by hash and
   * can link one block any number of times, so a tiny DAG can name millions of
   * files: entries and directory bytes are counted per visit (see
   * src/content/export-directory.ts). Over a cap the job is abandoned, never
   * attested.
   */
  maxInputBytes: number
  maxInputEntries: number
  maxInputDirectoryBytes: number
}

export type PolicyDecision =
  | { accept: true, parallelism: number }
  | { accept: false, reason: string }

const MiB = 1024 * 1024

/**
 * Decide whether this volunteer runs a job. A job that asks for more than the
 * volunteer allows is declined as a whole: a build squeezed below what it
 * asked for would fail or differ, and a half-run build helps nobody.
 */
export function decideJob (job: SignedJob, policy: VolunteerPolicy, tier: SandboxTier | null): PolicyDecision {
  const { resources, requester, definition } = job.job
  if (tier == null) return { accept: false, reason: 'no usable sandbox on this machine' }
  if (!tierAtLeast(tier, policy.minTier)) {
    return { accept: false, reason: `sandbox tier ${tier} is below the volunteer's minimum ${policy.minTier}` }
  }
  if (policy.requesters.length > 0 && !policy.requesters.includes(requester)) {
    return { accept: false, reason: `requester ${requester} is not on this volunteer's list` }
  }
  if (!policy.environments.includes(definition.environment.kind)) {
    return { accept: false, reason: `environment ${definition.environment.kind} is not offered` }
  }
  const over: string[] = []
  if (resources.memoryBytes > policy.memoryBytes) over.push(`memory ${Math.ceil(resources.memoryBytes / MiB)} MiB > ${Math.floor(policy.memoryBytes / MiB)} MiB`)
  if (resources.cpus > policy.cpus) over.push(`cpus ${resources.cpus} > ${policy.cpus}`)
  if (resources.diskBytes > policy.diskBytes) over.push(`disk ${Math.ceil(resources.diskBytes / MiB)} MiB > ${Math.floor(policy.diskBytes / MiB)} MiB`)
  if (resources.wallSeconds > policy.wallSeconds) over.push(`wall time ${resources.wallSeconds} s > ${policy.wallSeconds} s`)
  if (resources.processes > policy.processes) over.push(`processes ${resources.processes} > ${policy.processes}`)
  if (over.length > 0) return { accept: false, reason: `asks for more than this volunteer allows: ${over.join(', ')}` }
  // the build dir is a tmpfs whose pages count against the memory cgroup
  if (resources.diskBytes > resources.memoryBytes) {
    return { accept: false, reason: `disk ask ${resources.diskBytes} exceeds memory ask ${resources.memoryBytes} (tmpfs counts against memory)` }
  }
  return { accept: true, parallelism: Math.max(1, Math.floor(resources.cpus)) }
}
