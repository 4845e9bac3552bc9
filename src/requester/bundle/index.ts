/**
 * Proof bundles: a CARv1 holding the job, the attestations and the artifact
 * DAG under a dag-cbor manifest, checkable offline against a trust policy.
 */
export { writeBundle } from './write-bundle.ts'
export type { BundleWriteProgress, WriteBundleInput, WriteBundleOptions, WriteBundleResult } from './write-bundle.ts'
export { verifyBundle } from './verify-bundle.ts'
export type { BundleReport, VerifyBundleOptions } from './verify-bundle.ts'
export { BUNDLE_TYPE, BUNDLE_VERSION, MAX_BUNDLE_ATTESTATIONS, validateManifest } from './manifest.ts'
export type { BundleManifest } from './manifest.ts'
export { parseCar } from './car-reader.ts'
export type { CarBlock, ParsedCar } from './car-reader.ts'
export * from './errors.ts'
