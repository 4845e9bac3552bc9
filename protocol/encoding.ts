/**
 * Byte/string encodings used on the wire. Hand-written so that decoding is
 * *strict*: one byte string has exactly one accepted text form, otherwise an
 * attacker could re-encode a signed object into many distinct messages.
 */
import { MalformedError } from './errors.ts'

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i

/** Standard (RFC 4648 §4) base64 with padding. */
export function base64Encode (bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i]! << 16
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + '=='
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + '='
  }
  return out
}

/**
 * Strict standard base64: padding required, no whitespace, no URL-safe
 * alphabet, and the unused low bits of the last symbol must be zero
 * (`QQ==` is accepted, `QR==` is refused although lax decoders read both as "A").
 */
export function base64Decode (text: string, what = 'base64'): Uint8Array {
  if (typeof text !== 'string') throw new MalformedError(`${what}: not a string`)
  if (text.length % 4 !== 0) throw new MalformedError(`${what}: length is not a multiple of 4`)
  let pad = 0
  if (text.endsWith('==')) pad = 2
  else if (text.endsWith('=')) pad = 1
  const out = new Uint8Array((text.length / 4) * 3 - pad)
  let o = 0
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length
    let n = 0
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j)
      let v: number
      if (c === 61 /* = */ && last && j >= 4 - pad) v = 0
      else v = c < 128 ? B64_INDEX[c]! : -1
      if (v < 0) throw new MalformedError(`${what}: invalid character at ${i + j}`)
      n = (n << 6) | v
    }
    if (last && pad === 2) {
      if ((n & 0xffff) !== 0) throw new MalformedError(`${what}: non-canonical trailing bits`)
      out[o++] = n >> 16
    } else if (last && pad === 1) {
      if ((n & 0xff) !== 0) throw new MalformedError(`${what}: non-canonical trailing bits`)
      out[o++] = n >> 16
      out[o++] = (n >> 8) & 0xff
    } else {
      out[o++] = n >> 16
      out[o++] = (n >> 8) & 0xff
      out[o++] = n & 0xff
    }
  }
  return out
}

export function hexEncode (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

/** Lower-case hex only (one text form per byte string). */
export function hexDecode (text: string, what = 'hex'): Uint8Array {
  if (typeof text !== 'string' || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) {
    throw new MalformedError(`${what}: not lower-case hex of whole bytes`)
  }
  const out = new Uint8Array(text.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16)
  return out
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function utf8Encode (text: string): Uint8Array {
  return encoder.encode(text)
}

/** Fatal UTF-8 decoding: invalid sequences are an error, not U+FFFD. A BOM is kept (and then refused by JSON.parse). */
export function utf8Decode (bytes: Uint8Array, what = 'bytes'): string {
  try {
    return decoder.decode(bytes)
  } catch (err) {
    throw new MalformedError(`${what}: not valid UTF-8`, { cause: err })
  }
}

/** JSON.parse that can only fail with MalformedError (including on stack exhaustion from deep nesting). */
export function parseJson (bytes: Uint8Array, what = 'payload'): unknown {
  const text = utf8Decode(bytes, what)
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new MalformedError(`${what}: not valid JSON`, { cause: err })
  }
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!
  return d === 0
}
