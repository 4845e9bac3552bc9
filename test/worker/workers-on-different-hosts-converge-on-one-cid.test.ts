import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { artifactOf } from '../adversary/adversary.ts'

const REPRODUCIBLE = fileURLToPath(new URL('../fixtures/reproducible-project', import.meta.url))
const RANDOM = fileURLToPath(new URL('../fixtures/random-project', import.meta.url))

describe('two workers with different TZ, umask and temp paths', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({
      workers: [
        { env: { TZ: 'Pacific/Auckland', TMPDIR: await tempDir('concur-tmp-a-'), LANG: 'de_DE.UTF-8', HOME: '/nonexistent-a' }, umask: '077' },
        { env: { TZ: 'America/Los_Angeles', TMPDIR: await tempDir('concur-tmp-b-'), HOME: '/nonexistent-b' }, umask: '002' }
      ],
      threshold: 2
    })
  })

  afterAll(async () => { await cleanupAll() })

  it('build a project that embeds date, path, user and directory order, and attest the same CID', async () => {
    const r = await submit(net.requester, REPRODUCIBLE, ['--out', 'out', '--replicas', '2', '--timeout', '90'], ['sh', 'build.sh'])
    expect(r.view.record.status).toBe('accepted')
    expect(r.code).toBe(0)
    const successes = r.view.attestations.filter(a => a.result.status === 'success')
    expect(new Set(successes.map(a => a.worker)).size).toBe(2)
    expect(new Set(successes.map(artifactOf)).size).toBe(1)
    expect(r.view.record.artifact).toBe(successes[0] != null ? artifactOf(successes[0]) : undefined)
  })

  it('a deliberately non-reproducible build gives two different CIDs and is not accepted', async () => {
    const r = await submit(net.requester, RANDOM, ['--out', 'out', '--replicas', '2', '--timeout', '20'], ['sh', 'build.sh'])
    const successes = r.view.attestations.filter(a => a.result.status === 'success')
    expect(successes).toHaveLength(2)
    expect(new Set(successes.map(artifactOf)).size).toBe(2)
    // both trusted keys answered, on different CIDs: agreement is impossible, so the
    // job is disputed at once (PROTOCOL.md §8), not left provisional until it expires
    expect(r.view.record.status).toBe('disputed')
    expect(r.code).toBe(3)
  })
})
