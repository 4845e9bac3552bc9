/**
 * One table from error code to HTTP status, for every error any module
 * throws. Typed over the modules' code unions: a new code anywhere does not
 * compile until it has a status here. A route throws its module's error; the
 * server answers with this status and the error's code and message.
 */
import { isProtocolError } from '../../protocol/index.ts'
import type { ProtocolErrorCode } from '../../protocol/index.ts'
import type { ContentErrorCode } from '../../src/content/errors.ts'
import type { NetErrorCode } from '../../src/net/errors.ts'
import type { BundleErrorCode } from '../../src/requester/bundle/errors.ts'
import type { DiffErrorCode } from '../../src/requester/diff/errors.ts'
import type { RequesterErrorCode } from '../../src/requester/errors.ts'
import type { SandboxErrorCode } from '../../src/sandbox/errors.ts'
import type { WorkerErrorCode } from '../../src/worker/errors.ts'
import type { EnvErrorCode } from '../../src/env/errors.ts'
import type { PackStoreErrorCode } from '../../src/store/pack/errors.ts'
import type { CliErrorCode } from '../errors.ts'

export type KnownErrorCode =
  | ProtocolErrorCode | ContentErrorCode | NetErrorCode | BundleErrorCode | DiffErrorCode
  | RequesterErrorCode | SandboxErrorCode | WorkerErrorCode | CliErrorCode | EnvErrorCode | PackStoreErrorCode

const BAD_REQUEST = 400
const NOT_FOUND = 404
const CONFLICT = 409
const PRECONDITION_FAILED = 412
const TOO_LARGE = 413
const UNPROCESSABLE = 422
const INTERNAL = 500
const BAD_GATEWAY = 502
const UNAVAILABLE = 503
const GATEWAY_TIMEOUT = 504

