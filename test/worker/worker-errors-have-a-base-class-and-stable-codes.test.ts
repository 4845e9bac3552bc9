/**
 * src/worker answers the ways a build ends without an attestation with
 * WorkerError subclasses (protocol/errors.ts is the model): callers branch on
 * `err.code` or `isWorkerError(err)`, never on messages. Every exported error
 * class is constructed here.
 */
import { describe, expect, it } from 'vitest'
import * as worker from '../../src/worker/errors.ts'

const make: Record<string, () => worker.WorkerError> = {
  InputFetchError: () => new worker.InputFetchError('could not fetch the source bafy: no peer delivered it within 10 ms'),
  BuildAbortedError: () => new worker.BuildAbortedError()
}

describe('src/worker errors', () => {
  it('every exported error class but the base has a case here, and the codes thrown are exactly WORKER_ERROR_CODES', () => {
    const classes = Object.entries(worker).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error).map(([k]) => k)
    expect(classes.sort()).toEqual(['WorkerError', ...Object.keys(make)].sort())
    expect(new Set(worker.WORKER_ERROR_CODES).size).toBe(worker.WORKER_ERROR_CODES.length)
    expect(Object.values(make).map(m => m().code).sort()).toEqual([...worker.WORKER_ERROR_CODES].sort())
  })

  it.each(Object.keys(make))('%s extends WorkerError, has its own name and a listed code', (name) => {
    const err = make[name]!()
    expect(err).toBeInstanceOf(worker.WorkerError)
    expect(err.constructor).toBe((worker as Record<string, unknown>)[name])
    expect(err.name).toBe(name)
    expect(worker.WORKER_ERROR_CODES).toContain(err.code)
    expect(err.message).not.toBe('')
    expect(worker.isWorkerError(err)).toBe(true)
  })

  it('the guard refuses other errors', () => {
    expect(worker.isWorkerError(new Error('build aborted'))).toBe(false)
    expect(worker.isWorkerError({ code: 'ERR_INPUT_FETCH', name: 'InputFetchError', message: 'look-alike' })).toBe(false)
  })
})
