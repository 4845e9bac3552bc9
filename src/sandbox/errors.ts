/**
 * Errors thrown by the build sandbox. Each has a stable `code` so callers
 * (the worker, the CLI) can branch without parsing messages.
 */

export type SandboxErrorCode =
  | 'ERR_NO_SANDBOX'
  | 'ERR_BAD_LIMITS'
  | 'ERR_BAD_SPEC'
  | 'ERR_CGROUP'
  | 'ERR_SANDBOX_OUTPUT'
  | 'ERR_SCRATCH_UNSAFE'

/**
 * No safe sandbox tier is available (or the requested tier is not). The
 * worker must refuse to build; `remedy` says exactly what to install or enable.
 */
export class SandboxUnavailableError extends Error {
  readonly code = 'ERR_NO_SANDBOX' as const
  override name = 'SandboxUnavailableError'
  readonly remedy: string

  constructor (message: string, remedy: string) {
    super(`${message}\n${remedy}`)
    this.remedy = remedy
  }
}

/** The limits are not usable (non-positive, or memory < disk while the disk is a tmpfs). */
export class SandboxLimitError extends Error {
  readonly code = 'ERR_BAD_LIMITS' as const
  override name = 'SandboxLimitError'
}

/** The build spec is malformed (empty argv, bad env name, relative paths, ...). */
export class SandboxSpecError extends Error {
  readonly code = 'ERR_BAD_SPEC' as const
  override name = 'SandboxSpecError'
}

/** Creating, configuring or joining the per-build cgroup failed. */
export class CgroupError extends Error {
  readonly code = 'ERR_CGROUP' as const
  override name = 'CgroupError'
}

/** Copying the build dir out of the sandbox failed (unreadable file, host disk error). */
export class SandboxOutputError extends Error {
  readonly code = 'ERR_SANDBOX_OUTPUT' as const
  override name = 'SandboxOutputError'
}

/**
 * The scratch directory cannot be trusted: it is a symlink, belongs to
 * another user or is writable by others (see scratch.ts). `remedy` says what
 * to remove or set.
 */
export class SandboxScratchError extends Error {
  readonly code = 'ERR_SCRATCH_UNSAFE' as const
  override name = 'SandboxScratchError'
  readonly remedy: string

  constructor (message: string, remedy: string) {
    super(`${message}\n${remedy}`)
    this.remedy = remedy
  }
}
