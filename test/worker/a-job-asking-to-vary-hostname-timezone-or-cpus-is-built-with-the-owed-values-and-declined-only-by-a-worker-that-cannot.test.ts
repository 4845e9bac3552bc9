/**
 * Issue 19: a job asking `vary: ['cpus', 'hostname', 'timezone']` is built by
 * each worker with the values it owes (owedVariation of its key and the job),
 * which its attestation records; a worker that cannot give one declines the
 * job instead of building it unvaried.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeAttestation, generateSigningKey, owedVariation } from '../../protocol/index.ts'
import type { JobVariation, SignedJob } from '../../protocol/index.ts'
import { addDirectory, DEFAULT_FETCH_LIMITS } from '../../src/content/index.ts'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { detectHostTools } from '../../src/sandbox/host-tools.ts'
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/types.ts'
import { runBuild } from '../../src/worker/run-build.ts'
import { decideJob } from '../../src/worker/volunteer-policy.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { sandboxTier } from '../sandbox/helpers.ts'
import { POLICY, jobOf } from './in-process-worker.ts'

const MiB = 1024 * 1024
const tools = await detectHostTools()
const requester = generateSigningKey()
const SOURCE = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'

function job (source: string, vary: JobVariation[] | undefined, cpus = 2): SignedJob {
  return jobOf(requester, source, 0, { command: ['sh', '-c', 'mkdir -p out && { uname -n; date +%z; nproc; } > out/seen && echo "seen=$(tr "\\n" " " < out/seen)"'] }, {
    replicas: 3,
    ...(vary != null ? { vary } : {}),
    resources: { memoryBytes: 256 * MiB, cpus, diskBytes: 64 * MiB, wallSeconds: 60, processes: 64 }
  })
}

describe('a job asking to vary the hostname, the timezone or the CPU count', () => {
  afterAll(cleanupAll)

  it('is built with owedVariation(vary, worker key, jobId, parallelism) and the attestation records exactly it', async () => {
    const blockstore = new MemoryBlockstore()
    const dir = await tempDir('concur-vary-src-')
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'src', 'README'), 'a build that writes what it sees\n')
    const source = (await addDirectory(blockstore, join(dir, 'src'))).cid.toString()
    const vary: JobVariation[] = tools.taskset != null ? ['cpus', 'hostname', 'timezone'] : ['hostname', 'timezone']
    const j = job(source, vary)
    const key = generateSigningKey()
    const workDir = await tempDir('concur-vary-work-')
    await chmod(workDir, 0o711)
    let seen: { spec: SandboxSpec, res: SandboxResult } | undefined
    const att = await runBuild({
      blockstore,
      pin: async () => {},
      runSandboxed: async (spec, options) => {
        const res = await runSandboxed(spec, options)
        seen = { spec, res }
        return res
      }
    }, { job: j, key, peerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', tier: await sandboxTier(), parallelism: 2, workDir, inputLimits: DEFAULT_FETCH_LIMITS, fetchTimeoutMs: 10_000 })
    const log = seen!.res.log.toString('utf8')
    expect(att.claim.result.status, log).toBe('success')
    const owed = owedVariation(vary, key.did, j.jobId, 2)!
    expect(seen!.spec).toMatchObject({ hostname: owed.hostname, timezone: owed.timezone, ...(owed.cpus != null ? { cpus: owed.cpus } : {}) })
    expect(seen!.spec.clockOffsetSeconds).toBeUndefined()
    expect(att.claim.variation).toEqual(owed)
    expect(decodeAttestation(att.bytes, { now: Date.now() }).claim.variation).toEqual(owed)
    // what the build saw: the owed hostname, a non-UTC offset, the owed CPU count
    const [host, offset, nproc] = (/^seen=(.*)$/m.exec(log)?.[1] ?? '').trim().split(' ')
    expect(host).toBe(owed.hostname)
    expect(offset).not.toBe('+0000')
    if (owed.cpus != null) expect(nproc).toBe(String(owed.cpus))
  })

  it('is declined by a worker that cannot give a variation, naming it; taken by one that can', () => {
    const can = { ...POLICY, cpus: 2, canVaryHostname: true, canVaryTimezone: true, cpusForVariation: 2 }
    const declined = (vary: JobVariation[] | undefined, policy: typeof can | typeof POLICY): string => {
      const d = decideJob(job(SOURCE, vary), policy, 'namespaces+cgroups')
      return d.accept ? 'accepted' : d.reason
    }
    expect(declined(['hostname'], { ...can, canVaryHostname: false })).toMatch(/vary the hostname/)
    expect(declined(['timezone'], { ...can, canVaryTimezone: false })).toMatch(/vary the timezone.*apt-get install tzdata/)
    expect(declined(['cpus'], { ...can, cpusForVariation: 0 })).toMatch(/vary the CPU count.*util-linux/)
    // a job of 2 CPUs may be owed 2: a worker that can pin to only 1 declines it
    expect(declined(['cpus'], { ...can, cpusForVariation: 1 })).toMatch(/up to 2 .* 1 CPU/)
    // the unset capabilities (an in-process worker with no probe) decline too
    expect(declined(['hostname'], { ...POLICY, cpus: 2 })).toMatch(/vary the hostname/)
    for (const vary of [['hostname'], ['timezone'], ['cpus'], ['cpus', 'hostname', 'timezone']] as JobVariation[][]) {
      expect(declined(vary, can), vary.join()).toBe('accepted')
    }
    // a job asking none is not affected by any of it
    expect(declined(undefined, { ...POLICY, cpus: 2 })).toBe('accepted')
  })
})
