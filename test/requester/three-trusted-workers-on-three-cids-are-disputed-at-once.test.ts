/**
 * Three trusted workers, k = 3, a build that writes random bytes: three
 * CIDs, so agreement is impossible once the keys have answered. The job is
 * `disputed` right after the last attestation (found by the event feed, no
 * timer), not left `provisional` until it expires, and the dispute report
 * runs. (Before: provisional, "1 of 3 trusted keys", then EXPIRED 15 minutes
 * later with no report.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { cleanupAll, runConcur } from '../helpers/processes.ts'
import { short } from '../../node/render/request.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { artifactOf, submitJob, viewUntil } from '../adversary/adversary.ts'

describe('k trusted keys on k different CIDs', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}, {}], trust: [0, 1, 2], threshold: 3 })
  })

  afterAll(async () => { await cleanupAll() })

  it('is disputed as soon as the third attestation arrives, with the report', async () => {
    const { jobId } = await submitJob(net.requester, { label: `random-${process.pid}`, replicas: 3, ttlSeconds: 3600, script: 'mkdir out; head -c 32 /dev/urandom > out/random' })
    const three = await viewUntil(net.requester, jobId, v => v.attestations.filter(a => a.trusted).length === 3, 'three trusted attestations')
    const cids = new Set(three.attestations.map(a => artifactOf(a)))
    expect(cids.size).toBe(3)
    // the view after the third attestation already carries the verdict (the store's event ran first)
    expect(three.record.status).toBe('disputed')
    expect(three.verdict?.artifact).toBeUndefined()
    expect(three.verdict?.reasons.join(' ')).toMatch(/trusted keys that built this job got 3 different artifacts/)
    // (agreement may already be impossible at the second CID: the report is made again when the third comes)
    const diagnosed = await viewUntil(net.requester, jobId, v => v.record.dispute?.cids?.length === 3, 'the dispute report over three CIDs')
    const summary = diagnosed.record.dispute?.summary ?? ''
    // the report compares every CID and names the worker behind each
    for (const a of three.attestations) {
      const line = summary.split('\n').find(l => l.includes(artifactOf(a)!))
      expect(line, `a summary line for ${artifactOf(a)!}`).toBeDefined()
      expect(line).toContain(short(a.worker))
    }
    expect(summary).toMatch(/hint: random/)
    // and `status` says so: every key equally trusted, no artifact, the dispute exit code
    const status = await runConcur(['status', jobId], { home: net.requester.home, json: false })
    expect(status.code).toBe(3)
    expect(status.stdout).not.toMatch(/DISSENT|differs/)
    expect(status.stdout).not.toMatch(/^artifact/m)
    const report = await readFile(diagnosed.record.dispute!.report!, 'utf8')
    for (const a of three.attestations) expect(report).toContain(artifactOf(a)!)
    for (const a of three.attestations) expect(report).toContain(a.worker)
  })
})
