/**
 * A peer announcement is an unauthenticated hint: one naming a private
 * address (a printer, a router's admin page, a service on the volunteer's
 * LAN) must not make the daemons that hear it connect there. The address is
 * real here: it is added to this machine's loopback interface and a listener
 * counts every connection to it, so a dial would be seen, not guessed.
 */
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PEERS_TOPIC } from '../../src/net/topics.ts'
import { api, cleanupAll, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { startAdversary } from './adversary.ts'
import type { Adversary } from './adversary.ts'

const PRIVATE_IP = '10.213.7.1'
const canAddAddress = process.getuid?.() === 0 && spawnSync('ip', ['-V']).status === 0

describe.skipIf(!canAddAddress)('a peer announcement naming a private address (needs root and ip)', () => {
  let net: Devnet
  let adv: Adversary
  let server: Server
  let connections = 0
  let added = false

  beforeAll(async () => {
    const r = spawnSync('ip', ['addr', 'add', `${PRIVATE_IP}/32`, 'dev', 'lo'], { encoding: 'utf8' })
    added = r.status === 0
    if (!added && !/exists/i.test(r.stderr)) throw new Error(`cannot add ${PRIVATE_IP} to lo: ${r.stderr}`)
    server = createServer(sock => { connections++; sock.destroy() })
    await new Promise<void>(resolve => server.listen(0, PRIVATE_IP, resolve))
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
    adv = await startAdversary(net.bootAddr)
  })

  afterAll(async () => {
    await cleanupAll()
    server?.close()
    if (added) spawnSync('ip', ['addr', 'del', `${PRIVATE_IP}/32`, 'dev', 'lo'])
  })

  it('is not dialled by daemons listening on loopback; the refusal is counted and named', async () => {
    // control: the address is reachable from this machine
    const port = (server.address() as AddressInfo).port
    const victims = [net.requester, ...net.workers]
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const announcement = { peerId, addrs: [`/ip4/${PRIVATE_IP}/tcp/${port}`], at: Date.now() }
    const data = Buffer.from(JSON.stringify(announcement)).toString('base64')
    await waitFor(async () => {
      await api(adv.node.api, 'POST', '/v1/gossip/publish-raw', { topic: PEERS_TOPIC, data })
      const heard = await Promise.all(victims.map(async v => (await api<{ discovered: string[] }>(v.api, 'GET', '/v1/peers')).discovered.includes(peerId)))
      return heard.every(Boolean)
    }, 'every daemon hearing the announcement')
    // each daemon either dialled (seen by the listener) or refused (counted)
    const refusals = await waitFor(async () => {
      const s = await Promise.all(victims.map(async v => (await api<{ dialPolicy?: { refused: number, lastRefused: string[] } }>(v.api, 'GET', '/v1/peers')).dialPolicy))
      return connections > 0 || s.every(x => (x?.refused ?? 0) > 0) ? s : null
    }, 'each daemon dialling the address or refusing to')
    expect(connections, 'connections made to the private address').toBe(0)
    for (const r of refusals) expect(r?.lastRefused.some(a => a.includes(PRIVATE_IP))).toBe(true)
  })
})
