/**
 * The entry bomb through a real worker: an attacker holds two dag-pb blocks
 * (~0.3 MB) that name 25 million empty files (5,000 links to one shared
 * directory of 5,000 empty files) and announces a job, signed with its own key,
 * whose source is that DAG. Without an entry cap the worker creates files
 * until its fetch timeout; with one it stops at the cap, attests nothing,
 * stays alive and leaves nothing in its scratch space.
 *
 * Nothing here depends on timing: the worker's own `build:abandoned` event
 * says why it stopped (the cap, not the fetch timeout), and the guard below
 * is longer than that timeout so today's behaviour shows as the wrong reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmod, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { createJobAnnouncement } from '../../protocol/index.ts'
import { DEFAULT_FETCH_LIMITS, openStores } from '../../src/content/index.ts'
import { api, cleanupAll, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { MemoryBlockstore, putDagPb } from '../content/helpers.ts'
import { allAlive, startAdversary } from './adversary.ts'
import type { Adversary } from './adversary.ts'

const WIDTH = 5000
// the worker's cap, lower than the default (DEFAULT_FETCH_LIMITS.maxEntries,
// 100,000): the same rule stops the bomb, after creating a tenth of the files
// (the default cost this test ~146 s, mostly creating empty files)
const CAP = 10_000
const MiB = 1024 * 1024

type Ev = { seq: number, event: { type: string, jobId?: string, reason?: string } }

async function bombBlocks (): Promise<{ root: CID, blocks: MemoryBlockstore }> {
  const blocks = new MemoryBlockstore()
  const names = (p: string): string[] => Array.from({ length: WIDTH }, (_, i) => `${p}${String(i).padStart(4, '0')}`)
  const empty = CID.createV1(raw.code, identity.digest(new Uint8Array(0)))
  const shared = await putDagPb(blocks, new UnixFS({ type: 'directory' }), names('f').map(name => ({ name, cid: empty })))
  const root = await putDagPb(blocks, new UnixFS({ type: 'directory' }), names('d').map(name => ({ name, cid: shared })))
  return { root, blocks }
}

/** every path under `dir` (depth-first, no symlinks followed) whose name matches */
async function findNamed (dir: string, match: (name: string) => boolean, depth = 5): Promise<string[]> {
  if (depth === 0) return []
  const found: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (match(e.name)) found.push(join(dir, e.name))
    if (e.isDirectory()) found.push(...await findNamed(join(dir, e.name), match, depth - 1))
  }
  return found
}

describe('an entry-bomb job source through a real worker', () => {
  let net: Devnet
  let adv: Adversary
  let scratch: string
  let bomb: CID

  beforeAll(async () => {
    // the worker's scratch space (its work dirs) under a directory of this test, so it can be inspected
    scratch = await tempDir('concur-bomb-scratch-')
    await chmod(scratch, 0o755)
    net = await startNetwork({ workers: [{ env: { TMPDIR: scratch }, args: ['--max-input-entries', String(CAP)] }], trust: [0], threshold: 1 })
    const { root, blocks } = await bombBlocks()
    bomb = root
    // the attacker's daemon starts with the two blocks already in its blockstore, and serves them
    adv = await startAdversary(net.bootAddr, async (home) => {
      const stores = await openStores(home)
      try {
        for (const [cid, bytes] of blocks.blocks) await stores.blockstore.put(CID.parse(cid), bytes)
      } finally {
        await stores.close()
      }
    })
    const worker = net.workers[0]!
    await waitFor(async () => {
      const p = await api<{ peers: Array<{ peerId: string }> }>(adv.node.api, 'GET', '/v1/peers')
      return p.peers.some(x => x.peerId === worker.peerId)
    }, 'the attacker connected to the worker')
  })

  afterAll(async () => {
    await cleanupAll()
  })

  it('the worker stops at its entry cap, attests nothing, stays alive and leaves nothing in its work dir', async () => {
    const worker = net.workers[0]!
    const now = Date.now()
    const job = createJobAnnouncement({
      definition: {
        version: 1,
        source: bomb.toString(),
        environment: { kind: 'host', platform: `${process.platform}-${process.arch}` },
        command: ['sh', '-c', 'mkdir out; echo never > out/x'],
        env: { SOURCE_DATE_EPOCH: '315532800' },
        output: 'out'
      },
      requester: adv.key.did,
      replicas: 1,
      resources: { memoryBytes: 256 * MiB, cpus: 1, diskBytes: 64 * MiB, wallSeconds: 60, processes: 64 },
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 10 * 60_000).toISOString()
    }, adv.key)
    // a correctly signed job: it goes through the daemon's ordinary, validated publish
    await api(adv.node.api, 'POST', '/v1/gossip/publish', { kind: 'job', envelope: job.envelope })

    const events = async (): Promise<Ev[]> => (await api<{ events: Ev[] }>(worker.api, 'GET', '/v1/events?after=0')).events
    // longer than the worker's 120 s fetch timeout: without a cap the reason is that timeout
    const abandoned = await waitFor(async () => (await events()).find(e => e.event.type === 'build:abandoned' && e.event.jobId === job.jobId),
      'the worker to give the bomb up', 200_000)
    const reason = abandoned.event.reason ?? ''
    // the cap stopped it, not the fetch timeout
    expect(reason).not.toMatch(/no peer delivered/)
    expect(reason).toContain(`${CAP} entries`)
    expect(CAP).toBeLessThan(DEFAULT_FETCH_LIMITS.maxEntries)
    expect(reason).toMatch(/--max-input-entries|maxInputEntries/)

    expect((await events()).filter(e => e.event.jobId === job.jobId).map(e => e.event.type)).not.toContain('build:attested')
    expect(await allAlive([worker, net.requester])).toBe(true)
    const held = await api<{ attestations: unknown[] }>(adv.node.api, 'GET', `/v1/attestations?buildId=${job.job.buildId}`)
    expect(held.attestations).toEqual([])
    // the worker did use this scratch space, and nothing of the job is left in it
    expect((await readdir(scratch)).length).toBeGreaterThan(0)
    expect(await findNamed(scratch, name => name === job.jobId || name.includes('partial'))).toEqual([])
  }, 300_000)
})
