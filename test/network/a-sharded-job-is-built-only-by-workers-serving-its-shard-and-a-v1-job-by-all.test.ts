/**
 * Shards end to end (PROTOCOL.md §6.1), each node a separate process: two
 * workers serve shards 0-7, two serve 8-f, and one serves none (the
 * unsharded topics only, as a node that predates shards reads them). The
 * requester serves every shard (the default) and trusts all five, k = 2.
 *
 * - A sharded job (`concur submit --sharded`) is accepted on the attestations
 *   of the two workers serving its shard; the other three never hold it.
 * - A v1 job (no flag) is built by all five, the unsharded-only worker
 *   included, and accepted: shards change nothing for v1 jobs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet, Node } from '../helpers/network.ts'
import { EXAMPLE_PROJECT } from '../../node/commands/devnet.ts'
import { shardOf } from '../../protocol/index.ts'

const HALVES = ['0-7', '0-7', '8-f', '8-f', 'none']

describe('a sharded job is built by the workers serving its shard; a v1 job by every worker', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: HALVES.map(s => ({ args: ['--shards', s] })), threshold: 2 })
  })

  afterAll(async () => { await cleanupAll() })

  const holds = async (node: Node, jobId: string): Promise<boolean> => {
    try {
      await api(node.api, 'GET', `/v1/jobs/${jobId}`)
      return true
    } catch {
      return false
    }
  }

  it('each worker reads the shards it was given, and its signed advert (PROTOCOL.md §5.4) says so to the requester', async () => {
    const shards = await Promise.all(net.workers.map(async w => (await api<{ shards: number[] }>(w.api, 'GET', '/v1/peers')).shards))
    const expected = [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15], [8, 9, 10, 11, 12, 13, 14, 15], []]
    expect(shards).toEqual(expected)
    const adverts = await waitFor(async () => {
      const a = (await api<{ adverts: Array<{ worker: string, shards: number[] }> }>(net.requester.api, 'GET', '/v1/adverts')).adverts
      return net.workers.every(w => a.some(x => x.worker === w.did)) ? a : null
    }, 'every worker\'s advert at the requester')
    expect(net.workers.map(w => adverts.find(a => a.worker === w.did)?.shards)).toEqual(expected)
  })

  it('a sharded job is accepted on the two workers of its shard; no other worker holds it', async () => {
    const r = await submit(net.requester, EXAMPLE_PROJECT, ['--out', 'out', '--replicas', '2', '--timeout', '180', '--source-date-epoch', '1000000101', '--sharded'], ['sh', 'build.sh'])
    expect(r.view.record.status).toBe('accepted')
    const half = shardOf(r.view.record.buildId) < 8 ? [0, 1] : [2, 3]
    const serving = half.map(i => net.workers[i]!.did)
    expect([...(r.view.verdict?.counted ?? [])].sort()).toEqual([...serving].sort())
    for (const [i, w] of net.workers.entries()) {
      expect(await holds(w, r.view.record.jobId), `worker ${i} (--shards ${HALVES[i]})`).toBe(half.includes(i))
    }
  })

  it('a v1 job is built by every worker, the one reading no shard included, and accepted', async () => {
    const r = await submit(net.requester, EXAMPLE_PROJECT, ['--out', 'out', '--replicas', '5', '--timeout', '180', '--source-date-epoch', '1000000102'], ['sh', 'build.sh'])
    expect(r.view.record.status).toBe('accepted')
    const unsharded = net.workers[4]!.did
    // attestations keep coming after acceptance: wait for the unsharded-only worker's
    await waitFor(async () => {
      const v = await api<{ attestations: Array<{ worker: string }> }>(net.requester.api, 'GET', `/v1/requests/${r.view.record.jobId}`)
      return v.attestations.some(a => a.worker === unsharded) ? true : null
    }, 'the attestation of the worker that reads no shard')
  })
})
