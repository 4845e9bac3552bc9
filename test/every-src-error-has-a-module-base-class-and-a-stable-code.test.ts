/**
 * Each module of src/ answers failures with its own error classes, all
 * extending one base class (a CodedError, src/coded-error.ts) with a code union (protocol/errors.ts is the
 * model): callers branch on `err.code` or `isXError(err)`, never on messages.
 * Every exported error class is constructed here; one added without a case
 * below, or with a code missing from its module's code list, fails the test.
 */
import { describe, expect, it } from 'vitest'
import * as content from '../src/content/index.ts'
import * as net from '../src/net/errors.ts'
import * as pack from '../src/store/pack/errors.ts'
import * as bundle from '../src/requester/bundle/index.ts'
import * as diff from '../src/requester/diff/index.ts'
import * as requester from '../src/requester/errors.ts'
import * as worker from '../src/worker/errors.ts'
import * as metrics from '../src/metrics/errors.ts'

type ErrorClass = abstract new (...args: never[]) => Error

interface ModuleCase {
  module: Record<string, unknown>
  base: ErrorClass
  guard: (e: unknown) => boolean
  codes: readonly string[]
  /** one instance of every exported error class but the base, by class name */
  make: Record<string, () => Error & { code: string }>
}

const cases: Record<string, ModuleCase> = {
  'src/content': {
    module: content,
    base: content.ContentError,
    guard: content.isContentError,
    codes: content.CONTENT_ERROR_CODES,
    make: {
      UnsupportedFileTypeError: () => new content.UnsupportedFileTypeError('/in/pipe', 'fifo'),
      UnsupportedNameError: () => new content.UnsupportedNameError('/in/x', 'not valid UTF-8'),
      ContentTooLargeError: () => new content.ContentTooLargeError(10, 'entries', 'raise maxEntries'),
      UnsafePathError: () => new content.UnsafePathError('../x', 'entry name must be a single path component'),
      TargetNotEmptyError: () => new content.TargetNotEmptyError('/out'),
      NotADirectoryError: () => new content.NotADirectoryError('/out', 'a file'),
      UnsupportedCodecError: () => new content.UnsupportedCodecError('bafy', 0x71),
      MalformedFileError: () => new content.MalformedFileError('bafy', 'a child of declared size 0'),
      ImportFailedError: () => new content.ImportFailedError('the importer yielded no root entry'),
      FeedClosedError: () => new content.FeedClosedError()
    }
  },
  'src/requester/bundle': {
    module: bundle,
    base: bundle.BundleError,
    guard: bundle.isBundleError,
    codes: bundle.BUNDLE_ERROR_CODES,
    make: {
      BundleInputError: () => new bundle.BundleInputError('attestation for another build'),
      CarFormatError: () => new bundle.CarFormatError('zero-length header'),
      ManifestSchemaError: () => new bundle.ManifestSchemaError('type: expected "concur-proof-bundle"')
    }
  },
  'src/requester/diff': {
    module: diff,
    base: diff.DiffError,
    guard: diff.isDiffError,
    codes: diff.DIFF_ERROR_CODES,
    make: {
      UnsupportedNodeError: () => new diff.UnsupportedNodeError('a/b', 'a object node'),
      NotAFileError: () => new diff.NotAFileError('bafy', 'a directory node'),
      NotADisputeError: () => new diff.NotADisputeError('one CID trusted keys named'),
      DiffoscopeTimeoutError: () => new diff.DiffoscopeTimeoutError(1000),
      DiffoscopeFailedError: () => new diff.DiffoscopeFailedError(2, null, 'boom\n'),
      AbortError: () => new diff.AbortError('stop')
    }
  },
  'src/net': {
    module: net,
    base: net.NetError,
    guard: net.isNetError,
    codes: net.NET_ERROR_CODES,
    make: {
      InvalidPublishError: () => new net.InvalidPublishError('job', 'a job message does not belong on topic x', 'ERR_WRONG_TOPIC'),
      RequestTooLargeError: () => new net.RequestTooLargeError(2048, 1024),
      MalformedRequestError: () => new net.MalformedRequestError('the request is not UTF-8 JSON'),
      AnswerCutError: () => new net.AnswerCutError('an attestation of a build not asked for', 3),
      TransferMismatchError: () => new net.TransferMismatchError('bafy'),
      TransferProtocolError: () => new net.TransferProtocolError('a frame of 3000000 bytes'),
      TransferStalledError: () => new net.TransferStalledError(15_000)
    }
  },
  'src/store/pack': {
    module: pack,
    base: pack.PackStoreError,
    guard: pack.isPackStoreError,
    codes: pack.PACK_STORE_ERROR_CODES,
    make: {
      NotFoundError: () => new pack.NotFoundError('bafy'),
      CorruptBlockError: () => new pack.CorruptBlockError('bafy', 'pack 1 at 0'),
      StoreClosedError: () => new pack.StoreClosedError('get'),
      StoreFailedError: () => new pack.StoreFailedError('a write failed and could not be undone'),
      BlockTooLargeError: () => new pack.BlockTooLargeError(5_000_000, 4_194_304)
    }
  },
  'src/metrics': {
    module: metrics,
    base: metrics.MetricsError,
    guard: metrics.isMetricsError,
    codes: metrics.METRICS_ERROR_CODES,
    make: {
      InvalidMetricError: () => new metrics.InvalidMetricError('9bad', 'a name cannot start with a digit'),
      DuplicateMetricError: () => new metrics.DuplicateMetricError('concur_peers_connected')
    }
  },
  'src/worker': {
    module: worker,
    base: worker.WorkerError,
    guard: worker.isWorkerError,
    codes: worker.WORKER_ERROR_CODES,
    make: {
      InputFetchError: () => new worker.InputFetchError('could not fetch the source bafy: no peer delivered it within 10 ms'),
      BuildAbortedError: () => new worker.BuildAbortedError()
    }
  },
  'src/requester': {
    module: requester,
    base: requester.RequesterError,
    guard: requester.isRequesterError,
    codes: requester.REQUESTER_ERROR_CODES,
    make: {
      NoPolicyError: () => new requester.NoPolicyError('no trusted keys'),
      UnknownJobError: () => new requester.UnknownJobError('no job x'),
      BadSourceError: () => new requester.BadSourceError('not a directory: /x'),
      JobTooLongError: () => new requester.JobTooLongError('open for 8 days'),
      NoLogsError: () => new requester.NoLogsError('no attestation with a log yet'),
      NotAFileError: () => new requester.NotAFileError('bafy is a directory'),
      LogTooLargeError: () => new requester.LogTooLargeError('over 4 MiB'),
      NoDisputeError: () => new requester.NoDisputeError('one artifact'),
      NoArtifactError: () => new requester.NoArtifactError('no artifact')
    }
  }
}

