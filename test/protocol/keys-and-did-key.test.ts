import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  KeyError, assertAcceptablePublicKey, didFromPublicKey, generateSigningKey, hexDecode, hexEncode, keyHex,
  publicKeyFromDid, sign, signingKeyFromSeed, verifySignature
} from '../../protocol/index.ts'
import { base58Encode, nodeVerify } from './independent.ts'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err) { expect(err).toBeInstanceOf(KeyError); return (err as KeyError).code }
  return undefined
}

describe('ed25519 keys', () => {
  it('RFC 8032 §7.1 test 1: public key and signature of the empty message', () => {
    const key = signingKeyFromSeed(hexDecode('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'))
    expect(hexEncode(key.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
    const sig = sign(key, new Uint8Array(0))
    expect(hexEncode(sig)).toBe('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
    expect(verifySignature(key.publicKey, new Uint8Array(0), sig)).toBe(true)
    expect(verifySignature(key.publicKey, Uint8Array.of(0), sig)).toBe(false)
  })

  it('signatures made by sign() verify under node:crypto, and vice versa for tampering', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
      const key = signingKeyFromSeed(seed)
      const sig = sign(key, msg)
      expect(nodeVerify(key.publicKey, msg, sig)).toBe(true)
      expect(verifySignature(key.publicKey, msg, sig)).toBe(true)
    }), { numRuns: 50 })
  })

  it('generateSigningKey gives distinct working keys', () => {
    const a = generateSigningKey()
    const b = generateSigningKey()
    expect(keyHex(a.publicKey)).not.toBe(keyHex(b.publicKey))
    expect(verifySignature(a.publicKey, Uint8Array.of(1), sign(a, Uint8Array.of(1)))).toBe(true)
    expect(verifySignature(b.publicKey, Uint8Array.of(1), sign(a, Uint8Array.of(1)))).toBe(false)
  })

  it('verifySignature never throws on wrong lengths or types', () => {
    const k = signingKeyFromSeed(new Uint8Array(32))
    expect(verifySignature(new Uint8Array(31), Uint8Array.of(1), new Uint8Array(64))).toBe(false)
    expect(verifySignature(k.publicKey, Uint8Array.of(1), new Uint8Array(63))).toBe(false)
    expect(verifySignature(k.publicKey, 'x' as unknown as Uint8Array, new Uint8Array(64))).toBe(false)
  })

  it('refuses seeds that are not 32 bytes', () => {
    expect(codeOf(() => signingKeyFromSeed(new Uint8Array(31)))).toBe('ERR_BAD_KEY')
  })
})

describe('did:key', () => {
  it('matches the W3C did:key ed25519 test vector', () => {
    const pk = hexDecode('3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29')
    expect(didFromPublicKey(pk)).toBe('did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp')
    expect(hexEncode(publicKeyFromDid('did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'))).toBe(hexEncode(pk))
  })

  it('agrees with an independent base58/multicodec encoding and round-trips', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), seed => {
      const key = signingKeyFromSeed(seed)
      const expected = 'did:key:z' + base58Encode(Uint8Array.of(0xed, 0x01, ...key.publicKey))
      expect(key.did).toBe(expected)
      expect(key.did.startsWith('did:key:z6Mk')).toBe(true)
      expect(keyHex(publicKeyFromDid(key.did))).toBe(keyHex(key.publicKey))
    }), { numRuns: 100 })
  })

  it('refuses small-order keys: the identity point and the other torsion points', () => {
    const identity = new Uint8Array(32); identity[0] = 1
    expect(codeOf(() => publicKeyFromDid(didFromPublicKey(identity)))).toBe('ERR_SMALL_ORDER_KEY')
    expect(codeOf(() => assertAcceptablePublicKey(identity))).toBe('ERR_SMALL_ORDER_KEY')
    // Order-2 point (0, -1) and an order-4 point (y = 0): small-order encodings from the ed25519 torsion subgroup.
    const minusOne = hexDecode('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')
    expect(codeOf(() => assertAcceptablePublicKey(minusOne))).toBe('ERR_SMALL_ORDER_KEY')
    expect(codeOf(() => assertAcceptablePublicKey(new Uint8Array(32)))).toBe('ERR_SMALL_ORDER_KEY')
    // An order-8 point.
    const order8 = hexDecode('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')
    expect(codeOf(() => assertAcceptablePublicKey(order8))).toBe('ERR_SMALL_ORDER_KEY')
    // And a signature "by" the identity key never verifies.
    const sig = new Uint8Array(64); sig[0] = 1
    expect(verifySignature(identity, Uint8Array.of(1, 2, 3), sig)).toBe(false)
  })

  it('refuses non-canonical point encodings and non-points', () => {
    // y = p (non-canonical encoding of y = 0) and y = 2^255 - 1.
    const yEqualsP = hexDecode('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')
    expect(codeOf(() => assertAcceptablePublicKey(yEqualsP))).toBe('ERR_BAD_KEY')
    // y = 2 is not on the curve (x^2 = (y^2 - 1)/(d y^2 + 1) has no root).
    const notOnCurve = new Uint8Array(32); notOnCurve[0] = 2
    expect(codeOf(() => assertAcceptablePublicKey(notOnCurve))).toBe('ERR_BAD_KEY')
  })

  it('refuses a key with a torsion component (valid key + order-8 point)', async () => {
    const ed = await import('@noble/ed25519')
    const good = signingKeyFromSeed(new Uint8Array(32).fill(7))
    const order8 = ed.Point.fromBytes(hexDecode('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'))
    const mixed = ed.Point.fromBytes(good.publicKey).add(order8).toBytes()
    expect(codeOf(() => assertAcceptablePublicKey(mixed))).toBe('ERR_BAD_KEY')
  })

  it('refuses malformed dids with ERR_BAD_KEY', () => {
    const good = signingKeyFromSeed(new Uint8Array(32).fill(3)).did
    const x25519 = 'did:key:z' + base58Encode(Uint8Array.of(0xec, 0x01, ...new Uint8Array(32).fill(9)))
    const short = 'did:key:z' + base58Encode(Uint8Array.of(0xed, 0x01, ...new Uint8Array(31).fill(9)))
    for (const bad of ['', 'did:key:', 'did:web:example.com', good.replace('did:key:z', 'did:key:m'), good + '#frag',
      good.slice(0, -1), good + 'a', good.replace(/.$/, '0'), 'did:key:z' + '1'.repeat(200), x25519, short,
      'did:key:z1' + good.slice(9), 42 as unknown as string]) {
      expect(codeOf(() => publicKeyFromDid(bad)), JSON.stringify(bad)).toBe('ERR_BAD_KEY')
    }
  })
})
