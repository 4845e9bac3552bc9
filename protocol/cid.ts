/**
 * CID helpers. Hashing goes through @noble/hashes (pure JS) rather than
 * `multiformats/hashes/sha2`, whose node build imports node:crypto.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { SchemaError } from './errors.ts'
import { hexEncode } from './encoding.ts'

export const CODEC_RAW = 0x55
export const CODEC_DAG_PB = 0x70
export const CODEC_DAG_CBOR = 0x71
export const MH_SHA2_256 = 0x12

/** CIDv1 with a sha2-256 multihash over `bytes`. */
export function cidOf (codec: number, bytes: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(MH_SHA2_256, sha256(bytes)))
}

/**
 * Parses a CID string and insists on the one form concur uses: CIDv1,
 * base32 lower-case multibase ('b…', the default string form), a sha2-256
 * multihash, and one of the allowed codecs. Canonical text matters because CID
 * strings are hashed into buildIds and compared as convergence keys.
 */
export function parseCid (value: unknown, path: string, codecs: readonly number[]): CID {
  if (typeof value !== 'string' || value.length > 128) throw new SchemaError(path, 'expected a CID string')
  let cid: CID
  try {
    cid = CID.parse(value)
  } catch (err) {
    throw new SchemaError(path, 'not a valid CID', { cause: err })
  }
  if (cid.version !== 1) throw new SchemaError(path, 'expected a CIDv1')
  if (cid.toString() !== value) throw new SchemaError(path, 'CID is not in canonical base32 form')
  if (cid.multihash.code !== MH_SHA2_256 || cid.multihash.digest.length !== 32) throw new SchemaError(path, 'expected a sha2-256 multihash')
  if (!codecs.includes(cid.code)) throw new SchemaError(path, `unexpected codec 0x${cid.code.toString(16)}`)
  return cid
}

/**
 * The in-toto digest of a CID: sha256 of the CID's root block bytes, which is
 * exactly the CID's sha2-256 multihash digest. Anyone holding the root block can
 * check it with plain `sha256sum`.
 */
export function sha256HexOfCid (cid: CID): string {
  return hexEncode(cid.multihash.digest)
}

/** Content codecs allowed for unixfs trees (source, rootfs, artifact, log). */
export const UNIXFS_CODECS: readonly number[] = [CODEC_DAG_PB, CODEC_RAW]
