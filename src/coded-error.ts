/**
 * The base of every module's error class in src/ (ContentError, NetError,
 * SandboxError, …): a stable `code` from the module's own union, so callers
 * and the API's status table (node/api/error-status.ts) branch on it without
 * parsing messages, and the class's own name. protocol/ keeps its own
 * ProtocolError (it imports nothing from src/).
 */
export class CodedError<C extends string> extends Error {
  readonly code: C

  constructor (code: C, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}
