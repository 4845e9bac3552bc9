/** Errors the CLI reports to a person: each carries a stable code and an exit status. */
export type CliErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_USAGE'
  | 'ERR_NO_DAEMON'
  /** the daemon's process is alive but its API did not answer in time (busy, or still starting) */
  | 'ERR_DAEMON_NOT_ANSWERING'
  /** `concur daemon`: another daemon holds this home */
  | 'ERR_HOME_IN_USE'
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

/**
 * No daemon process serves this home. `why`, when given, says how we know
 * (e.g. daemon.json names a process that has exited): a stale daemon.json
 * must not read as a daemon that is merely slow.
 */
export class NoDaemonError extends CliError {
  constructor (home: string, why?: string) {
    super(`no daemon is running for ${home}${why != null ? ` (${why})` : ''}: start one with \`concur daemon --home ${home}\``, 'ERR_NO_DAEMON', 69)
    this.name = 'NoDaemonError'
  }
}

/**
 * The daemon of this home is running (its process is alive) but its API did
 * not answer in time: it is busy (verifying a burst of messages, importing),
 * or still starting. Not "no daemon": starting another one would fail, and
 * the remedy is to wait.
 */
export class DaemonNotAnsweringError extends CliError {
  readonly pid: number
  constructor (message: string, pid: number) {
    // 75: EX_TEMPFAIL (sysexits.h): try again later
    super(message, 'ERR_DAEMON_NOT_ANSWERING', 75)
    this.name = 'DaemonNotAnsweringError'
    this.pid = pid
  }
}

/** `concur daemon` on a home another daemon holds (its database lock): names that daemon. */
export class HomeInUseError extends CliError {
  readonly pid: number | null
  constructor (message: string, pid: number | null) {
    super(message, 'ERR_HOME_IN_USE', 75)
    this.name = 'HomeInUseError'
    this.pid = pid
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
