/**
 * Errors of the pack blockstore (src/store/pack). Each failure has its own
 * class, every class extends {@link PackStoreError} and carries a stable
 * `code`, so callers (helia, the daemon, the quota) branch on `err.code` or
 * `err.name` without parsing messages.
 */
import { CodedError } from '../../coded-error.ts'

/** Every code a {@link PackStoreError} can carry. */
export const PACK_STORE_ERROR_CODES = [
  'ERR_NOT_FOUND',
  'ERR_CORRUPT_BLOCK',
  'ERR_STORE_CLOSED',
  'ERR_STORE_FAILED',
  'ERR_BLOCK_TOO_LARGE'
] as const

export type PackStoreErrorCode = typeof PACK_STORE_ERROR_CODES[number]

/** The base of every error of src/store/pack: never thrown itself, only its subclasses. */
export class PackStoreError extends CodedError<PackStoreErrorCode> {}

export function isPackStoreError (e: unknown): e is PackStoreError {
  return e instanceof PackStoreError
}

/**
 * No block under this CID. Named `NotFoundError` (code ERR_NOT_FOUND) on
 * purpose: helia's pins and bitswap's ledger tell "missing" from "broken" by
 * `err.name === 'NotFoundError'`, the name interface-store's own class has.
 */
export class NotFoundError extends PackStoreError {
  override readonly code = 'ERR_NOT_FOUND' as const
  override name = 'NotFoundError'
  readonly cid: string

  constructor (cid: string) {
    super('ERR_NOT_FOUND', `block ${cid} is not in the store`)
    this.cid = cid
  }
}

/**
 * The bytes on disk do not match the checksum of their record (a flipped bit,
 * a torn write, a file edited by hand). They are never served: the block is
 * dropped from the index, so has() answers false from then on and helia
 * fetches it again from a peer instead of failing for ever.
 */
export class CorruptBlockError extends PackStoreError {
  override readonly code = 'ERR_CORRUPT_BLOCK' as const
  override name = 'CorruptBlockError'
  readonly cid: string
  readonly where: string

  constructor (cid: string, where: string) {
    super('ERR_CORRUPT_BLOCK', `block ${cid} is corrupt on disk (${where}): not served, dropped from the store so that it can be fetched again`)
    this.cid = cid
    this.where = where
  }
}

/** An operation on a store that is not open (never opened, or closed). */
export class StoreClosedError extends PackStoreError {
  override readonly code = 'ERR_STORE_CLOSED' as const
  override name = 'StoreClosedError'

  constructor (operation: string) {
    super('ERR_STORE_CLOSED', `pack blockstore is not open: cannot ${operation}`)
  }
}

/**
 * A write or fsync failed and its partial bytes could not be cut off again.
 * After a failed fsync the kernel may have dropped the dirty pages (Linux
 * does), so what the file holds is unknown: every later write is refused
 * until the store is reopened, which rescans and truncates the tail.
 */
export class StoreFailedError extends PackStoreError {
  override readonly code = 'ERR_STORE_FAILED' as const
  override name = 'StoreFailedError'

  constructor (message: string, options?: ErrorOptions) {
    super('ERR_STORE_FAILED', message, options)
  }
}

/** A block longer than one record can describe (its length is a 32-bit field). */
export class BlockTooLargeError extends PackStoreError {
  override readonly code = 'ERR_BLOCK_TOO_LARGE' as const
  override name = 'BlockTooLargeError'
  readonly bytes: number
  readonly limit: number

  constructor (bytes: number, limit: number) {
    super('ERR_BLOCK_TOO_LARGE', `block of ${bytes} bytes is over the store's limit of ${limit} bytes per block`)
    this.bytes = bytes
    this.limit = limit
  }
}
