import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import type { BufferImporter, ImporterOptions } from 'ipfs-unixfs-importer'

/** multicodec of sha2-256 */
const SHA2_256 = 0x12

/**
 * The importer's leaf step for raw leaves, hashing with WebCrypto instead of
 * node:crypto's synchronous createHash.
 *
 * Why: the importer hashes every 1 MiB leaf on the main thread, one after
 * another, so an import could never run faster than one core's sha256 (and
 * ran at ~0.6 of it with the store removed). `crypto.subtle.digest` runs on
 * libuv's thread pool, so the leaves the importer already processes in
 * parallel (`blockWriteConcurrency`) are hashed on every core while the main
 * thread builds the DAG and writes blocks. The bytes hashed, the hash and the
 * CID (v1, raw, sha2-256) are exactly those of the default leaf step with
 * `rawLeaves: true`, which the profile vectors check.
 */
export function rawLeafImporter (options: Pick<ImporterOptions, 'onProgress'> = {}): BufferImporter {
  return async function * (file, blockstore) {
    let bytesWritten = 0n
    for await (const block of file.content) {
      yield async () => {
        // chunks are fresh Buffers read from files or copies of in-memory bytes, never shared memory
        const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', block as Uint8Array<ArrayBuffer>))
        const cid = CID.createV1(raw.code, createDigest(SHA2_256, digest))
        await blockstore.put(cid, block)
        bytesWritten += BigInt(block.byteLength)
        // the same progress event as the default leaf step, for the same listeners
        options.onProgress?.({ type: 'unixfs:importer:progress:file:write', detail: { bytesWritten, cid, path: file.path } } as unknown as Parameters<NonNullable<ImporterOptions['onProgress']>>[0])
        return { cid, size: BigInt(block.byteLength), block }
      }
    }
  }
}
