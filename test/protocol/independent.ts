/**
 * An independent DSSE/ed25519 verifier for cross-checking ours: node:crypto
 * (OpenSSL) for the signature, and PAE, base64 and did:key decoding re-written
 * here from the specs without calling protocol/ code.
 */
import { createHash, createPublicKey, verify } from 'node:crypto'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

export function base58Decode (text: string): Uint8Array {
  let n = 0n
  for (const ch of text) {
    const v = B58.indexOf(ch)
    if (v < 0) throw new Error('bad base58')
    n = n * 58n + BigInt(v)
  }
  const bytes: number[] = []
  while (n > 0n) { bytes.unshift(Number(n % 256n)); n /= 256n }
  for (const ch of text) { if (ch === '1') bytes.unshift(0); else break }
  return Uint8Array.from(bytes)
}

export function base58Encode (bytes: Uint8Array): string {
  let n = 0n
  for (const b of bytes) n = n * 256n + BigInt(b)
  let out = ''
  while (n > 0n) { out = B58[Number(n % 58n)]! + out; n /= 58n }
  for (const b of bytes) { if (b === 0) out = '1' + out; else break }
  return out
}

/** did:key → raw ed25519 key (multibase z, multicodec 0xed 0x01). */
export function rawKeyFromDid (did: string): Uint8Array {
  if (!did.startsWith('did:key:z')) throw new Error('not did:key:z')
  const bytes = base58Decode(did.slice('did:key:z'.length))
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) throw new Error('not ed25519-pub')
  return bytes.subarray(2)
}

export function independentPae (payloadType: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([Buffer.from('DSSEv1 '), Buffer.from(String(t.length)), Buffer.from(' '), t,
    Buffer.from(' '), Buffer.from(String(payload.length)), Buffer.from(' '), Buffer.from(payload)])
}

/** Buffer's base64 decoder is lax; canonical = re-encoding gives back the same text. */
export function strictBase64 (text: string): Buffer | null {
  const b = Buffer.from(text, 'base64')
  return b.toString('base64') === text ? b : null
}

export function nodeVerify (rawKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(rawKey).toString('base64url') }, format: 'jwk' })
    return verify(null, message, key, sig)
  } catch {
    return false
  }
}

export interface EnvelopeLike { payload: string; payloadType: string; signatures: Array<{ keyid?: string; sig: string }> }

/** Envelope-level validity for an expected payloadType and signer did, computed without protocol/. */
export function independentlyValid (env: EnvelopeLike, expectedPayloadType: string, did: string, opts: { strictBase64: boolean } = { strictBase64: true }): boolean {
  if (env.payloadType !== expectedPayloadType || env.signatures.length !== 1) return false
  const decode = (s: string): Buffer | null => opts.strictBase64 ? strictBase64(s) : Buffer.from(s, 'base64')
  const payload = decode(env.payload)
  const sig = decode(env.signatures[0]!.sig)
  if (payload == null || sig == null || sig.length !== 64) return false
  let key: Uint8Array
  try { key = rawKeyFromDid(did) } catch { return false }
  return nodeVerify(key, independentPae(env.payloadType, payload), sig)
}

/** The payload of an envelope as JSON (strict base64), read without protocol/. */
export function payloadJson (env: EnvelopeLike): Record<string, unknown> {
  const bytes = strictBase64(env.payload)
  if (bytes == null) throw new Error('payload is not canonical base64')
  return JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
}

/**
 * A job's `vary` (PROTOCOL.md §5.1), checked from the spec's words: absent,
 * or 1..8 known variations ("clock"), strictly ascending.
 */
export function independentVary (job: Record<string, unknown>): string[] | undefined {
  if (!Object.hasOwn(job, 'vary')) return undefined
  const vary = job.vary
  if (!Array.isArray(vary) || vary.length < 1 || vary.length > 8) throw new Error('vary: expected 1..8 entries')
  for (const [i, v] of vary.entries()) {
    if (v !== 'clock') throw new Error(`vary[${i}]: unknown variation ${JSON.stringify(v)}`)
    if (i > 0 && !((vary[i - 1] as string) < v)) throw new Error(`vary[${i}]: not strictly ascending`)
  }
  return vary as string[]
}

/** The clock offset a worker derives for a job (PROTOCOL.md §5.1), with node:crypto: +3600..+259200 s from sha256(did "\n" jobId). */
export function independentClockOffset (workerDid: string, jobId: string): number {
  const h = createHash('sha256').update(`${workerDid}\n${jobId}`, 'utf8').digest()
  return 3600 + Number(h.readUIntBE(0, 6) % (72 * 3600 - 3600 + 1))
}

/**
 * An attestation statement's variation record (PROTOCOL.md §5.2):
 * predicate.buildDefinition.internalParameters.variation, absent or exactly
 * { clockOffsetSeconds: integer, |x| ≤ 10 years of 365 days }.
 */
export function independentVariation (statement: Record<string, unknown>): { clockOffsetSeconds: number } | undefined {
  const internal = (((statement.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).internalParameters) as Record<string, unknown>
  if (!Object.hasOwn(internal, 'variation')) return undefined
  const v = internal.variation as Record<string, unknown>
  if (typeof v !== 'object' || v === null || Object.keys(v).join(',') !== 'clockOffsetSeconds') throw new Error('variation: expected exactly { clockOffsetSeconds }')
  const s = v.clockOffsetSeconds
  if (typeof s !== 'number' || !Number.isSafeInteger(s) || Math.abs(s) > 10 * 365 * 24 * 3600) throw new Error('variation.clockOffsetSeconds: expected an integer within ±10 years')
  return { clockOffsetSeconds: s }
}
