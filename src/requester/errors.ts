/**
 * Errors of the requester. One base class with a stable code (the model is
 * protocol/errors.ts), so the API maps each failure to one HTTP status
 * (node/api/error-status.ts) and the CLI to one exit code, without parsing
 * messages.
 */
import { CodedError } from '../coded-error.ts'

export const REQUESTER_ERROR_CODES = [
  'ERR_NO_POLICY',
  'ERR_UNKNOWN_JOB',
  'ERR_BAD_SOURCE',
  'ERR_NO_LOGS',
  'ERR_NOT_A_FILE',
  'ERR_LOG_TOO_LARGE',
  'ERR_NO_DISPUTE',
  'ERR_NO_ARTIFACT',
  'ERR_JOB_TOO_LONG'
] as const

export type RequesterErrorCode = typeof REQUESTER_ERROR_CODES[number]

export class RequesterError extends CodedError<RequesterErrorCode> {}

export function isRequesterError (e: unknown): e is RequesterError {
  return e instanceof RequesterError
}

/** No usable trust policy: nothing can be submitted, and nothing is evaluated. The message says what to run. */
export class NoPolicyError extends RequesterError {
  constructor (message: string) { super('ERR_NO_POLICY', message) }
}

/** A job id this requester did not submit (or, for logs, does not hold). */
export class UnknownJobError extends RequesterError {
  constructor (message: string) { super('ERR_UNKNOWN_JOB', message) }
}

/** The source to submit is not an absolute path to a directory. */
export class BadSourceError extends RequesterError {
  constructor (message: string) { super('ERR_BAD_SOURCE', message) }
}

/**
 * A job asked to stay open longer than nodes keep jobs (src/store/limits.ts,
 * maxJobLifetimeMs): peers would drop it unseen, so it is refused here.
 */
export class JobTooLongError extends RequesterError {
  constructor (message: string) { super('ERR_JOB_TOO_LONG', message) }
}

/** No attestation of the job carries a log (from the asked-for workers). */
export class NoLogsError extends RequesterError {
  constructor (message: string) { super('ERR_NO_LOGS', message) }
}

/** A log CID that names a directory or a link, not a file. */
export class NotAFileError extends RequesterError {
  constructor (message: string) { super('ERR_NOT_A_FILE', message) }
}

/** A log whose DAG structure is over what one tail may read. */
export class LogTooLargeError extends RequesterError {
  constructor (message: string) { super('ERR_LOG_TOO_LARGE', message) }
}

/** A dispute was to be diagnosed but the verdict does not hold two artifacts. */
export class NoDisputeError extends RequesterError {
  constructor (message: string) { super('ERR_NO_DISPUTE', message) }
}

/** A bundle was to be written for a verdict that names no artifact. */
export class NoArtifactError extends RequesterError {
  constructor (message: string) { super('ERR_NO_ARTIFACT', message) }
}
