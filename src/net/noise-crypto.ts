/**
 * Noise's transport cipher (ChaCha20-Poly1305, node:crypto) without the
 * per-message key set-up: the same bytes on the wire as @libp2p/noise's
 * default crypto, which every other libp2p node runs.
 *
 * Why: noise seals every message of at most 64 KiB with a cipher object of
 * its own, and the default implementation hands node:crypto the raw key each
 * time, which then builds a secret KeyObject for it. In the fetch's profile
 * (README, Benchmarks) that set-up (getKeyObjectSlots, getSlots,
 * createCipherBase) took more of the receiving daemon's time than the
 * decryption itself. Measured here (Node 24, 64 KiB messages): encrypt 1.6
 * -> 1.1 ms per MiB, decrypt 1.1-1.5 -> 0.93 ms per MiB. A sealed message is
 * also returned as its two parts (ciphertext, tag) instead of a copy that
 * joins them: noise appends both to its output list anyway.
 *
 * The KeyObject is cached per key array (a noise CipherState keeps its key
 * for the whole connection) and used only while the array still holds the
 * bytes it was made from: a key changed in place (a rekey) gets a new one,
 * never the old key's. Small messages (under SMALL_MESSAGE_BYTES) and
 * everything else (handshake hashing, HKDF, X25519) go to the default
 * implementation unchanged.
 */
import { createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { defaultCrypto } from '@libp2p/noise/crypto'
import type { ICryptoInterface } from '@libp2p/noise'
import { Uint8ArrayList } from 'uint8arraylist'

const CHACHA_POLY1305 = 'chacha20-poly1305'
const TAG_BYTES = 16
/** below this the default implementation uses its WebAssembly cipher (faster there, per its own benchmarks) */
export const SMALL_MESSAGE_BYTES = 1200

interface CachedKey { bytes: Buffer, key: KeyObject }
const keys = new WeakMap<Uint8Array, CachedKey>()

function keyObject (k: Uint8Array): KeyObject {
  const cached = keys.get(k)
  if (cached != null && cached.bytes.equals(k)) return cached.key
  const fresh = { bytes: Buffer.from(k), key: createSecretKey(k) }
  keys.set(k, fresh)
  return fresh.key
}

function encrypt (plaintext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array): Uint8Array | Uint8ArrayList {
  if (plaintext.byteLength < SMALL_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  const cipher = createCipheriv(CHACHA_POLY1305, keyObject(k), nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  const output = new Uint8ArrayList()
  if (plaintext instanceof Uint8Array) output.append(cipher.update(plaintext))
  else for (const part of plaintext) output.append(cipher.update(part))
  const final = cipher.final()
  if (final.byteLength > 0) output.append(final)
  output.append(cipher.getAuthTag())
  return output
}

function decrypt (ciphertext: Uint8Array | Uint8ArrayList, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array, dst?: Uint8Array): Uint8Array | Uint8ArrayList {
  if (ciphertext.byteLength < SMALL_MESSAGE_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  const decipher = createDecipheriv(CHACHA_POLY1305, keyObject(k), nonce, { authTagLength: TAG_BYTES })
  const textLength = ciphertext.byteLength - TAG_BYTES
  decipher.setAAD(ad, { plaintextLength: textLength })
  decipher.setAuthTag(ciphertext.subarray(textLength))
  if (ciphertext instanceof Uint8Array) {
    const output = decipher.update(ciphertext.subarray(0, textLength))
    // the tag is checked here: nothing decrypted is returned before it
    const final = decipher.final()
    return final.byteLength > 0 ? Buffer.concat([output, final]) : output
  }
  const output = new Uint8ArrayList()
  for (const part of ciphertext.sublist(0, textLength)) output.append(decipher.update(part))
  const final = decipher.final()
  if (final.byteLength > 0) output.append(final)
  return output
}

/** the crypto concur's noise runs with (`noise({ crypto: concurNoiseCrypto })`) */
export const concurNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: encrypt,
  chaCha20Poly1305Decrypt: decrypt
}
