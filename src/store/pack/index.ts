/**
 * The pack blockstore: append-only pack files with an in-memory index, made
 * for 1 MiB blocks (see pack-blockstore.ts).
 */
export { PackBlockstore, DEFAULT_COMPACT_THRESHOLD, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_PACK_BYTES } from './pack-blockstore.ts'
export type { PackBlockstoreInit, PackStoreStats, RecoveryReport } from './pack-blockstore.ts'
export type { CompactOptions, CompactProgress, CompactResult } from './compact.ts'
export type { ChecksumPolicy } from './record.ts'
export * from './errors.ts'
export { migrateFromFsBlockstore } from './migrate.ts'
export type { MigrateOptions, MigrateResult } from './migrate.ts'
