/**
 * Replicas vary what the build sees (issue 19). A build that writes its
 * hostname (as a compiler banner or a Java manifest's Created-By host does)
 * or its local timezone is accepted 3/3 when the replicas all see the
 * sandbox's normalised `concur` and UTC; submitted with `--vary hostname`
 * (resp. `--vary timezone`), each worker builds it with its own derived
 * hostname (zone), records it in its attestation, and the job is disputed
 * and `submit --wait` exits with the dispute code. Through the CLI, as a
 * person would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet, SubmitResult } from '../helpers/network.ts'
import { hostnameFor, timezoneFor } from '../../protocol/index.ts'

const HOSTNAME_SCRIPT = 'mkdir -p out; uname -n > out/host'
const TIMEZONE_SCRIPT = 'mkdir -p out; date +%Z%z > out/zone'

describe('a build that writes its hostname or its timezone', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}, {}], trust: [0, 1, 2], threshold: 3 })
  })

  afterAll(async () => { await cleanupAll() })

  const project = async (label: string): Promise<string> => {
    const dir = await tempDir('concur-host-zone-')
    await writeFile(join(dir, 'label'), `${label}\n`)
    return dir
  }
  const args = ['--out', 'out', '--replicas', '3', '--timeout', '120']

  it('is accepted when the replicas see the normalised hostname and zone', async () => {
    const r = await submit(net.requester, await project(`plain-${process.pid}`), args, ['sh', '-c', `${HOSTNAME_SCRIPT}; ${TIMEZONE_SCRIPT}`])
    expect(r.view.record.status).toBe('accepted')
    expect(r.code).toBe(0)
    expect(r.view.attestations.every(a => a.variation == null)).toBe(true)
  })

  it('is disputed with --vary hostname: each replica names its own concur-<8 hex>, which its attestation records', async () => {
    const r = await submit(net.requester, await project(`host-${process.pid}`), [...args, '--vary', 'hostname'], ['sh', '-c', HOSTNAME_SCRIPT])
    expect(r.view.record.status).toBe('disputed')
    expect(r.code).toBe(3)
    expect(r.view.attestations).toHaveLength(3)
    for (const a of r.view.attestations) {
      expect(a.thisJob).toBe(true)
      expect(a.variation).toEqual({ hostname: hostnameFor(a.worker, r.view.record.jobId) })
    }
    expect(new Set(r.view.attestations.map(a => a.result.status === 'success' ? a.result.artifact : a.result.reason)).size).toBe(3)
  })

  it('is disputed with --vary timezone: each replica formats in its own zone, which its attestation records', async () => {
    // three replicas draw the same zone with probability 1/144: then the
    // job is rightly accepted, and a new job (new nonce, new draws) is tried
    let r: SubmitResult | undefined
    for (let attempt = 0; attempt < 3; attempt++) {
      r = await submit(net.requester, await project(`zone-${process.pid}-${attempt}`), [...args, '--vary', 'timezone'], ['sh', '-c', TIMEZONE_SCRIPT])
      if (new Set(r.view.attestations.map(a => a.variation?.timezone)).size > 1) break
    }
    expect(r!.view.record.status).toBe('disputed')
    expect(r!.code).toBe(3)
    for (const a of r!.view.attestations) {
      expect(a.variation).toEqual({ timezone: timezoneFor(a.worker, r!.view.record.jobId) })
    }
  })
})
