/**
 * The dial policy (src/net/dial-policy.ts), as a table: public addresses are
 * dialled; loopback and private ones only where the node listens itself (or
 * when told to); link-local, multicast and unspecified ones never.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { DialGate, addressClass, addressesToAnnounce, dialPolicyFor, mayDial, needsRelay } from '../../src/net/dial-policy.ts'

const cls = (a: string): string | null => addressClass(multiaddr(a))

describe('the dial policy', () => {
  it('classes every kind of address', () => {
    expect(cls('/ip4/127.0.0.1/tcp/1')).toBe('loopback')
    expect(cls('/ip4/127.200.1.1/tcp/1')).toBe('loopback')
    expect(cls('/ip6/::1/tcp/1')).toBe('loopback')
    for (const a of ['10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1']) expect(cls(`/ip4/${a}/tcp/1`), a).toBe('private')
    expect(cls('/ip6/fd00::1/tcp/1')).toBe('private')
    for (const a of ['169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255']) expect(cls(`/ip4/${a}/tcp/1`), a).toBe('never')
    expect(cls('/ip6/fe80::1/tcp/1')).toBe('never')
    expect(cls('/ip6/::/tcp/1')).toBe('never')
    expect(cls('/ip6/::ffff:10.1.2.3/tcp/1')).toBe('private')
    for (const a of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1']) expect(cls(`/ip4/${a}/tcp/1`), a).toBe('public')
    expect(cls('/ip6/2001:db8::1/tcp/1')).toBe('public')
    expect(cls('/dns4/example.org/tcp/1')).toBeNull()
  })

  it('a node listening on loopback dials loopback and public, not private or link-local', () => {
    const p = dialPolicyFor(['/ip4/127.0.0.1/tcp/0'])
    expect(mayDial(p, multiaddr('/ip4/127.0.0.1/tcp/4001'))).toBe(true)
    expect(mayDial(p, multiaddr('/ip4/1.2.3.4/tcp/4001'))).toBe(true)
    expect(mayDial(p, multiaddr('/ip4/10.1.2.3/tcp/4001'))).toBe(false)
    expect(mayDial(p, multiaddr('/ip4/192.168.0.1/tcp/80'))).toBe(false)
    expect(mayDial(p, multiaddr('/ip4/169.254.169.254/tcp/80'))).toBe(false)
  })

  it('a node listening on all interfaces dials public addresses only, unless told to', () => {
    const p = dialPolicyFor(['/ip4/0.0.0.0/tcp/4001'])
    expect(mayDial(p, multiaddr('/ip4/127.0.0.1/tcp/4001'))).toBe(false)
    expect(mayDial(p, multiaddr('/ip4/10.1.2.3/tcp/4001'))).toBe(false)
    expect(mayDial(p, multiaddr('/ip4/1.2.3.4/tcp/4001'))).toBe(true)
    const lan = dialPolicyFor(['/ip4/0.0.0.0/tcp/4001'], { private: true })
    expect(mayDial(lan, multiaddr('/ip4/10.1.2.3/tcp/4001'))).toBe(true)
    expect(mayDial(lan, multiaddr('/ip4/169.254.1.1/tcp/4001'))).toBe(false)
  })

  it('a node reserves a relay slot only when it may be behind NAT: private or all interfaces, none public, not loopback only', () => {
    expect(needsRelay(['/ip4/127.0.0.1/tcp/0'])).toBe(false)
    expect(needsRelay(['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'])).toBe(false)
    expect(needsRelay(['/ip4/0.0.0.0/tcp/4001'])).toBe(true)
    expect(needsRelay(['/ip4/192.168.1.20/tcp/4001'])).toBe(true)
    expect(needsRelay(['/ip4/0.0.0.0/tcp/4001', '/ip4/203.0.113.7/tcp/4001'])).toBe(false)
    expect(needsRelay([])).toBe(false)
  })

  it('announces only what others can use once it has a public or relayed-through-public address', () => {
    const ma = (s: string): ReturnType<typeof multiaddr> => multiaddr(s)
    const relayed = '/ip4/203.0.113.10/tcp/4001/p2p/12D3KooWERcc2xHXVBvFJvhbtw5kYsqW55Etf452n4ifAJ45oj9T/p2p-circuit'
    const viaLoopbackRelay = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWERcc2xHXVBvFJvhbtw5kYsqW55Etf452n4ifAJ45oj9T/p2p-circuit'
    // behind NAT: the relayed address only (not 10.x, not loopback, not the relay's own loopback)
    expect(addressesToAnnounce([ma('/ip4/127.0.0.1/tcp/4001'), ma('/ip4/10.1.0.10/tcp/4001'), ma(relayed), ma(viaLoopbackRelay)]).map(String)).toEqual([relayed])
    // a public node: its public address
    expect(addressesToAnnounce([ma('/ip4/127.0.0.1/tcp/4001'), ma('/ip4/198.51.100.4/tcp/4001')]).map(String)).toEqual(['/ip4/198.51.100.4/tcp/4001'])
    // a devnet or a LAN network: what it has
    expect(addressesToAnnounce([ma('/ip4/127.0.0.1/tcp/4001')]).map(String)).toEqual(['/ip4/127.0.0.1/tcp/4001'])
    expect(addressesToAnnounce([ma('/ip4/10.0.0.5/tcp/4001'), ma('/ip4/127.0.0.1/tcp/4001')]).length).toBe(2)
  })

  it('the gate counts and names what it refuses', async () => {
    const gate = new DialGate(dialPolicyFor(['/ip4/127.0.0.1/tcp/0']))
    expect(await gate.denyDialMultiaddr(multiaddr('/ip4/127.0.0.1/tcp/1'))).toBe(false)
    expect(await gate.denyDialMultiaddr(multiaddr('/ip4/10.9.9.9/tcp/1'))).toBe(true)
    expect(gate.stats()).toEqual({ refused: 1, lastRefused: ['/ip4/10.9.9.9/tcp/1'] })
  })
})
