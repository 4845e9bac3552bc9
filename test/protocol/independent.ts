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
 * or 1..8 known variations ("clock", "cpus", "hostname", "timezone"),
 * strictly ascending.
 */
export function independentVary (job: Record<string, unknown>): string[] | undefined {
  if (!Object.hasOwn(job, 'vary')) return undefined
  const vary = job.vary
  if (!Array.isArray(vary) || vary.length < 1 || vary.length > 8) throw new Error('vary: expected 1..8 entries')
  for (const [i, v] of vary.entries()) {
    if (!['clock', 'cpus', 'hostname', 'timezone'].includes(v as string)) throw new Error(`vary[${i}]: unknown variation ${JSON.stringify(v)}`)
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
 * The zones of the 'timezone' variation (PROTOCOL.md §5.1), copied from the
 * spec's list, in its order.
 */
export const INDEPENDENT_ZONES = ['America/Los_Angeles', 'America/St_Johns', 'America/Sao_Paulo', 'Asia/Kathmandu', 'Asia/Kolkata', 'Asia/Tehran',
  'Asia/Tokyo', 'Australia/Adelaide', 'Europe/Berlin', 'Pacific/Chatham', 'Pacific/Kiritimati', 'Pacific/Marquesas']

/** sha256("concur-vary-" kind "\n" did "\n" jobId), PROTOCOL.md §5.1 */
function varyDigest (kind: string, workerDid: string, jobId: string): Buffer {
  return createHash('sha256').update(`concur-vary-${kind}\n${workerDid}\n${jobId}`, 'utf8').digest()
}

/** hostname: "concur-" + hex of the digest's first 4 bytes */
export function independentHostname (workerDid: string, jobId: string): string {
  return `concur-${varyDigest('hostname', workerDid, jobId).subarray(0, 4).toString('hex')}`
}

/** timezone: the zone at (first 6 bytes, big-endian) mod 12 */
export function independentTimezone (workerDid: string, jobId: string): string {
  return INDEPENDENT_ZONES[varyDigest('timezone', workerDid, jobId).readUIntBE(0, 6) % INDEPENDENT_ZONES.length]!
}

/** cpus: 1 + (first 6 bytes, big-endian) mod parallelism */
export function independentCpus (workerDid: string, jobId: string, parallelism: number): number {
  return 1 + varyDigest('cpus', workerDid, jobId).readUIntBE(0, 6) % parallelism
}

export interface IndependentVariation { clockOffsetSeconds?: number, cpus?: number, hostname?: string, timezone?: string }

/**
 * An attestation statement's variation record (PROTOCOL.md §5.2):
 * predicate.buildDefinition.internalParameters.variation, absent or a
 * non-empty object of, in this order: clockOffsetSeconds (integer, |x| ≤ 10
 * years of 365 days), cpus (integer 1..1024), hostname ("concur-" + 8
 * lowercase hex), timezone (one of the listed zones).
 */
export function independentVariation (statement: Record<string, unknown>): IndependentVariation | undefined {
  const internal = (((statement.predicate as Record<string, unknown>).buildDefinition as Record<string, unknown>).internalParameters) as Record<string, unknown>
  if (!Object.hasOwn(internal, 'variation')) return undefined
  const v = internal.variation as Record<string, unknown>
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('variation: expected an object')
  const order = ['clockOffsetSeconds', 'cpus', 'hostname', 'timezone']
  const keys = Object.keys(v)
  if (keys.length === 0) throw new Error('variation: expected at least one key')
  if (keys.some(k => !order.includes(k)) || keys.join(',') !== order.filter(k => keys.includes(k)).join(',')) throw new Error(`variation: unknown key or out of order: ${keys.join(',')}`)
  const out: IndependentVariation = {}
  if ('clockOffsetSeconds' in v) {
    const s = v.clockOffsetSeconds
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || Math.abs(s) > 10 * 365 * 24 * 3600) throw new Error('variation.clockOffsetSeconds: expected an integer within ±10 years')
    out.clockOffsetSeconds = s
  }
  if ('cpus' in v) {
    if (typeof v.cpus !== 'number' || !Number.isInteger(v.cpus) || v.cpus < 1 || v.cpus > 1024) throw new Error('variation.cpus: expected an integer 1..1024')
    out.cpus = v.cpus
  }
  if ('hostname' in v) {
    if (typeof v.hostname !== 'string' || !/^concur-[0-9a-f]{8}$/.test(v.hostname)) throw new Error('variation.hostname: expected concur-<8 hex>')
    out.hostname = v.hostname
  }
  if ('timezone' in v) {
    if (typeof v.timezone !== 'string' || !INDEPENDENT_ZONES.includes(v.timezone)) throw new Error('variation.timezone: not a listed zone')
    out.timezone = v.timezone
  }
  return out
}
