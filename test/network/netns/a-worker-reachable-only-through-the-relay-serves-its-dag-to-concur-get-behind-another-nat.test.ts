/**
 * A worker behind its home router, which nobody can dial, holds a DAG (a
 * directory of a few MiB in several files, added with `concur add`); a
 * node behind another NAT runs `concur get CID -o DIR` and every file arrives
 * intact. The two can reach one another only through the bootstrap node's
 * relay (or a direct connection DCUtR's hole punch made: the test says which
 * carried it), and the DAG transfer serves the blocks over that connection.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { cleanupAll, tempDir, waitFor } from '../../helpers/processes.ts'
import { apiIn, concurIn, startIn } from '../../helpers/netns-concur.ts'
import type { NsDaemon } from '../../helpers/netns-concur.ts'
import type { AddResponse, StatsResponse } from '../../../node/api/types.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

const MiB = 1024 * 1024

/** every regular file under dir: its path relative to dir → sha256 */
async function hashes (dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const path = join(e.parentPath, e.name)
    out.set(relative(dir, path), createHash('sha256').update(await readFile(path)).digest('hex'))
  }
  return out
}

describe.skipIf(skip != null)('a worker reachable only through the relay', () => {
  let net: TestNetwork
  let boot: NsDaemon
  let worker: NsDaemon
  let fetcher: NsDaemon

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: { subnet: '203.0.113.0/24' }, h1: { nat: true }, h2: { nat: true } },
      hosts: { boot: { segment: 'public' }, worker: { segment: 'h1' }, fetcher: { segment: 'h2' } }
    })
    boot = await startIn(net, 'boot', ['bootstrap'])
    const bootAddr = `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}`
    ;[worker, fetcher] = await Promise.all([
      startIn(net, 'worker', ['daemon', '--worker', '--bootstrap', bootAddr]),
      startIn(net, 'fetcher', ['daemon', '--bootstrap', bootAddr])
    ])
  })

  afterAll(async () => {
    await net?.teardown()
    await cleanupAll()
  })

  it('serves a directory of several MiB to `concur get` behind another NAT, every file intact', async () => {
    // several files, several blocks each for the large ones (the importer's chunks are 1 MiB), one empty, nested
    const src = await tempDir('concur-ns-src-')
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true })
    await writeFile(join(src, 'big.bin'), randomBytes(3 * MiB + 12_345))
    await writeFile(join(src, 'mid.bin'), randomBytes(MiB + 7))
    await writeFile(join(src, 'sub', 'notes.txt'), 'built behind a home router\n'.repeat(2000))
    await writeFile(join(src, 'sub', 'deeper', 'small.bin'), randomBytes(4096))
    await writeFile(join(src, 'sub', 'deeper', 'empty'), '')
    const want = await hashes(src)

    const added = await concurIn<AddResponse>(net, 'worker', worker.home, ['add', src])
    expect(added.code, added.stderr).toBe(0)
    expect(added.json.files).toBeGreaterThanOrEqual(5)

    // the worker is reachable at its relayed address only: that is how the fetcher finds it
    const circuit = `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${boot.peerId}/p2p-circuit`
    const via = await waitFor(async () => {
      const r = await apiIn<{ peers: Array<{ peerId: string, addr: string }> }>(net, 'fetcher', fetcher.home, '/v1/peers')
      const addrs = r.peers.filter(p => p.peerId === worker.peerId).map(p => p.addr)
      return addrs.length > 0 ? addrs : undefined
    }, 'the fetcher connected to the worker', 60_000)
    // through the bootstrap's relay, or direct where a hole punch (DCUtR) made one
    expect(via.every(a => a.startsWith(circuit) || !a.includes('/p2p-circuit')), via.join(' ')).toBe(true)

    const out = join(await tempDir('concur-ns-out-'), 'got')
    const got = await concurIn<{ cid: string }>(net, 'fetcher', fetcher.home, ['get', added.json.cid, '-o', out, '--timeout', '120'], 150_000)
    expect(got.code, got.stderr).toBe(0)
    expect(got.json.cid).toBe(added.json.cid)
    expect(await hashes(out)).toEqual(want)

    // which connection carried it, and that the DAG transfer (not only bitswap) served it
    const peers = await apiIn<{ peers: Array<{ peerId: string, addr: string }> }>(net, 'fetcher', fetcher.home, '/v1/peers')
    const used = peers.peers.filter(p => p.peerId === worker.peerId).map(p => p.addr)
    const served = (await apiIn<StatsResponse>(net, 'worker', worker.home, '/v1/stats')).dag.served
    const fetched = (await apiIn<StatsResponse>(net, 'fetcher', fetcher.home, '/v1/stats')).dag.fetched
    console.log(`worker → fetcher: ${used.map(a => a.includes('/p2p-circuit') ? `relayed (${a})` : `direct, DCUtR (${a})`).join(', ')}; ` +
      `DAG transfer: worker served ${served.blocks} blocks (${served.bytes} bytes), fetcher fetched ${fetched.blocks} blocks (${fetched.bytes} bytes)`)
    // the whole DAG came by the DAG transfer, in one fetch over that connection: bitswap had nothing left to do
    expect(fetched.complete).toBeGreaterThanOrEqual(1)
    expect(served.blocks).toBe(fetched.blocks)
  }, 240_000)
})
