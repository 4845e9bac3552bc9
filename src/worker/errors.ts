/**
 * Errors of the worker (src/worker). Each failure has its own class, every
 * class extends {@link WorkerError} and carries a stable `code`, so callers
 * (the worker service, the daemon) can branch on `err.code` without parsing
 * messages. A build that runs and fails is not an error: it is attested as a
 * failure. These are the ways a build ends without an attestation.
 */
import { CodedError } from '../coded-error.ts'

/** Every code a {@link WorkerError} can carry. */
export const WORKER_ERROR_CODES = [
  'ERR_INPUT_FETCH',
  'ERR_BUILD_ABORTED'
] as const

export type WorkerErrorCode = typeof WORKER_ERROR_CODES[number]

/** The base of every error of src/worker: never thrown itself, only its subclasses. */
export class WorkerError extends CodedError<WorkerErrorCode> {}

export function isWorkerError (e: unknown): e is WorkerError {
  return e instanceof WorkerError
}

/** Inputs could not be had (no peer delivered them, or over a volunteer's cap): not the build's fault, so nothing is attested. */
export class InputFetchError extends WorkerError {
  override readonly code = 'ERR_INPUT_FETCH' as const
  override name = 'InputFetchError'

  constructor (message: string, options?: ErrorOptions) {
    super('ERR_INPUT_FETCH', message, options)
  }
}

/** The build was stopped (the worker is shutting down) before it finished: nothing is attested. */
export class BuildAbortedError extends WorkerError {
  override readonly code = 'ERR_BUILD_ABORTED' as const
  override name = 'BuildAbortedError'

  constructor (message = 'build aborted', options?: ErrorOptions) {
    super('ERR_BUILD_ABORTED', message, options)
  }
}