/** the names of a module's exports that are Error classes (functions whose prototype is an Error) */
function errorClassesOf (module: Record<string, unknown>): string[] {
  return Object.entries(module)
    .filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error)
    .map(([k]) => k)
    .sort()
}

describe.each(Object.entries(cases))('%s errors', (_, c) => {
  it('every exported error class but the base has a case here', () => {
    const baseName = c.base.name
    expect(errorClassesOf(c.module)).toEqual([baseName, ...Object.keys(c.make)].sort())
  })

  it.each(Object.keys(c.make))('%s extends the base, is an Error, has a stable code and its own name', (name) => {
    const err = (c.make[name] as () => Error & { code: string })()
    expect(err).toBeInstanceOf(c.base)
    expect(err).toBeInstanceOf(Error)
    expect(err.constructor).toBe(c.module[name])
    expect(err.name).toBe(name)
    expect(err.code).toMatch(/^ERR_[A-Z_]+$/)
    expect(c.codes).toContain(err.code)
    expect(err.message).not.toBe('')
    expect(c.guard(err)).toBe(true)
  })

  it('the codes thrown are exactly the module\'s code list, listed once each', () => {
    const thrown = new Set(Object.values(c.make).map(make => make().code))
    expect(new Set(c.codes).size).toBe(c.codes.length)
    expect([...thrown].sort()).toEqual([...c.codes].sort())
  })

  it('the guard refuses other errors', () => {
    expect(c.guard(new Error('plain'))).toBe(false)
    expect(c.guard({ code: c.codes[0], name: 'x', message: 'look-alike' })).toBe(false)
    expect(c.guard(undefined)).toBe(false)
  })
})

describe('what callers rely on', () => {
  it('a refused publish keeps the code node/api relies on (ERR_INVALID_MESSAGE) and the validator\'s own', () => {
    expect(new net.InvalidPublishError('job', 'wrong topic', 'ERR_WRONG_TOPIC')).toMatchObject({ code: 'ERR_INVALID_MESSAGE', kind: 'job', validation: 'ERR_WRONG_TOPIC' })
  })
})

describe('no name is shared with protocol/ for a different failure', () => {
  it('src/content has ContentTooLargeError (ERR_CONTENT_TOO_LARGE), not a second SizeLimitError', () => {
    expect('SizeLimitError' in content).toBe(false)
    expect(new content.ContentTooLargeError(1).code).toBe('ERR_CONTENT_TOO_LARGE')
  })

  it('the base classes of different modules are unrelated', () => {
    const samples = [new content.TargetNotEmptyError('/out'), new bundle.CarFormatError('x'), new diff.DiffoscopeTimeoutError(1)]
    expect(samples.map(e => [content.isContentError(e), bundle.isBundleError(e), diff.isDiffError(e)])).toEqual([
      [true, false, false],
      [false, true, false],
      [false, false, true]
    ])
  })
})
