/** Errors the CLI reports to a person: each carries a stable code and an exit status. */
export type CliErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_USAGE'
  | 'ERR_NO_DAEMON'
  | 'ERR_API'
  | 'ERR_PORT_IN_USE'
  | 'ERR_TIMEOUT'
  | 'ERR_API_TOKEN'
  /** `concur verify`: the bundle did not verify */
  | 'ERR_BUNDLE_INVALID'
  /** `concur devnet`: a step of the demonstration failed */
  | 'ERR_DEVNET'

export class CliError extends Error {
  readonly code: CliErrorCode
  readonly exitCode: number
  constructor (message: string, code: CliErrorCode, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.code = code
    this.exitCode = exitCode
  }
}

/** A missing, unreadable or invalid file in the home directory; names the file. */
export class ConfigError extends CliError {
  readonly path: string
  constructor (message: string, path: string) {
    super(message, 'ERR_CONFIG', 78)
    this.name = 'ConfigError'
    this.path = path
  }
}

/**
 * The API token of a home cannot be read: usually the command runs as another
 * user than the daemon (the token is 0600), or no daemon ever started there.
 */
export class ApiTokenError extends CliError {
  readonly path: string
  constructor (message: string, path: string) {
    // 77: EX_NOPERM (sysexits.h)
    super(message, 'ERR_API_TOKEN', 77)
    this.name = 'ApiTokenError'
    this.path = path
  }
}

export class UsageError extends CliError {
  constructor (message: string) {
    super(message, 'ERR_USAGE', 64)
    this.name = 'UsageError'
  }
}

export class NoDaemonError extends CliError {
  constructor (home: string) {
    super(`no daemon is running for ${home}: start one with \`concur daemon --home ${home}\``, 'ERR_NO_DAEMON', 69)
    this.name = 'NoDaemonError'
  }
}

export class ApiError extends CliError {
  readonly status: number
  readonly remoteCode: string
  constructor (message: string, status: number, remoteCode: string) {
    super(message, 'ERR_API', 1)
    this.name = 'ApiError'
    this.status = status
    this.remoteCode = remoteCode
  }
}

export class PortInUseError extends CliError {
  constructor (what: string) {
    super(`address already in use: ${what} (choose another with --listen / --api, or stop the process holding it)`, 'ERR_PORT_IN_USE', 75)
    this.name = 'PortInUseError'
  }
}
