/**
 * ed25519 signing keys and their did:key form.
 *
 * Signers are identified by their raw 32-byte public key (`keyHex`), never by a
 * key id string: the did:key text is only a transport for those 32 bytes, and
 * its decoding is canonical (one did per key) so it can also be used as a name.
 */
import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { base58btc } from 'multiformats/bases/base58'
import { KeyError } from './errors.ts'
import { bytesEqual, hexEncode } from './encoding.ts'

// noble v3 needs a synchronous SHA-512 for its sync API; @noble/hashes is pure JS.
ed.hashes.sha512 = sha512

/** multicodec `ed25519-pub` (0xed) as an unsigned varint. */
const ED25519_PUB_PREFIX = Uint8Array.of(0xed, 0x01)
const DID_KEY_PREFIX = 'did:key:'
/** did:key:z + base58btc(34 bytes) is 56 characters; anything much longer is not a key. */
const MAX_DID_LENGTH = 128

export interface SigningKey {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly did: string
}

/** A fresh random key (the only function here that uses randomness). */
export function generateSigningKey (): SigningKey {
  return signingKeyFromSeed(ed.utils.randomSecretKey())
}

export function signingKeyFromSeed (seed: Uint8Array): SigningKey {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new KeyError('ERR_BAD_KEY', 'an ed25519 seed is 32 bytes')
  const own = Uint8Array.from(seed)
  const publicKey = ed.getPublicKey(own)
  return Object.freeze({ seed: own, publicKey, did: didFromPublicKey(publicKey) })
}

export function sign (key: SigningKey, message: Uint8Array): Uint8Array {
  return ed.sign(message, key.seed)
}

/** A strict ed25519 verification primitive: (signature, message, public key) → valid. */
export type Ed25519Verify = (sig: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean

const nobleVerify: Ed25519Verify = (sig, message, publicKey) => ed.verify(sig, message, publicKey, { zip215: false })
let verifyBackend: Ed25519Verify = nobleVerify

/**
 * Let the host install a faster primitive (a node verifies every gossiped
 * message; noble does ~1k/s, OpenSSL ~15k/s). protocol/ stays pure: the host
 * brings the implementation. It must be as strict as noble's `zip215: false`
 * (canonical S and R encodings, cofactorless equation): OpenSSL is. The two
 * can only disagree on keys with a torsion component, and those are refused
 * before any backend runs (assertAcceptablePublicKey). `null` restores noble.
 */
export function useEd25519Verify (fn: Ed25519Verify | null): void {
  verifyBackend = fn ?? nobleVerify
}

// Key acceptability is a point decompression plus a torsion check: cache it,
// since the same few worker keys sign almost every message a node sees.
const acceptableCache = new Map<string, boolean>()
const ACCEPTABLE_CACHE_MAX = 4096

/**
 * Strict RFC 8032 verification (`zip215: false`): canonical S < L, canonical
 * point encodings, and small-order public keys refused. Never throws.
 */
export function verifySignature (publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false
    if (!(sig instanceof Uint8Array) || sig.length !== 64) return false
    if (!(message instanceof Uint8Array)) return false
    const k = hexEncode(publicKey)
    let ok = acceptableCache.get(k)
    if (ok === undefined) {
      ok = isAcceptablePublicKey(publicKey)
      if (acceptableCache.size >= ACCEPTABLE_CACHE_MAX) acceptableCache.clear()
      acceptableCache.set(k, ok)
    }
    if (!ok) return false
    return verifyBackend(sig, message, publicKey)
  } catch {
    return false
  }
}

export function didFromPublicKey (publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new KeyError('ERR_BAD_KEY', 'an ed25519 public key is 32 bytes')
  const bytes = new Uint8Array(34)
  bytes.set(ED25519_PUB_PREFIX, 0)
  bytes.set(publicKey, 2)
  return DID_KEY_PREFIX + base58btc.encode(bytes)
}

/** Decodes `did:key:z6Mk…` to the raw key; refuses other codecs, DID URLs, non-canonical text and unacceptable points. */
export function publicKeyFromDid (did: string): Uint8Array {
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw new KeyError('ERR_BAD_KEY', 'not a did:key string')
  if (!did.startsWith(DID_KEY_PREFIX + 'z')) throw new KeyError('ERR_BAD_KEY', 'expected did:key:z… (base58btc multibase)')
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(did.slice(DID_KEY_PREFIX.length))
  } catch (err) {
    throw new KeyError('ERR_BAD_KEY', 'did:key is not valid base58btc', { cause: err })
  }
  if (bytes.length !== 34 || !bytesEqual(bytes.subarray(0, 2), ED25519_PUB_PREFIX)) {
    throw new KeyError('ERR_BAD_KEY', 'did:key is not an ed25519-pub (0xed) multicodec key')
  }
  const publicKey = bytes.slice(2)
  // base58 lets leading '1's and similar variants spell the same bytes; one did per key.
  if (didFromPublicKey(publicKey) !== did) throw new KeyError('ERR_BAD_KEY', 'did:key is not in canonical form')
  assertAcceptablePublicKey(publicKey)
  return publicKey
}

// Accepted keys are cached: decoding a point costs a field square root and the
// torsion check a scalar multiplication, and the same few keys sign most messages.
const ACCEPTED = new Set<string>()
const ACCEPTED_MAX = 4096

/**
 * Refuses what an honest key generator never produces:
 * - encodings that do not decode strictly (y >= p, x = 0 with the sign bit set, not on the curve),
 * - small-order points (the identity and the 7 other torsion points) — a signature under
 *   such a key can be valid for many messages at once,
 * - points with a torsion component (not in the prime-order subgroup), on which cofactored and
 *   cofactorless verifiers (noble vs OpenSSL) can disagree.
 */
export function assertAcceptablePublicKey (publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new KeyError('ERR_BAD_KEY', 'an ed25519 public key is 32 bytes')
  const hex = hexEncode(publicKey)
  if (ACCEPTED.has(hex)) return
  let point: ed.Point
  try {
    point = ed.Point.fromBytes(publicKey, false)
  } catch (err) {
    throw new KeyError('ERR_BAD_KEY', 'public key is not a canonical ed25519 point', { cause: err })
  }
  if (!bytesEqual(point.toBytes(), publicKey)) throw new KeyError('ERR_BAD_KEY', 'public key is not canonically encoded')
  if (point.isSmallOrder()) throw new KeyError('ERR_SMALL_ORDER_KEY', 'public key is a small-order point')
  if (!point.isTorsionFree()) throw new KeyError('ERR_BAD_KEY', 'public key has a small-order component (not in the prime-order subgroup)')
  if (ACCEPTED.size >= ACCEPTED_MAX) ACCEPTED.clear()
  ACCEPTED.add(hex)
}

function isAcceptablePublicKey (publicKey: Uint8Array): boolean {
  try {
    assertAcceptablePublicKey(publicKey)
    return true
  } catch {
    return false
  }
}

/** Map key for counting signers: lower-case hex of the raw 32-byte public key. */
export function keyHex (publicKey: Uint8Array): string {
  return hexEncode(publicKey)
}