export const HTTP_STATUS: Readonly<Record<KnownErrorCode, number>> = Object.freeze({
  // protocol: the caller sent (or asked us to sign) something invalid
  ERR_TOO_LARGE: TOO_LARGE,
  ERR_MALFORMED: BAD_REQUEST,
  ERR_SCHEMA: BAD_REQUEST,
  ERR_UNSUPPORTED_VERSION: BAD_REQUEST,
  ERR_PAYLOAD_TYPE: BAD_REQUEST,
  ERR_BAD_SIGNATURE: BAD_REQUEST,
  ERR_BAD_KEY: BAD_REQUEST,
  ERR_SMALL_ORDER_KEY: BAD_REQUEST,
  ERR_EXPIRED: BAD_REQUEST,
  ERR_FUTURE: BAD_REQUEST,
  ERR_BUILD_ID_MISMATCH: BAD_REQUEST,
  ERR_POLICY: BAD_REQUEST,
  ERR_NOT_EQUIVOCATION: BAD_REQUEST,
  // env: `concur env` (create runs in the CLI; show reads a DAG a peer served)
  ERR_ENV_TOOL_MISSING: PRECONDITION_FAILED,
  ERR_ENV_TARGET: CONFLICT,
  ERR_ENV_CREATE: INTERNAL,
  ERR_ENV_ARGS: BAD_REQUEST,
  ERR_BAD_ENV_MANIFEST: UNPROCESSABLE,
  // content: a path the caller named, or a DAG a peer served
  ERR_UNSUPPORTED_FILE_TYPE: BAD_REQUEST,
  ERR_UNSUPPORTED_NAME: BAD_REQUEST,
  ERR_CONTENT_TOO_LARGE: TOO_LARGE,
  ERR_UNSAFE_PATH: BAD_REQUEST,
  ERR_TARGET_NOT_EMPTY: CONFLICT,
  ERR_NOT_A_DIRECTORY: BAD_REQUEST,
  ERR_UNSUPPORTED_CODEC: BAD_GATEWAY,
  ERR_MALFORMED_FILE: BAD_GATEWAY,
  ERR_IMPORT_FAILED: INTERNAL,
  // a read after its export ended: never reaches a caller of the API (the export has answered already)
  ERR_EXPORT_ENDED: INTERNAL,
  // net
  ERR_INVALID_MESSAGE: BAD_REQUEST,
  ERR_REQUEST_TOO_LARGE: TOO_LARGE,
  ERR_MALFORMED_REQUEST: BAD_REQUEST,
  ERR_ANSWER_CUT: BAD_GATEWAY,
  ERR_TRANSFER_MISMATCH: BAD_GATEWAY,
  ERR_TRANSFER_PROTOCOL: BAD_GATEWAY,
  ERR_TRANSFER_STALLED: GATEWAY_TIMEOUT,
  // the node's own block store (src/store/pack)
  ERR_NOT_FOUND: NOT_FOUND,
  ERR_CORRUPT_BLOCK: INTERNAL,
  ERR_STORE_CLOSED: UNAVAILABLE,
  ERR_STORE_FAILED: INTERNAL,
  ERR_BLOCK_TOO_LARGE: TOO_LARGE,
  // bundles and dispute diagnosis
  ERR_BUNDLE_INPUT: UNPROCESSABLE,
  ERR_CAR_MALFORMED: UNPROCESSABLE,
  ERR_MANIFEST: UNPROCESSABLE,
  ERR_UNSUPPORTED_NODE: UNPROCESSABLE,
  ERR_NOT_A_FILE: BAD_REQUEST,
  ERR_NOT_A_DISPUTE: CONFLICT,
  ERR_DIFFOSCOPE_TIMEOUT: GATEWAY_TIMEOUT,
  ERR_DIFFOSCOPE_FAILED: INTERNAL,
  ERR_ABORTED: UNAVAILABLE,
  // requester
  ERR_NO_POLICY: PRECONDITION_FAILED,
  ERR_UNKNOWN_JOB: NOT_FOUND,
  ERR_BAD_SOURCE: BAD_REQUEST,
  ERR_JOB_TOO_LONG: BAD_REQUEST,
  ERR_NO_LOGS: NOT_FOUND,
  ERR_LOG_TOO_LARGE: TOO_LARGE,
  ERR_NO_DISPUTE: CONFLICT,
  ERR_NO_ARTIFACT: CONFLICT,
  // sandbox and worker: the daemon's own state, not the caller's request
  ERR_NO_SANDBOX: UNAVAILABLE,
  ERR_BAD_LIMITS: BAD_REQUEST,
  ERR_BAD_SPEC: BAD_REQUEST,
  ERR_CGROUP: INTERNAL,
  ERR_SANDBOX_OUTPUT: INTERNAL,
  ERR_SCRATCH_UNSAFE: INTERNAL,
  ERR_INPUT_FETCH: BAD_GATEWAY,
  ERR_BUILD_ABORTED: UNAVAILABLE,
  // the CLI's own (a route may throw a UsageError with the remedy, e.g. a policy)
  ERR_CONFIG: INTERNAL,
  ERR_USAGE: BAD_REQUEST,
  ERR_NO_DAEMON: UNAVAILABLE,
  ERR_DAEMON_NOT_ANSWERING: UNAVAILABLE,
  ERR_HOME_IN_USE: UNAVAILABLE,
  ERR_API: BAD_GATEWAY,
  ERR_PORT_IN_USE: CONFLICT,
  ERR_TIMEOUT: GATEWAY_TIMEOUT,
  ERR_API_TOKEN: INTERNAL,
  ERR_BUNDLE_INVALID: UNPROCESSABLE,
  ERR_DEVNET: INTERNAL
})

/**
 * Codes of ipfs-unixfs-exporter (under `concur get`, log tails, diagnosis):
 * each says a peer's DAG is not what it claims, not that this daemon failed.
 */
const EXPORTER_STATUS: Readonly<Record<string, number>> = Object.freeze({
  ERR_NOT_UNIXFS: BAD_GATEWAY,
  ERR_OVER_READ: BAD_GATEWAY,
  ERR_UNDER_READ: BAD_GATEWAY,
  ERR_NO_RESOLVER: BAD_GATEWAY,
  ERR_NOT_FOUND: NOT_FOUND,
  ERR_INVALID_PARAMS: BAD_REQUEST,
  ERR_BAD_PATH: BAD_REQUEST
})

/** The status an error is answered with: its own (HttpError), the table's, 400 for any protocol error, else 500. */
export function httpStatusOf (err: unknown): number {
  const e = err as { status?: unknown, code?: unknown }
  if (typeof e?.status === 'number') return e.status
  if (typeof e?.code === 'string' && Object.hasOwn(HTTP_STATUS, e.code)) return HTTP_STATUS[e.code as KnownErrorCode]
  if (typeof e?.code === 'string' && Object.hasOwn(EXPORTER_STATUS, e.code)) return EXPORTER_STATUS[e.code] as number
  if (isProtocolError(err)) return BAD_REQUEST
  return INTERNAL
}
