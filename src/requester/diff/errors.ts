/**
 * Errors of dispute diagnosis. Every one extends {@link DiffError} and carries
 * a stable `code`. A file of a dispute that is over a size budget fails with
 * src/content's ContentTooLargeError (ERR_CONTENT_TOO_LARGE), the same error
 * every other cap on content throws.
 */
import { CodedError } from '../../coded-error.ts'

/** Every code a {@link DiffError} can carry. */
export const DIFF_ERROR_CODES = [
  'ERR_UNSUPPORTED_NODE',
  'ERR_NOT_A_FILE',
  'ERR_DIFFOSCOPE_TIMEOUT',
  'ERR_DIFFOSCOPE_FAILED',
  'ERR_ABORTED',
  'ERR_NOT_A_DISPUTE'
] as const

export type DiffErrorCode = typeof DIFF_ERROR_CODES[number]

/** The base of every error of src/requester/diff: never thrown itself, only its subclasses. */
export class DiffError extends CodedError<DiffErrorCode> {}

export function isDiffError (e: unknown): e is DiffError {
  return e instanceof DiffError
}

/** diffTrees met a node that is not a UnixFS file, directory or symlink (e.g. dag-cbor): artifacts never contain one. */
export class UnsupportedNodeError extends DiffError {
  override readonly code = 'ERR_UNSUPPORTED_NODE' as const
  override name = 'UnsupportedNodeError'
  readonly path: string

  constructor (path: string, what: string) {
    super('ERR_UNSUPPORTED_NODE', `Unsupported node at ${JSON.stringify(path)}: ${what}`)
    this.path = path
  }
}

/**
 * diagnoseDispute was to export the bytes of a file, but the CID names
 * something else (a directory, a symlink…): the DAG does not hold what the
 * tree walk listed. Recorded in that pair's report entry.
 */
export class NotAFileError extends DiffError {
  override readonly code = 'ERR_NOT_A_FILE' as const
  override name = 'NotAFileError'
  readonly cid: string

  constructor (cid: string, found: string) {
    super('ERR_NOT_A_FILE', `${cid} is not a file (found ${found})`)
    this.cid = cid
  }
}

/** a dispute report was asked for fewer than two CIDs that trusted keys named: nothing to compare (untrusted CIDs are never fetched) */
export class NotADisputeError extends DiffError {
  override readonly code = 'ERR_NOT_A_DISPUTE' as const
  override name = 'NotADisputeError'

  constructor (message: string) {
    super('ERR_NOT_A_DISPUTE', message)
  }
}

/** diffoscope ran longer than allowed and was killed (it can take hours on big archives). */
export class DiffoscopeTimeoutError extends DiffError {
  override readonly code = 'ERR_DIFFOSCOPE_TIMEOUT' as const
  override name = 'DiffoscopeTimeoutError'
  readonly timeoutMs: number

  constructor (timeoutMs: number) {
    super('ERR_DIFFOSCOPE_TIMEOUT', `diffoscope did not finish within ${timeoutMs} ms and was killed`)
    this.timeoutMs = timeoutMs
  }
}

/** diffoscope exited with an error status (>= 2) or was killed by a signal. */
export class DiffoscopeFailedError extends DiffError {
  override readonly code = 'ERR_DIFFOSCOPE_FAILED' as const
  override name = 'DiffoscopeFailedError'
  readonly exitCode: number | null
  readonly stderr: string

  constructor (exitCode: number | null, signal: string | null, stderr: string) {
    super('ERR_DIFFOSCOPE_FAILED', `diffoscope failed (${exitCode != null ? `exit code ${exitCode}` : `signal ${signal ?? 'unknown'}`}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
    this.exitCode = exitCode
    this.stderr = stderr
  }
}

/**
 * diffoscopeReport's signal was aborted with a reason that is not an Error
 * (an Error reason, such as the default DOMException, is rethrown as is).
 * Named AbortError like that DOMException, so `err.name === 'AbortError'`
 * holds for every abort; the reason is kept as `cause`.
 */
export class AbortError extends DiffError {
  override readonly code = 'ERR_ABORTED' as const
  override name = 'AbortError'

  constructor (reason?: unknown) {
    super('ERR_ABORTED', 'aborted', reason === undefined ? undefined : { cause: reason })
  }
}
