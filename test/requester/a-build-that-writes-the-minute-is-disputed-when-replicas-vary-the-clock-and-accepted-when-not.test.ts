/**
 * Replicas vary what the build sees (issue 19). A build that writes the
 * current minute (as xgettext's POT-Creation-Date does) is accepted 3/3 when
 * the three replicas simply start together; submitted with `--vary clock`,
 * each worker builds it with its own clock offset (libfaketime, +1 h..+72 h
 * derived from its key and the job), records the offset in its
 * attestation, and the job is disputed, with the report, and `submit
 * --wait` exits with the dispute code. Through the CLI, as a person would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, tempDir, waitFor } from '../helpers/processes.ts'
import type { RequestView } from '../../node/api/types.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet, SubmitResult } from '../helpers/network.ts'
import { clockOffsetFor } from '../../protocol/index.ts'
import { detectHostTools } from '../../src/sandbox/host-tools.ts'

const SCRIPT = 'mkdir -p out; date +%Y-%m-%dT%H:%M > out/stamp'

// CI installs faketime (.ci/run); elsewhere, without it, workers decline such jobs and this is skipped
const NO_FAKETIME = (await detectHostTools()).libfaketime == null

describe.skipIf(NO_FAKETIME)('a build that writes the current minute', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}, {}], trust: [0, 1, 2], threshold: 3 })
  })

  afterAll(async () => { await cleanupAll() })

  const project = async (label: string): Promise<string> => {
    const dir = await tempDir('concur-minute-')
    await writeFile(join(dir, 'label'), `${label}\n`)
    return dir
  }

  it('is accepted when the replicas just start together', async () => {
    // three replicas start within a second: should they straddle a minute (rare), try a new build
    let r: SubmitResult | undefined
    for (let attempt = 0; attempt < 3 && r?.view.record.status !== 'accepted'; attempt++) {
      r = await submit(net.requester, await project(`plain-${process.pid}-${attempt}`), ['--out', 'out', '--replicas', '3', '--timeout', '120'], ['sh', '-c', SCRIPT])
    }
    expect(r?.view.record.status).toBe('accepted')
    expect(r?.code).toBe(0)
    expect(r?.view.attestations.every(a => a.variation == null)).toBe(true)
  })

  it('is disputed when each replica builds with its own clock offset, which its attestation records', async () => {
    const r = await submit(net.requester, await project(`varied-${process.pid}`), ['--out', 'out', '--replicas', '3', '--timeout', '120', '--vary', 'clock'], ['sh', '-c', SCRIPT])
    expect(r.view.record.status).toBe('disputed')
    expect(r.code).toBe(3)
    const jobId = r.view.record.jobId
    // two differing attestations already settle it (three must agree); the third arrives when its build ends
    const view = await waitFor(async () => {
      const v = await api<RequestView>(net.requester.api, 'GET', `/v1/requests/${jobId}`)
      return v.attestations.length === 3 ? v : undefined
    }, 'the third attestation')
    expect(view.record.status).toBe('disputed')
    for (const a of view.attestations) {
      expect(a.thisJob).toBe(true)
      expect(a.variation?.clockOffsetSeconds).toBe(clockOffsetFor(a.worker, jobId))
    }
    expect(new Set(view.attestations.map(a => a.result.status === 'success' ? a.result.artifact : a.result.reason)).size).toBeGreaterThan(1)
    expect(r.view.record.dispute?.summary ?? '').toMatch(/hint: embedded-date/)
  })
})
