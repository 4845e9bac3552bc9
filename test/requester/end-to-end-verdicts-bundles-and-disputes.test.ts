import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet, SubmitResult } from '../helpers/network.ts'
import { artifactOf } from '../adversary/adversary.ts'
import { EXAMPLE_PROJECT } from '../../node/commands/devnet.ts'
import { generateSigningKey } from '../../protocol/index.ts'

/**
 * Five workers as separate processes: W0–W2 honest, W3 and W4 plant a file in
 * their output (the same file, so their artifacts agree with each other).
 * One requester; each scenario sets its trust policy, then submits a build
 * definition of its own (a distinct SOURCE_DATE_EPOCH gives a distinct buildId).
 */
describe('requester end to end: verdicts, bundles, dissent, disputes, reuse', () => {
  let net: Devnet
  const honest = (): string[] => net.workers.slice(0, 3).map(w => w.did)

  const setPolicy = async (trusted: string[], threshold: number, required: string[] = []): Promise<void> => {
    const home = net.requester.home
    await api(net.requester.api, 'POST', '/v1/policy', { policy: { version: 1, trusted: [], threshold: null, required: [], minTier: null } })
    expect((await runConcur(['trust', 'add', ...trusted], { home })).code).toBe(0)
    const p = await runConcur(['policy', 'set', '--threshold', String(threshold), ...required.flatMap(r => ['--required', r])], { home })
    expect(p.stderr).toBe('')
    // with a daemon running, `trust` and `policy set` go through its API: in effect when they return
  }

  const build = async (epoch: number, extra: string[] = [], timeout = 120): ReturnType<typeof submit> =>
    await submit(net.requester, EXAMPLE_PROJECT, ['--out', 'out', '--replicas', '5', '--timeout', String(timeout), '--source-date-epoch', String(epoch), ...extra], ['sh', 'build.sh'])

  /** the requester's view of a job once `ready` holds: later attestations keep arriving after --wait ends */
  const statusUntil = async (jobId: string, ready: (v: SubmitResult['view']) => boolean, what: string): Promise<SubmitResult['view']> =>
    await waitFor(async () => {
      const s = await runConcur(['status', jobId], { home: net.requester.home })
      const v = s.json() as SubmitResult['view']
      return ready(v) ? v : null
    }, what)

  beforeAll(async () => {
    net = await startNetwork({
      // W3, W4 spot-check every job (--sample 1): a job names only the trusted
      // keys of its time as builders, and the dissenters must build whatever the policy
      workers: [{}, {}, {}, { args: ['--tamper-output', '--sample', '1'] }, { args: ['--tamper-output', '--sample', '1'] }],
      trust: [0, 1, 2],
      threshold: 2
    })
  })

  afterAll(async () => { await cleanupAll() })

  let acceptedBundle = ''

  it('3 trusted workers, k = 2: accepted, untrusted dissent shown but not counted, bundle verifies offline', async () => {
    await setPolicy(honest(), 2)
    const r = await build(1_000_000_001)
    expect(r.view.record.status).toBe('accepted')
    expect(r.code).toBe(0)
    const artifact = r.view.record.artifact as string
    const all = await statusUntil(r.view.record.jobId, v => v.attestations.length >= 5, 'all five attestations')
    const untrusted = all.attestations.filter(a => !a.trusted)
    expect(untrusted.length).toBeGreaterThan(0)
    expect(untrusted.every(a => artifactOf(a) !== artifact)).toBe(true)
    expect(r.view.record.bundle).toMatch(/\.car$/)
    acceptedBundle = r.view.record.bundle as string
    const v = await runConcur(['verify', acceptedBundle, ...honest().flatMap(d => ['--trusted', d]), '--threshold', '2'], { home: await tempDir() })
    expect(v.code).toBe(0)
    expect(v.json()).toMatchObject({ ok: true, artifact })
  })

  it('concur verify rejects a bundle whose artifact block was altered, naming what is wrong', async () => {
    const bytes = await readFile(acceptedBundle)
    // the greeting text is stored verbatim in a raw leaf: flip one byte of it
    const at = bytes.indexOf(Buffer.from('HELLO FROM CONCUR'))
    expect(at).toBeGreaterThan(0)
    const bad = Buffer.from(bytes)
    bad[at] = bad[at]! ^ 0x01
    const file = join(await tempDir(), 'tampered.car')
    await writeFile(file, bad)
    const v = await runConcur(['verify', file, ...honest().flatMap(d => ['--trusted', d]), '--threshold', '2'], { home: await tempDir() })
    expect(v.code).not.toBe(0)
    expect(v.stdout).toContain('ERR_BLOCK_HASH')
  })

  it('a second submit of the same definition is accepted from the existing attestations without a new build', async () => {
    const r = await build(1_000_000_001)
    expect(r.view.record.status).toBe('accepted')
    expect(r.view.record.reused).toBe(true)
    expect(r.view.record.reasons.join(' ')).toMatch(/not rebuilt/)
  })

  it('one trusted worker producing different bytes for the same job: disputed, not outvoted, with the dissent shown', async () => {
    await setPolicy([...honest(), net.workers[3]!.did], 2)
    const r = await build(1_000_000_002)
    // `--wait` may end at an early acceptance (the two honest keys first); the tampered attestation disputes it
    const v = await statusUntil(r.view.record.jobId, x => x.record.status === 'disputed' && x.record.dissent.length > 0, 'the dissent to dispute the job')
    expect(v.record.dissent.map(d => d.worker)).toContain(net.workers[3]!.did)
    expect(v.record.artifact).toBeUndefined()
  })

  it('the same, with that worker required: not accepted', async () => {
    await setPolicy([...honest(), net.workers[3]!.did], 2, [net.workers[3]!.did])
    const r = await build(1_000_000_003)
    expect(r.view.record.status).not.toBe('accepted')
    expect(r.code).not.toBe(0)
  })

  it('two CIDs both reaching k: disputed, with the differing paths named', async () => {
    await setPolicy(net.workers.map(w => w.did), 2)
    const r = await build(1_000_000_004)
    // `--wait` may end at an early acceptance (two honest keys first); the two
    // tampered attestations that follow turn it into a dispute
    const view = await waitFor(async () => {
      const s = await runConcur(['status', r.view.record.jobId], { home: net.requester.home })
      const v = s.json() as { record: { status: string, dispute?: { summary?: string, error?: string } } }
      return v.record.status === 'disputed' && v.record.dispute != null ? { ...v, code: s.code } : null
    }, 'the dispute and its diagnosis')
    expect(view.code).toBe(3)
    expect(view.record.dispute?.summary ?? view.record.dispute?.error ?? '').toMatch(/INJECTED/)
  })

  it('k = 2 with only one trusted worker online: provisional, then expired at the timeout', async () => {
    const offline = generateSigningKey().did
    await setPolicy([net.workers[0]!.did, offline], 2)
    const r = await build(1_000_000_005, [], 15)
    expect(r.view.record.status).toBe('expired')
    expect(r.code).toBe(4)
    expect(r.view.attestations.some(a => a.trusted && a.result.status === 'success')).toBe(true)
  })
})
