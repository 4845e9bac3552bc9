import { describe, expect, it } from 'vitest'
import { decideJob } from '../../src/worker/volunteer-policy.ts'
import type { VolunteerPolicy } from '../../src/worker/volunteer-policy.ts'
import { generateSigningKey } from '../../protocol/index.ts'
import { exampleDefinition, signedJob } from '../helpers/fixtures.ts'
import { DEFAULT_FETCH_LIMITS } from '../../src/content/index.ts'
import { DEFAULT_WORKER } from '../../node/home.ts'
import { volunteerPolicy } from '../../node/worker-options.ts'

const MiB = 1024 * 1024
const policy: VolunteerPolicy = {
  maxConcurrent: 1,
  memoryBytes: 512 * MiB,
  cpus: 2,
  diskBytes: 256 * MiB,
  wallSeconds: 600,
  processes: 256,
  requesters: [],
  environments: ['host'],
  minTier: 'namespaces+cgroups',
  maxInputBytes: 1024 * MiB,
  maxInputEntries: 200_000,
  maxInputDirectoryBytes: 64 * MiB
}

describe('volunteer policy', () => {
  it('accepts a job within every ceiling and records the parallelism it will use', () => {
    expect(decideJob(signedJob(), policy, 'namespaces+cgroups')).toEqual({ accept: true, parallelism: 1 })
  })

  it('declines, with the reason, a job that asks for more than the volunteer allows', () => {
    const job = signedJob()
    const greedy = { ...job, job: { ...job.job, resources: { ...job.job.resources, memoryBytes: 4096 * MiB, wallSeconds: 7200 } } }
    const d = decideJob(greedy, policy, 'namespaces+cgroups')
    expect(d.accept).toBe(false)
    expect(d.accept === false && d.reason).toMatch(/memory 4096 MiB > 512 MiB.*wall time 7200 s > 600 s/)
  })

  it('declines requesters not on the list, environments not offered, and weaker sandboxes than required', () => {
    const job = signedJob()
    expect(decideJob(job, { ...policy, requesters: [generateSigningKey().did] }, 'namespaces+cgroups')).toMatchObject({ accept: false })
    expect(decideJob(job, { ...policy, requesters: [job.job.requester] }, 'namespaces+cgroups')).toMatchObject({ accept: true })
    const rootfsJob = signedJob({ definition: exampleDefinition({ environment: { kind: 'rootfs', rootfs: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', platform: 'linux-x64' } }) })
    expect(decideJob(rootfsJob, policy, 'namespaces+cgroups')).toMatchObject({ accept: false })
    expect(decideJob(job, policy, 'namespaces')).toMatchObject({ accept: false })
    expect(decideJob(job, policy, null)).toMatchObject({ accept: false })
  })

  it('input fetch caps: the defaults every fetch has, config.json\'s worker section, flags over both', () => {
    expect(DEFAULT_WORKER).toMatchObject({ maxInputBytes: DEFAULT_FETCH_LIMITS.maxBytes, maxInputEntries: DEFAULT_FETCH_LIMITS.maxEntries, maxInputDirectoryBytes: DEFAULT_FETCH_LIMITS.maxDirectoryBytes })
    const fromConfig = volunteerPolicy({ ...DEFAULT_WORKER, maxInputEntries: 500_000 }, {})
    expect(fromConfig).toMatchObject({ maxInputEntries: 500_000, maxInputDirectoryBytes: DEFAULT_FETCH_LIMITS.maxDirectoryBytes })
    const fromFlags = volunteerPolicy({ ...DEFAULT_WORKER, maxInputEntries: 500_000 }, { 'max-input-entries': '1000000', 'max-input-dir-bytes': '256M', 'max-input-bytes': '4G' })
    expect(fromFlags).toMatchObject({ maxInputEntries: 1_000_000, maxInputDirectoryBytes: 256 * MiB, maxInputBytes: 4096 * MiB })
    expect(() => volunteerPolicy(DEFAULT_WORKER, { 'max-input-entries': 'lots' })).toThrow(/--max-input-entries takes a positive number/)
  })
})
