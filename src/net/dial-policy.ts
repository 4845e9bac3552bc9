/**
 * Which addresses this node dials. Peer announcements and peer-exchange
 * records are unauthenticated hints from anyone: without a policy, one
 * message makes every volunteer that hears it dial whatever address it
 * names, a printer or router on their LAN, a service on their own loopback.
 *
 * So a daemon dials public addresses, and loopback or private ones only
 * where it listens itself (a devnet or a test on 127.0.0.1, a LAN network on
 * 10.x) or when told to. Link-local, multicast and unspecified addresses are
 * never dialled. Checked by libp2p's connection gater on every resolved
 * address, the bootstrap list's included.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import { multiaddr } from '@multiformats/multiaddr'

export type AddressClass = 'loopback' | 'private' | 'public' | 'never'

function v4Class (ip: string): AddressClass {
  const p = ip.split('.').map(Number)
  if (p.length !== 4 || p.some(n => !Number.isInteger(n) || n < 0 || n > 255)) return 'never'
  const [a, b] = p as [number, number, number, number]
  if (a === 127) return 'loopback'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)) return 'private'
  // 0/8 this network, 169.254/16 link-local, 224/4 multicast, 240/4 reserved and broadcast
  if (a === 0 || (a === 169 && b === 254) || a >= 224) return 'never'
  return 'public'
}

function v6Class (ip: string): AddressClass {
  const s = ip.toLowerCase()
  if (s === '::1') return 'loopback'
  if (s === '::') return 'never'
  // an IPv4-mapped address is its IPv4 address, however it is written
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (mapped?.[1] != null) return v4Class(mapped[1])
  const mappedHex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(s)
  if (mappedHex?.[1] != null && mappedHex[2] != null) {
    const hi = parseInt(mappedHex[1], 16)
    const lo = parseInt(mappedHex[2], 16)
    return v4Class(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`)
  }
  const first = parseInt(s.split(':')[0] || '0', 16)
  if ((first & 0xfe00) === 0xfc00) return 'private' // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return 'never' // fe80::/10 link-local
  if ((first & 0xff00) === 0xff00) return 'never' // multicast
  return 'public'
}

/** The class of an address's IP (its first component); null when it has none (a DNS name, before resolution). */
export function addressClass (ma: Multiaddr): AddressClass | null {
  const first = ma.getComponents()[0]
  if (first?.value == null) return null
  if (first.name === 'ip4') return v4Class(first.value)
  if (first.name === 'ip6') return v6Class(first.value)
  return null
}

export interface DialPolicy {
  loopback: boolean
  private: boolean
}

/** Loopback and private dials follow where this node listens; `allow` adds to that. */
export function dialPolicyFor (listen: string[], allow: Partial<DialPolicy> = {}): DialPolicy {
  const classes = new Set(listen.map(a => { try { return addressClass(multiaddr(a)) } catch { return null } }))
  return {
    loopback: allow.loopback === true || classes.has('loopback'),
    private: allow.private === true || classes.has('private')
  }
}

/** a relayed address (`…/p2p/RELAY/p2p-circuit`): reachable wherever the relay is */
function isCircuit (ma: Multiaddr): boolean {
  return ma.getComponents().some(c => c.name === 'p2p-circuit')
}

/**
 * Whether a node listening on `listen` should reserve a slot on a relay: it
 * should when no one off this machine can be sure to dial it. A node on
 * loopback only (a devnet, a test) is reached on loopback; one listening on a
 * public address is reached there; one on a private address or on all
 * interfaces (0.0.0.0, ::) is, as far as it knows, behind a home router.
 */
export function needsRelay (listen: string[]): boolean {
  const classes = listen.flatMap(a => {
    try {
      const ma = multiaddr(a)
      if (isCircuit(ma)) return []
      return [addressClass(ma)]
    } catch {
      return []
    }
  })
  if (classes.length === 0 || classes.every(c => c === 'loopback')) return false
  return !classes.includes('public')
}

/**
 * The addresses worth announcing: those others can use. Once this node has a
 * public address, or a relayed one through a public relay, its private and loopback ones are left out
 * (peers elsewhere would dial a stranger's LAN, or time out); a node with
 * neither (a devnet, a LAN network) announces what it has.
 */
export function addressesToAnnounce (addrs: Multiaddr[]): Multiaddr[] {
  // a relayed address is classed by its relay's address: one through the relay's loopback is no use to anyone
  const reachable = addrs.filter(a => addressClass(a) === 'public')
  return reachable.length > 0 ? reachable : addrs
}

export function mayDial (policy: DialPolicy, ma: Multiaddr): boolean {
  const c = addressClass(ma)
  if (c == null || c === 'public') return true
  if (c === 'loopback') return policy.loopback
  if (c === 'private') return policy.private
  return false
}

export interface DialGateStats {
  refused: number
  /** the latest refused addresses (at most 16) */
  lastRefused: string[]
}

/** The policy as libp2p's connection gater, counting what it refuses. */
export class DialGate {
  private readonly policy: DialPolicy
  private refused = 0
  private readonly last: string[] = []

  constructor (policy: DialPolicy) {
    this.policy = policy
  }

  readonly denyDialMultiaddr = async (ma: Multiaddr): Promise<boolean> => {
    if (mayDial(this.policy, ma)) return false
    this.refused++
    this.last.push(ma.toString().slice(0, 200))
    if (this.last.length > 16) this.last.shift()
    return true
  }

  stats (): DialGateStats {
    return { refused: this.refused, lastRefused: [...this.last] }
  }
}
