/**
 * Issue 19: replicas started within milliseconds agree on a build that
 * records the time. A job asking `vary: ['clock']` is built by each worker
 * with its own clock offset, clockOffsetFor(worker key, jobId), and the
 * attestation records it; a worker that cannot move the clock declines the
 * job instead of building it with the real one.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { clockOffsetFor, decodeAttestation, generateSigningKey } from '../../protocol/index.ts'
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
const NO_FAKETIME = tools.libfaketime == null ? 'libfaketime is not installed (apt-get install faketime)' : ''
const requester = generateSigningKey()

function job (source: string, vary?: JobVariation[]): SignedJob {
  return jobOf(requester, source, 0, { command: ['sh', '-c', 'mkdir -p out && date +%s > out/now && echo "now=$(cat out/now)"'] }, {
    replicas: 3,
    ...(vary != null ? { vary } : {}),
    resources: { memoryBytes: 256 * MiB, cpus: 1, diskBytes: 64 * MiB, wallSeconds: 60, processes: 64 }
  })
}

/** builds `j` with runBuild on a real sandbox; returns the attestation, the spec the sandbox got and the time the build read */
async function build (j: SignedJob, blockstore: MemoryBlockstore): Promise<{ att: Awaited<ReturnType<typeof runBuild>>, spec: SandboxSpec, now: number, before: number, after: number }> {
  const key = generateSigningKey()
  // the build runs as an unprivileged uid when the worker is root: it must reach its inputs (as node/worker-service.ts sets it)
  const workDir = await tempDir('concur-vary-clock-')
  await chmod(workDir, 0o711)
  let seen: { spec: SandboxSpec, res: SandboxResult } | undefined
  const before = Math.floor(Date.now() / 1000)
  const att = await runBuild({
    blockstore,
    pin: async () => {},
    runSandboxed: async (spec, options) => {
      const res = await runSandboxed(spec, options)
      seen = { spec, res }
      return res
    }
  }, {
    job: j,
    key,
    peerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    tier: await sandboxTier(),
    parallelism: 1,
    workDir,
    inputLimits: DEFAULT_FETCH_LIMITS,
    fetchTimeoutMs: 10_000
  })
  const after = Math.ceil(Date.now() / 1000)
  if (seen == null) throw new Error('the sandbox never ran')
  const log = seen.res.log.toString('utf8')
  expect(att.claim.result.status, log).toBe('success')
  expect(att.claim.worker).toBe(key.did)
  return { att, spec: seen.spec, now: Number(/^now=(\d+)$/m.exec(log)?.[1]), before, after }
}

async function source (blockstore: MemoryBlockstore): Promise<string> {
  const dir = await tempDir('concur-vary-clock-src-')
  await mkdir(join(dir, 'src'))
  await writeFile(join(dir, 'src', 'README'), 'a build that writes the time\n')
  return (await addDirectory(blockstore, join(dir, 'src'))).cid.toString()
}

describe('a job asking to vary the clock', () => {
  afterAll(cleanupAll)

  it.skipIf(NO_FAKETIME !== '')(`is built with clockOffsetFor(worker key, jobId) and the attestation records it (${NO_FAKETIME || 'libfaketime found'})`, async () => {
    const blockstore = new MemoryBlockstore()
    const j = job(await source(blockstore), ['clock'])
    const { att, spec, now, before, after } = await build(j, blockstore)
    const offset = clockOffsetFor(att.claim.worker, j.jobId)
    expect(spec.clockOffsetSeconds).toBe(offset)
    expect(now).toBeGreaterThanOrEqual(before + offset)
    expect(now).toBeLessThanOrEqual(after + offset)
    expect(att.claim.variation).toEqual({ clockOffsetSeconds: offset })
    // and it travels: the signed statement carries it, the decoder reads it back
    expect(att.statement.predicate.buildDefinition.internalParameters.variation).toEqual({ clockOffsetSeconds: offset })
    expect(decodeAttestation(att.bytes, { now: Date.now() }).claim.variation).toEqual({ clockOffsetSeconds: offset })
  })

  it('a job without vary is built with the real clock and its attestation records no variation', async () => {
    const blockstore = new MemoryBlockstore()
    const { att, spec, now, before, after } = await build(job(await source(blockstore)), blockstore)
    expect(spec.clockOffsetSeconds).toBeUndefined()
    expect(now).toBeGreaterThanOrEqual(before)
    expect(now).toBeLessThanOrEqual(after)
    expect(att.claim.variation).toBeUndefined()
    expect('variation' in att.statement.predicate.buildDefinition.internalParameters).toBe(false)
  })

  it('is declined, naming the remedy, by a worker that cannot vary the clock; taken by one that can; other jobs are not affected', () => {
    const source = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'
    const varied = job(source, ['clock'])
    const plain = job(source)
    for (const policy of [POLICY, { ...POLICY, canVaryClock: false }]) {
      const d = decideJob(varied, policy, 'namespaces+cgroups')
      expect(d.accept).toBe(false)
      expect(d.accept === false && d.reason).toMatch(/vary the clock.*apt-get install faketime/)
      expect(decideJob(plain, policy, 'namespaces+cgroups')).toMatchObject({ accept: true })
    }
    expect(decideJob(varied, { ...POLICY, canVaryClock: true }, 'namespaces+cgroups')).toMatchObject({ accept: true })
  })
})
