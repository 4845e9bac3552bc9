/**
 * Errors of `concur env`: each has a stable code, and the ones a person can
 * act on say what to do in their message.
 */
import { CodedError } from '../coded-error.ts'

export type EnvErrorCode = 'ERR_ENV_TOOL_MISSING' | 'ERR_ENV_TARGET' | 'ERR_ENV_CREATE' | 'ERR_ENV_ARGS' | 'ERR_BAD_ENV_MANIFEST'

export abstract class EnvError extends CodedError<EnvErrorCode> {}

/** mmdebstrap (or what it needs) is not installed */
export class EnvToolMissingError extends EnvError {
  constructor (message: string) { super('ERR_ENV_TOOL_MISSING', message) }
}

/** the output directory exists and is not empty: nothing is written over */
export class EnvTargetError extends EnvError {
  constructor (message: string) { super('ERR_ENV_TARGET', message) }
}

/** mmdebstrap failed: the message ends with the last lines it printed */
export class EnvCreateError extends EnvError {
  constructor (message: string, options?: ErrorOptions) { super('ERR_ENV_CREATE', message, options) }
}

/** a suite, variant, package or mirror that is not one */
export class EnvArgsError extends EnvError {
  constructor (message: string) { super('ERR_ENV_ARGS', message) }
}

/** a CID whose tree has no manifest, or one that does not parse (a DAG anyone could have made) */
export class BadManifestError extends EnvError {
  constructor (message: string) { super('ERR_BAD_ENV_MANIFEST', message) }
}
