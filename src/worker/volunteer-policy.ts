import type { ResourceAsk, SandboxTier, SignedJob } from '../../protocol/index.ts'
import { tierAtLeast } from '../../protocol/index.ts'
import { INSTALL_FAKETIME, INSTALL_TASKSET } from '../sandbox/host-tools.ts'

/** What a volunteer offers: ceilings per build, whom it serves, what it runs. */
export interface VolunteerPolicy {
  maxConcurrent: number
  memoryBytes: number
  cpus: number
  diskBytes: number
  wallSeconds: number
  processes: number
  /**
   * Admission: the did:keys of requesters served; empty means anyone (the
   * default). See admits. Serving "whoever a key I trust vouches for" needs
   * a signed vouching statement that the protocol does not have yet.
   */
  requesters: string[]
  /**
   * Builds of one requester under way at once. Unset: maxConcurrent - 1, at
   * least 1 (perRequesterLimits), so with two slots or more one requester
   * never holds them all and another requester's job finds one free; with a
   * single slot the round-robin of src/worker/fair-queue.ts gives it the
   * next turn instead.
   */
  maxPerRequester?: number
  /**
   * Builds of one requester started in any hour. Unset:
   * DEFAULT_MAX_PER_REQUESTER_PER_HOUR. What one key, whatever it announces,
   * can take of a volunteer's machine when nobody else is asking.
   */
  maxPerRequesterPerHour?: number
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
  /**
   * Whether this machine can run a build with its clock moved (libfaketime,
   * the sandbox probe's clockOffset mechanism): a capability found at start,
   * not a setting; node/worker-service.ts sets it from the probe. Unset:
   * cannot, and jobs asking `vary: ['clock']` are declined.
   */
  canVaryClock?: boolean
  /**
   * Capabilities for the other variations, found the same way (the probe's
   * hostname / timezone / cpuAffinity mechanisms). cpusForVariation: how
   * many CPUs this worker can pin a build to (its own affinity mask), 0 or
   * unset when it cannot (no taskset).
   */
  canVaryHostname?: boolean
  canVaryTimezone?: boolean
  cpusForVariation?: number
}

export type PolicyDecision =
  | { accept: true, parallelism: number }
  | { accept: false, reason: string }

const MiB = 1024 * 1024

/**
 * Default builds started per requester per hour: 120, two a minute. More
 * than a busy project's CI asks of one volunteer (a slot finishes 6 builds an
 * hour that run to the default 600 s wall limit), while a key announcing
 * thousands of jobs is held to a steady trickle.
 */
export const DEFAULT_MAX_PER_REQUESTER_PER_HOUR = 120

/** The per-requester limits in effect: the policy's, or their defaults (see VolunteerPolicy). */
export function perRequesterLimits (policy: Pick<VolunteerPolicy, 'maxConcurrent' | 'maxPerRequester' | 'maxPerRequesterPerHour'>): { maxPerRequester: number, maxPerRequesterPerHour: number } {
  return {
    maxPerRequester: policy.maxPerRequester ?? Math.max(1, policy.maxConcurrent - 1),
    maxPerRequesterPerHour: policy.maxPerRequesterPerHour ?? DEFAULT_MAX_PER_REQUESTER_PER_HOUR
  }
}

/**
 * Admission: whether this volunteer builds for `requester` at all. Anyone
 * when the list is empty (the default: a volunteer gives to the network),
 * else only the listed keys. Who is admitted still shares the machine by
 * the per-requester limits and the round-robin (src/worker/fair-queue.ts).
 */
export function admits (policy: Pick<VolunteerPolicy, 'requesters'>, requester: string): boolean {
  return policy.requesters.length === 0 || policy.requesters.includes(requester)
}

/**
 * The parallelism a worker builds a job with (MAKEFLAGS -j, CONCUR_JOBS, the
 * attestation's `parallelism`): the whole CPUs it asked for, at least one.
 * From the job, not the host, so two hosts build alike; and the top of the
 * CPU counts a job asking `vary: ['cpus']` may be given (cpusFor).
 */
export function jobParallelism (resources: Pick<ResourceAsk, 'cpus'>): number {
  return Math.max(1, Math.floor(resources.cpus))
}

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
  if (!admits(policy, requester)) {
    return { accept: false, reason: `requester ${requester} is not on this volunteer's list` }
  }
  if (!policy.environments.includes(definition.environment.kind)) {
    return { accept: false, reason: `environment ${definition.environment.kind} is not offered` }
  }
  // a build asked to run with a varied clock is never run with the real one:
  // its replicas would agree for the reason the requester wants ruled out
  if (job.job.vary?.includes('clock') === true && policy.canVaryClock !== true) {
    return { accept: false, reason: `the job asks replicas to vary the clock and this worker cannot (no libfaketime). ${INSTALL_FAKETIME}` }
  }
  // likewise hostname, timezone and CPU count: never built unvaried
  if (job.job.vary?.includes('hostname') === true && policy.canVaryHostname !== true) {
    return { accept: false, reason: 'the job asks replicas to vary the hostname and this worker cannot (its sandbox probe could not set one)' }
  }
  if (job.job.vary?.includes('timezone') === true && policy.canVaryTimezone !== true) {
    return { accept: false, reason: 'the job asks replicas to vary the timezone and this worker cannot (its tzdata lacks a zone it may owe). Install tzdata (apt-get install tzdata)' }
  }
  const parallelism = jobParallelism(resources)
  // a worker owes a count of 1..parallelism CPUs (cpusFor): it must be able to pin to any of them
  if (job.job.vary?.includes('cpus') === true && (policy.cpusForVariation ?? 0) < parallelism) {
    return {
      accept: false,
      reason: (policy.cpusForVariation ?? 0) === 0
        ? `the job asks replicas to vary the CPU count and this worker cannot (no taskset). ${INSTALL_TASKSET}`
        : `the job asks replicas to vary the CPU count up to ${parallelism} and this worker can pin builds to ${policy.cpusForVariation} CPU(s)`
    }
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
  return { accept: true, parallelism }
}
