/**
 * Errors of bundle writing. Verification never throws: it reports
 * {@link BundleProblem}s instead, because a verifier must be able to say
 * everything that is wrong with a file, not only the first thing.
 */

export type BundleErrorCode = 'ERR_BUNDLE_INPUT'

/** writeBundle was asked to bundle things that do not belong together. */
export class BundleInputError extends Error {
  readonly code = 'ERR_BUNDLE_INPUT' as const
  override name = 'BundleInputError'
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
  | 'ERR_ARTIFACT_INCOMPLETE'  // a block of the artifact DAG is not in the CAR
  | 'ERR_ARTIFACT_MALFORMED'   // artifact DAG has a non-UnixFS codec or an undecodable node
  | 'ERR_UNREFERENCED_BLOCK'   // a block in the CAR that the manifest does not reach
  | 'ERR_POLICY_NOT_MET'       // the attestations do not reach an `accepted` verdict
  | 'ERR_ARTIFACT_MISMATCH'    // accepted, but for another artifact than manifest.artifact

export interface BundleProblem {
  code: BundleProblemCode
  message: string
}
