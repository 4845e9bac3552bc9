/**
 * One requester key re-announces 300 jobs dated a few minutes ahead (as far
 * as the allowed clock skew lets it). Job catch-up used to answer with the
 * 256 jobs of latest `createdAt`: all the attacker's, so a worker joining
 * late never learnt of anyone else's job. Answers are now fair across
 * requesters (PROTOCOL.md §15): the late worker still gets the honest job.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import { generateSigningKey } from '../../protocol/index.ts'
import { api, cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { definition, makeJob } from '../protocol/fixtures.ts'
import { setPolicy, startAdversary, submitJob } from './adversary.ts'
import type { Adversary } from './adversary.ts'
import { DEFAULT_STORE_LIMITS } from '../../src/store/limits.ts'

describe('catch-up flooded with future-dated jobs', () => {
  let net: Devnet
  let adv: Adversary

  beforeAll(async () => {
    net = await startNetwork({ workers: [] })
    adv = await startAdversary(net.bootAddr)
    // a policy, so the requester may submit (no worker is trusted: the job stays open)
    await setPolicy(net.requester, [generateSigningKey().did], 1)
  })

  afterAll(async () => { await cleanupAll() })

  it('a worker joining after 300 future-dated announcements from one key still learns the honest job', async () => {
    const { jobId } = await submitJob(net.requester, { label: `fair-catch-up-${process.pid}`, replicas: 1, script: 'mkdir out; cp label out/' })
    const announced = Date.now()
    // 4 minutes ahead: within the 5 minutes of skew a receiver allows
    const ahead = Date.now() + 4 * 60_000
    const flood = Array.from({ length: 300 }, (_, i) => makeJob({
      key: adv.key,
      def: { ...definition, command: ['sh', '-c', `echo future-${process.pid}-${i}`] },
      createdAt: ahead,
      expiresAt: ahead + 3_600_000
    }))
    // published as the attacker's own node would, so it holds them too and
    // its catch-up answers carry them like everyone else's
    for (const j of flood) await api(adv.node.api, 'POST', '/v1/gossip/publish', { kind: 'job', envelope: JSON.parse(Buffer.from(j.bytes).toString('utf8')) })
    // a node keeps at most maxJobsPerRequester of one key's jobs (src/store/limits.ts): 256 of the 300
    const held = 1 + Math.min(flood.length, DEFAULT_STORE_LIMITS.maxJobsPerRequester)
    await waitFor(async () => (await api<{ jobs: unknown[] }>(net.requester.api, 'GET', '/v1/jobs')).jobs.length >= held, `the requester holding the honest job and ${held - 1} announcements`)

    // past gossipsub's message cache (5 heartbeats of 1 s) for the honest job,
    // so a newcomer cannot get it as gossip: catch-up is its only way. Time
    // itself is what this waits for: no event says a cache moved past a message
    await new Promise(resolve => setTimeout(resolve, Math.max(0, announced + 6000 - Date.now())))
    // a worker joins now: it hears of open jobs only through catch-up
    const late = startConcur(['daemon', '--worker', '--bootstrap', net.bootAddr], { home: await tempDir() })
    const ready = await late.ready as { api: string }
    await waitFor(async () => await api(ready.api, 'GET', `/v1/jobs/${jobId}`).then(() => true, () => false), 'the late worker learning the honest job', 30_000)
  })
})
