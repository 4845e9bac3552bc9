/**
 * The default bootstrap peer list shipped with concur (bootstrap/peers.json):
 * the peers a daemon dials when neither `--bootstrap` nor config.json's
 * "bootstrap" names any. The file is checked, not trusted to be right: a list
 * of another version, or an address a daemon could not dial by peer id, is
 * refused with a message naming the file and what to do, instead of a daemon
 * that silently finds nobody.
 *
 * Format: `{ "version": 1, "peers": ["<multiaddr ending in /p2p/<peer id>>", …] }`
 * (other top-level fields, such as "description", are ignored).
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Component } from '@multiformats/multiaddr'

/** The one version of the peer list format this code reads. */
export const PEER_LIST_VERSION = 1

/** bootstrap/peers.json of this checkout. */
export const DEFAULT_PEER_LIST_FILE = fileURLToPath(new URL('./peers.json', import.meta.url))

/** Every code a {@link PeerListError} can carry. */
export const PEER_LIST_ERROR_CODES = [
  'ERR_PEER_LIST_UNREADABLE',
  'ERR_PEER_LIST_MALFORMED',
  'ERR_PEER_LIST_VERSION',
  'ERR_PEER_LIST_ADDRESS'
] as const

export type PeerListErrorCode = typeof PEER_LIST_ERROR_CODES[number]

/** The peer list cannot be used: unreadable, not the expected JSON, another version, or a bad address. Names the file. */
export class PeerListError extends Error {
  readonly code: PeerListErrorCode
  override name = 'PeerListError'
  /** the peer list file at fault */
  readonly file: string

  constructor (code: PeerListErrorCode, file: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.file = file
  }
}

export function isPeerListError (e: unknown): e is PeerListError {
  return e instanceof PeerListError
}

const OTHERWISE = 'or give peers with `concur daemon --bootstrap <multiaddr>` or "bootstrap" in the home\'s config.json'

/**
 * Reads the peer list (bootstrap/peers.json next to this module unless `file`
 * says otherwise) and returns its peers, each a multiaddr string ending in
 * /p2p/<peer id>. Throws PeerListError when the file cannot be read, is not a
 * JSON object with a "peers" array, is not version 1, or lists an address that
 * does not parse or names no peer id.
 */
export async function defaultBootstrapList (options: { file?: string } = {}): Promise<string[]> {
  const file = options.file ?? DEFAULT_PEER_LIST_FILE
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new PeerListError('ERR_PEER_LIST_UNREADABLE', file, `cannot read the default peer list ${file}: ${(err as Error).message}; restore it from a concur release, ${OTHERWISE}`, { cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new PeerListError('ERR_PEER_LIST_MALFORMED', file, `the default peer list ${file} is not JSON (${(err as Error).message}); fix it to { "version": ${PEER_LIST_VERSION}, "peers": [...] }, ${OTHERWISE}`, { cause: err })
  }
  if (typeof parsed !== 'object' || parsed == null || Array.isArray(parsed)) {
    throw new PeerListError('ERR_PEER_LIST_MALFORMED', file, `the default peer list ${file} is not a JSON object; fix it to { "version": ${PEER_LIST_VERSION}, "peers": [...] }, ${OTHERWISE}`)
  }
  const { version, peers } = parsed as Record<string, unknown>
  if (version !== PEER_LIST_VERSION) {
    throw new PeerListError('ERR_PEER_LIST_VERSION', file, `the default peer list ${file} has "version": ${JSON.stringify(version) ?? 'missing'}; this concur reads version ${PEER_LIST_VERSION} only: use the peers.json of this concur release, ${OTHERWISE}`)
  }
  if (!Array.isArray(peers)) {
    throw new PeerListError('ERR_PEER_LIST_MALFORMED', file, `the default peer list ${file} has no "peers" array; fix it to { "version": ${PEER_LIST_VERSION}, "peers": [...] }, ${OTHERWISE}`)
  }
  return peers.map((peer, i) => checkPeer(peer, i, file))
}

/** A peer entry must be a multiaddr whose last component is /p2p/<peer id>: a daemon dials it by id (noise proves the id). */
function checkPeer (peer: unknown, i: number, file: string): string {
  const refuse = (why: string, cause?: unknown): never => {
    throw new PeerListError('ERR_PEER_LIST_ADDRESS', file,
      `the default peer list ${file}: peers[${i}] ${JSON.stringify(peer)?.slice(0, 200) ?? String(peer)} ${why}; each peer must be a multiaddr ending in /p2p/<peer id>, e.g. /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…: fix or remove it, ${OTHERWISE}`,
      cause !== undefined ? { cause } : undefined)
  }
  if (typeof peer !== 'string') return refuse('is not a string')
  let components: Component[]
  try {
    components = multiaddr(peer).getComponents()
  } catch (err) {
    return refuse(`is not a multiaddr (${(err as Error).message})`, err)
  }
  const last = components.at(-1)
  if (last?.name !== 'p2p' || last.value == null || last.value === '') return refuse('does not end in /p2p/<peer id>')
  try {
    peerIdFromString(last.value)
  } catch (err) {
    return refuse(`names no valid peer id (${(err as Error).message})`, err)
  }
  if (components.length < 2) return refuse('has no address before /p2p/<peer id>')
  return peer
}
