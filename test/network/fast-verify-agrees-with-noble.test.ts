import { afterEach, describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { generateSigningKey, sign, useEd25519Verify, verifySignature, publicKeyFromDid, pae, base64Decode } from '../../protocol/index.ts'
import { installFastVerify } from '../../src/net/fast-verify.ts'

const VECTORS = new URL('../../protocol/vectors/', import.meta.url).pathname

/** Verify every vector's signature and many mutated signatures with both backends. */
function verdicts (): boolean[] {
  const out: boolean[] = []
  for (const f of readdirSync(VECTORS).filter(n => n.endsWith('.json'))) {
    const v = JSON.parse(readFileSync(join(VECTORS, f), 'utf8')) as { publicKey: string, envelope: { payload: string, payloadType: string, signatures: Array<{ sig: string }> } }
    let pk: Uint8Array
    try { pk = publicKeyFromDid(v.publicKey) } catch { out.push(false); continue }
    const msg = pae(v.envelope.payloadType, base64Decode(v.envelope.payload))
    let sig: Uint8Array
    try { sig = base64Decode(v.envelope.signatures[0]?.sig ?? '') } catch { out.push(false); continue }
    out.push(verifySignature(pk, msg, sig))
  }
  return out
}

describe('the OpenSSL ed25519 backend is exactly as strict as noble', () => {
  afterEach(() => { useEd25519Verify(null) })

  it('agrees on every protocol vector (valid, tampered, wrong key, non-canonical S)', () => {
    const noble = verdicts()
    installFastVerify()
    expect(verdicts()).toEqual(noble)
    expect(noble).toContain(true)
    expect(noble).toContain(false)
  })

  it('agrees on random messages and single-bit flips of signature and message', () => {
    const key = generateSigningKey()
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(), fc.boolean(), (msg, bit, flipSig) => {
      const sig = sign(key, msg)
      const s = Uint8Array.from(sig)
      const m = Uint8Array.from(msg)
      if (flipSig) s[(bit >> 3) % 64]! ^= 1 << (bit & 7)
      else if (m.length > 0) m[(bit >> 3) % m.length]! ^= 1 << (bit & 7)
      useEd25519Verify(null)
      const a = verifySignature(key.publicKey, m, s)
      installFastVerify()
      const b = verifySignature(key.publicKey, m, s)
      useEd25519Verify(null)
      return a === b
    }), { numRuns: 300 })
  })
})
