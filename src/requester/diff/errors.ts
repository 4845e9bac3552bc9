/** Errors of dispute diagnosis, each with a stable `code`. */

export type DiffErrorCode =
  | 'ERR_UNSUPPORTED_NODE'
  | 'ERR_DIFFOSCOPE_TIMEOUT'
  | 'ERR_DIFFOSCOPE_FAILED'

/** A node that is not a UnixFS file, directory or symlink (e.g. dag-cbor): artifacts never contain one. */
export class UnsupportedNodeError extends Error {
  readonly code = 'ERR_UNSUPPORTED_NODE' as const
  override name = 'UnsupportedNodeError'
  readonly path: string

  constructor (path: string, what: string) {
    super(`Unsupported node at ${JSON.stringify(path)}: ${what}`)
    this.path = path
  }
}

/** diffoscope ran longer than allowed and was killed (it can take hours on big archives). */
export class DiffoscopeTimeoutError extends Error {
  readonly code = 'ERR_DIFFOSCOPE_TIMEOUT' as const
  override name = 'DiffoscopeTimeoutError'
  readonly timeoutMs: number

  constructor (timeoutMs: number) {
    super(`diffoscope did not finish within ${timeoutMs} ms and was killed`)
    this.timeoutMs = timeoutMs
  }
}

/** diffoscope exited with an error status (>= 2) or was killed by a signal. */
export class DiffoscopeFailedError extends Error {
  readonly code = 'ERR_DIFFOSCOPE_FAILED' as const
  override name = 'DiffoscopeFailedError'
  readonly exitCode: number | null
  readonly stderr: string

  constructor (exitCode: number | null, signal: string | null, stderr: string) {
    super(`diffoscope failed (${exitCode != null ? `exit code ${exitCode}` : `signal ${signal ?? 'unknown'}`}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
    this.exitCode = exitCode
    this.stderr = stderr
  }
}
