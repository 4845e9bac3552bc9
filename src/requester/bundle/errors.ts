/**
 * Errors of proof bundles. Every thrown one extends {@link BundleError} and
 * carries a stable `code`. Verification itself never throws: it reports
 * {@link BundleProblem}s instead, because a verifier must be able to say
 * everything that is wrong with a file, not only the first thing; the
 * CarFormatError and ManifestSchemaError its parsers throw become the
 * problems of the same code.
 */
import { CodedError } from '../../coded-error.ts'

/** Every code a {@link BundleError} can carry. */
export const BUNDLE_ERROR_CODES = [
  'ERR_BUNDLE_INPUT',
  'ERR_CAR_MALFORMED',
  'ERR_MANIFEST'
] as const

export type BundleErrorCode = typeof BUNDLE_ERROR_CODES[number]

/** The base of every error of src/requester/bundle: never thrown itself, only its subclasses. */
export class BundleError extends CodedError<BundleErrorCode> {}

export function isBundleError (e: unknown): e is BundleError {
  return e instanceof BundleError
}

/** writeBundle was asked to bundle things that do not belong together (an attestation for another build, an artifact CID of the wrong kind). */
export class BundleInputError extends BundleError {
  override readonly code = 'ERR_BUNDLE_INPUT' as const
  override name = 'BundleInputError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_BUNDLE_INPUT', message, options) }
}

/**
 * parseCar met bytes that are not a well-formed CARv1 (truncated, bad
 * varints, a header that is not a dag-cbor map with roots, a bad CID in a
 * section). verifyBundle reports it as the ERR_CAR_MALFORMED problem.
 */
export class CarFormatError extends BundleError {
  override readonly code = 'ERR_CAR_MALFORMED' as const
  override name = 'CarFormatError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_CAR_MALFORMED', message, options) }
}

/**
 * validateManifest met a manifest block that is not the expected map (a
 * missing or unknown field, a wrong type, a CID of the wrong kind).
 * verifyBundle reports it as the ERR_MANIFEST problem.
 */
export class ManifestSchemaError extends BundleError {
  override readonly code = 'ERR_MANIFEST' as const
  override name = 'ManifestSchemaError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_MANIFEST', message, options) }
}

/** Stable codes of the problems verifyBundle reports. */
export type BundleProblemCode =
  | 'ERR_CAR_MALFORMED'        // not a CAR file, truncated, bad varints
  | 'ERR_CAR_VERSION'          // not CARv1
  | 'ERR_ROOTS'                // not exactly one root
  | 'ERR_HASH_FUNCTION'        // a block named by something other than a 32-byte sha2-256 multihash
  | 'ERR_BLOCK_HASH'           // a block's bytes do not hash to its CID
  | 'ERR_MISSING_BLOCK'        // the manifest, job or an attestation block is absent
  | 'ERR_MANIFEST'             // manifest block is not the expected dag-cbor object
  | 'ERR_JOB_SIGNATURE'        // the job envelope's signature does not verify
  | 'ERR_JOB_INVALID'          // the job envelope fails another protocol check
  | 'ERR_BUILD_ID_MISMATCH'    // manifest.buildId differs from the job's
  | 'ERR_ATTESTATION_SIGNATURE'
  | 'ERR_ATTESTATION_INVALID'
  | 'ERR_ATTESTATION_BUILD_ID' // attestation for another build than the job's
  | 'ERR_COMMITMENT_INVALID'   // a commitment envelope fails a protocol check (signature included)
  | 'ERR_ARTIFACT_INCOMPLETE'  // a block of the artifact DAG is not in the CAR
  | 'ERR_ARTIFACT_MALFORMED'   // artifact DAG has a non-UnixFS codec or an undecodable node
  | 'ERR_UNREFERENCED_BLOCK'   // a block in the CAR that the manifest does not reach
  | 'ERR_POLICY_NOT_MET'       // the attestations do not reach an `accepted` verdict
  | 'ERR_ARTIFACT_MISMATCH'    // accepted, but for another artifact than manifest.artifact

export interface BundleProblem {
  code: BundleProblemCode
  message: string
}
