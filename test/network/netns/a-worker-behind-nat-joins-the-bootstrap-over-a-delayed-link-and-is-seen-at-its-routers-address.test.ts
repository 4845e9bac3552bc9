// The test network with real concur daemons: a worker at home, behind its
// router's NAT and a 50 ms uplink, joins the public bootstrap node, which
// sees it as an inbound peer at the router's address.
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, netnsSkipReason } from '../../helpers/netns.ts'
import type { TestNetwork } from '../../helpers/netns.ts'
import { CONCUR_BIN, cleanupAll, tempDir, waitFor } from '../../helpers/processes.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

/** The daemon's ready document (pretty-printed JSON on stdout); bounded by the child's exit. */
async function ready (child: ChildProcess, what: string): Promise<{ peerId: string }> {
  return await new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const start = out.indexOf('{')
      for (let end = out.indexOf('\n}', start); start !== -1 && end !== -1; end = out.indexOf('\n}', end + 1)) {
        try { resolve(JSON.parse(out.slice(start, end + 2)) as { peerId: string }); return } catch {}
      }
    })
    child.once('exit', (code) => reject(new Error(`${what} exited (${code ?? 'signal'}) before it was ready: ${out}${err}`)))
  })
}

describe.skipIf(skip != null)('a worker behind NAT', () => {
  let net: TestNetwork
  afterAll(async () => {
    await net?.teardown()
    await cleanupAll()
  })

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: {}, home: { nat: true } },
      hosts: { boot: { segment: 'public' }, w1: { segment: 'home' } },
      links: { home: { delayMs: 50, jitterMs: 5 } }
    })
  })

  it('joins the bootstrap node over its delayed uplink and is seen at its router\'s address', async () => {
    const bootHome = await tempDir()
    const boot = net.spawnIn('boot', [process.execPath, CONCUR_BIN, 'bootstrap', '--listen', '/ip4/0.0.0.0/tcp/4001', '--api', '127.0.0.1:7000', '--home', bootHome, '--json'])
    const bootId = (await ready(boot, 'the bootstrap node')).peerId
    // 100.64.0.0/10 (the public segment's default) is shared address space,
    // which the dial policy classes private: the worker, listening on loopback
    // only, is told it may dial it
    const worker = net.spawnIn('w1', [process.execPath, CONCUR_BIN, 'daemon', '--worker', '--dial-private',
      '--bootstrap', `/ip4/${net.addressOf('boot')}/tcp/4001/p2p/${bootId}`, '--api', '127.0.0.1:7001', '--home', await tempDir(), '--json'])
    const workerId = (await ready(worker, 'the worker')).peerId
    // the bootstrap's API listens on its own namespace's loopback: ask from there
    const token = readFileSync(join(bootHome, 'api.token'), 'utf8').trim()
    const peer = await waitFor(async () => {
      const r = await net.run('boot', [process.execPath, '-e',
        `fetch('http://127.0.0.1:7000/v1/peers', { headers: { authorization: 'Bearer ${token}' } }).then(r => r.text()).then(t => process.stdout.write(t))`], { timeoutMs: 20_000 })
      const peers = (JSON.parse(r.stdout) as { peers: Array<{ peerId: string, addr: string, direction: string }> }).peers
      return peers.find(p => p.peerId === workerId)
    }, 'the worker among the bootstrap node\'s peers')
    expect(peer.direction).toBe('inbound')
    expect(peer.addr.startsWith(`/ip4/${net.routerOf('home').wan}/tcp/`)).toBe(true)
  })
})
