/**
 * Errors thrown by the build sandbox. Each has a stable `code` so callers
 * (the worker, the CLI) can branch without parsing messages.
 *
 * Every error the sandbox throws of its own is one of these classes, never a
 * bare `Error`: they all extend `SandboxError`, so `isSandboxError(e)` tells
 * a refusal or failure of the sandbox apart from anything else that went
 * wrong (the code union below is the model, the classes name its members).
 */
import { CodedError } from '../coded-error.ts'

export type SandboxErrorCode =
  | 'ERR_NO_SANDBOX'
  | 'ERR_BAD_LIMITS'
  | 'ERR_BAD_SPEC'
  | 'ERR_CGROUP'
  | 'ERR_SANDBOX_OUTPUT'
  | 'ERR_SCRATCH_UNSAFE'

/** The base of every sandbox error; only its subclasses are thrown. */
export abstract class SandboxError extends CodedError<SandboxErrorCode> {}

/**
 * No safe sandbox tier is available (or the requested tier is not). The
 * worker must refuse to build; `remedy` says exactly what to install or enable.
 */
export class SandboxUnavailableError extends SandboxError {
  override readonly code = 'ERR_NO_SANDBOX' as const
  override name = 'SandboxUnavailableError'
  readonly remedy: string

  constructor (message: string, remedy: string, options?: ErrorOptions) {
    super('ERR_NO_SANDBOX', `${message}\n${remedy}`, options)
    this.remedy = remedy
  }
}

/** The limits are not usable (non-positive, or memory < disk while the disk is a tmpfs). */
export class SandboxLimitError extends SandboxError {
  override readonly code = 'ERR_BAD_LIMITS' as const
  override name = 'SandboxLimitError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_BAD_LIMITS', message, options) }
}

/** The build spec is malformed (empty argv, bad env name, relative paths, ...). */
export class SandboxSpecError extends SandboxError {
  override readonly code = 'ERR_BAD_SPEC' as const
  override name = 'SandboxSpecError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_BAD_SPEC', message, options) }
}

/** Creating, configuring or joining the per-build cgroup failed. */
export class CgroupError extends SandboxError {
  override readonly code = 'ERR_CGROUP' as const
  override name = 'CgroupError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_CGROUP', message, options) }
}

/** Copying the build dir out of the sandbox failed (unreadable file, host disk error). */
export class SandboxOutputError extends SandboxError {
  override readonly code = 'ERR_SANDBOX_OUTPUT' as const
  override name = 'SandboxOutputError'
  constructor (message: string, options?: ErrorOptions) { super('ERR_SANDBOX_OUTPUT', message, options) }
}

/**
 * The scratch directory cannot be trusted: it is a symlink, belongs to
 * another user or is writable by others (see scratch.ts). `remedy` says what
 * to remove or set.
 */
export class SandboxScratchError extends SandboxError {
  override readonly code = 'ERR_SCRATCH_UNSAFE' as const
  override name = 'SandboxScratchError'
  readonly remedy: string

  constructor (message: string, remedy: string, options?: ErrorOptions) {
    super('ERR_SCRATCH_UNSAFE', `${message}\n${remedy}`, options)
    this.remedy = remedy
  }
}

export function isSandboxError (e: unknown): e is SandboxError {
  return e instanceof SandboxError
}
