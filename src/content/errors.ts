/**
 * Errors of the content-addressing layer. Each failure has its own class,
 * every class extends {@link ContentError} and carries a stable `code`, so
 * callers (worker, API, CLI) can branch on `err.code` without parsing
 * messages. The codes are part of the API: node/api/routes.ts maps
 * ERR_CONTENT_TOO_LARGE to 413 and ERR_TARGET_NOT_EMPTY to 409.
 */
import { CodedError } from '../coded-error.ts'

/** Every code a {@link ContentError} can carry. */
export const CONTENT_ERROR_CODES = [
  'ERR_UNSUPPORTED_FILE_TYPE',
  'ERR_UNSUPPORTED_NAME',
  'ERR_CONTENT_TOO_LARGE',
  'ERR_UNSAFE_PATH',
  'ERR_TARGET_NOT_EMPTY',
  'ERR_NOT_A_DIRECTORY',
  'ERR_UNSUPPORTED_CODEC',
  'ERR_MALFORMED_FILE',
  'ERR_IMPORT_FAILED',
  'ERR_EXPORT_ENDED'
] as const

export type ContentErrorCode = typeof CONTENT_ERROR_CODES[number]

/** The base of every error of src/content: never thrown itself, only its subclasses. */
export class ContentError extends CodedError<ContentErrorCode> {}

export function isContentError (e: unknown): e is ContentError {
  return e instanceof ContentError
}

/**
 * A directory entry is neither a regular file, a directory nor a symlink
 * (device, socket, FIFO...). Such entries have no UnixFS representation and a
 * FIFO would block the reader forever, so they are refused, never skipped:
 * skipping would silently produce a CID for a tree that is not the one built.
 */
export class UnsupportedFileTypeError extends ContentError {
  override readonly code = 'ERR_UNSUPPORTED_FILE_TYPE' as const
  override name = 'UnsupportedFileTypeError'
  readonly path: string
  readonly fileType: string

  constructor (path: string, fileType: string, remedy?: string) {
    super('ERR_UNSUPPORTED_FILE_TYPE', `Unsupported file type "${fileType}" at ${JSON.stringify(path)}: only regular files, directories and symlinks can be added${remedy != null ? `; ${remedy}` : ''}`)
    this.path = path
    this.fileType = fileType
  }
}

/**
 * A name (or symlink target) cannot be represented faithfully: not valid
 * UTF-8 (UnixFS names are strings, a lossy conversion would change the tree),
 * or a directory name ending in a backslash, which the importer's path parser
 * reads as an escaped separator and would silently restructure.
 */
export class UnsupportedNameError extends ContentError {
  override readonly code = 'ERR_UNSUPPORTED_NAME' as const
  override name = 'UnsupportedNameError'
  readonly path: string

  constructor (path: string, reason: string) {
    super('ERR_UNSUPPORTED_NAME', `Unsupported name at ${JSON.stringify(path)}: ${reason}`)
    this.path = path
  }
}

/** Which cap a ContentTooLargeError is about (see FetchLimits in export-directory.ts). */
export type SizeLimitUnit = 'bytes' | 'entries' | 'directory-bytes'

const UNIT_TEXT: Record<SizeLimitUnit, string> = {
  bytes: 'bytes',
  entries: 'entries (files, directories and symlinks; a subtree linked several times counts each time)',
  'directory-bytes': 'bytes of DAG structure read: directory and HAMT blocks, file nodes (a block linked several times counts each time)'
}

/**
 * More than the caller allowed was read, written or created: file bytes,
 * entries, or directory bytes (`unit`). The one error of every cap on
 * content, so a worker, the API and the CLI handle them alike; `remedy` says
 * how whoever hit it raises the cap. Thrown by addDirectory/addFile
 * (`maxBytes`), exportToDirectory (every FetchLimits cap) and by readers of
 * one file that give it a byte or structure budget (diagnoseDispute).
 * Not protocol/'s SizeLimitError (ERR_TOO_LARGE), which is about one
 * oversized wire message.
 */
