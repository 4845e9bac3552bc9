/**
 * concur's noise cipher (src/net/noise-crypto.ts: cached KeyObjects, a sealed
 * message returned in two parts) must be the default one on the wire: every
 * other libp2p node runs the default. Checked both ways for sizes around the
 * small-message switch and noise's largest message, whole or in pieces, and a
 * flipped byte, a wrong key or a key changed in place must fail to open.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { defaultCrypto } from '@libp2p/noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { concurNoiseCrypto, SMALL_MESSAGE_BYTES } from '../../src/net/noise-crypto.ts'

const flat = (x: Uint8Array | Uint8ArrayList): Buffer => Buffer.from(x instanceof Uint8Array ? x : x.subarray())
const SIZES = [0, 1, SMALL_MESSAGE_BYTES - 1, SMALL_MESSAGE_BYTES, SMALL_MESSAGE_BYTES + 1, 4096, 65535 - 16]

function pieces (bytes: Uint8Array): Uint8ArrayList {
  // cut at random places, as a message arrives across socket reads
  const list = new Uint8ArrayList()
  let at = 0
  while (at < bytes.byteLength) {
    const n = Math.max(1, Math.floor(Math.random() * 9000))
    list.append(bytes.subarray(at, at + n))
    at += n
  }
  return list
}

describe('concur noise crypto', () => {
  it('seals exactly what the default seals, and each opens what the other sealed (sizes around the switch, whole and in pieces)', () => {
    for (const size of SIZES) {
      for (let round = 0; round < 5; round++) {
        const k = randomBytes(32)
        const nonce = randomBytes(12)
        const ad = round % 2 === 0 ? new Uint8Array(0) : randomBytes(32)
        const plain = randomBytes(size)
        const ours = flat(concurNoiseCrypto.chaCha20Poly1305Encrypt(round > 2 ? pieces(plain) : plain, nonce, ad, k))
        const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
        expect(ours.equals(theirs), `size ${size}`).toBe(true)
        expect(flat(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k)).equals(plain)).toBe(true)
        expect(flat(concurNoiseCrypto.chaCha20Poly1305Decrypt(round > 2 ? pieces(theirs) : theirs, nonce, ad, k, new Uint8Array(size))).equals(plain)).toBe(true)
      }
    }
  })

  it('refuses a flipped byte, a wrong key, a wrong nonce, and a key changed in place (never the cached key)', () => {
    const size = 65535 - 16
    const k = randomBytes(32)
    const nonce = randomBytes(12)
    const ad = new Uint8Array(0)
    const plain = randomBytes(size)
    const sealed = flat(concurNoiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
    for (const at of [0, 1000, size - 1, size, size + 15]) {
      const bad = Buffer.from(sealed)
      bad[at] = (bad[at] as number) ^ 1
      expect(() => concurNoiseCrypto.chaCha20Poly1305Decrypt(bad, nonce, ad, k)).toThrow()
    }
    expect(() => concurNoiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, randomBytes(32))).toThrow()
    expect(() => concurNoiseCrypto.chaCha20Poly1305Decrypt(sealed, randomBytes(12), ad, k)).toThrow()
    // the same array, new bytes: the cached KeyObject of the old bytes must not be used
    const old = Buffer.from(k)
    k.set(randomBytes(32))
    expect(() => concurNoiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)).toThrow()
    const resealed = flat(concurNoiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
    expect(resealed.equals(flat(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k)))).toBe(true)
    expect(resealed.equals(sealed)).toBe(false)
    k.set(old)
    expect(flat(concurNoiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)).equals(plain)).toBe(true)
  })
})