export class ContentTooLargeError extends ContentError {
  override readonly code = 'ERR_CONTENT_TOO_LARGE' as const
  override name = 'ContentTooLargeError'
  readonly limit: number
  readonly unit: SizeLimitUnit

  constructor (limit: number, unit: SizeLimitUnit = 'bytes', remedy?: string) {
    super('ERR_CONTENT_TOO_LARGE', `Content exceeds the limit of ${limit} ${UNIT_TEXT[unit]}${remedy != null ? `: ${remedy}` : ''}`)
    this.limit = limit
    this.unit = unit
  }
}

/**
 * A DAG entry would be written outside its directory or through something
 * that already exists (entry names like "..", "a/b", "" or with NUL, duplicate
 * names, a symlink in the way). DAGs come from untrusted peers.
 */
export class UnsafePathError extends ContentError {
  override readonly code = 'ERR_UNSAFE_PATH' as const
  override name = 'UnsafePathError'
  readonly path: string

  constructor (path: string, reason: string) {
    super('ERR_UNSAFE_PATH', `Unsafe path ${JSON.stringify(path)}: ${reason}`)
    this.path = path
  }
}

/** The export target exists and is not empty (and `overwrite` was not set). */
export class TargetNotEmptyError extends ContentError {
  override readonly code = 'ERR_TARGET_NOT_EMPTY' as const
  override name = 'TargetNotEmptyError'
  readonly path: string

  constructor (path: string) {
    super('ERR_TARGET_NOT_EMPTY', `Target ${JSON.stringify(path)} exists and is not empty`)
    this.path = path
  }
}

/** A directory was expected (the root of an export or an add) but something else was found. */
export class NotADirectoryError extends ContentError {
  override readonly code = 'ERR_NOT_A_DIRECTORY' as const
  override name = 'NotADirectoryError'
  readonly path: string

  constructor (path: string, found: string) {
    super('ERR_NOT_A_DIRECTORY', `Expected a directory at ${JSON.stringify(path)}, found ${found}`)
    this.path = path
  }
}

/** A block of a codec other than dag-pb / raw was met while walking a UnixFS DAG. */
export class UnsupportedCodecError extends ContentError {
  override readonly code = 'ERR_UNSUPPORTED_CODEC' as const
  override name = 'UnsupportedCodecError'
  readonly codec: number

  constructor (cid: string, codec: number) {
    super('ERR_UNSUPPORTED_CODEC', `Block ${cid} has codec 0x${codec.toString(16)}; only dag-pb and raw are supported`)
    this.codec = codec
  }
}

/**
 * A file's DAG is not a well-formed UnixFS file: links and block sizes that
 * do not match, a child whose declared size is zero or differs from what it
 * holds, a node that is not a file, or a tree deeper than any importer makes.
 * Read from an untrusted peer, such a DAG is refused, never "repaired": its
 * only use is to make a reader do work that yields no bytes.
 */
export class MalformedFileError extends ContentError {
  override readonly code = 'ERR_MALFORMED_FILE' as const
  override name = 'MalformedFileError'
  readonly cid: string

  constructor (cid: string, why: string) {
    super('ERR_MALFORMED_FILE', `malformed UnixFS file at ${cid}: ${why}`)
    this.cid = cid
  }
}

/**
 * The UnixFS importer finished without yielding a root entry, so there is no
 * CID to return. Thrown by addDirectory/addFile/addBytes; a bug or a broken
 * importer, not something the input can ask for.
 */
export class ImportFailedError extends ContentError {
  override readonly code = 'ERR_IMPORT_FAILED' as const
  override name = 'ImportFailedError'

  constructor (why: string) {
    super('ERR_IMPORT_FAILED', `import failed: ${why}`)
  }
}

/**
 * A block was read through an export's TransferFeed after that export had
 * ended (failed, or finished): a read still running then (a read-ahead) ends
 * here instead of holding the feed's blocks or asking the network.
 */
export class FeedClosedError extends ContentError {
  override readonly code = 'ERR_EXPORT_ENDED' as const
  override name = 'FeedClosedError'

  constructor () {
    super('ERR_EXPORT_ENDED', 'the export this read was for has ended')
  }
}
