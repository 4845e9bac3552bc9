/**
 * node/api/error-status.ts is the one table from error code to HTTP status:
 * a module's error is answered with its code's status, a peer's malformed DAG
 * as a bad gateway, any protocol error as a bad request, anything else as an
 * internal error (never a 400 for a failure that is the daemon's own).
 */
import { describe, expect, it } from 'vitest'
import { SchemaError } from '../protocol/index.ts'
import { ContentTooLargeError, MalformedFileError, TargetNotEmptyError } from '../src/content/index.ts'
import { NoPolicyError, UnknownJobError } from '../src/requester/errors.ts'
import { SandboxUnavailableError } from '../src/sandbox/index.ts'
import { HTTP_STATUS, httpStatusOf } from '../node/api/error-status.ts'
import { HttpError } from '../node/api/server.ts'
import { UsageError } from '../node/errors.ts'

describe('one status per error code', () => {
  it('answers each module\'s errors with its code\'s status', () => {
    expect(httpStatusOf(new ContentTooLargeError(1))).toBe(413)
    expect(httpStatusOf(new TargetNotEmptyError('/out'))).toBe(409)
    expect(httpStatusOf(new MalformedFileError('bafy', 'bad'))).toBe(502)
    expect(httpStatusOf(new NoPolicyError('set one'))).toBe(412)
    expect(httpStatusOf(new UnknownJobError('no job'))).toBe(404)
    expect(httpStatusOf(new SandboxUnavailableError('none', 'install bubblewrap'))).toBe(503)
    expect(httpStatusOf(new UsageError('bad flag'))).toBe(400)
  })

  it('an HttpError keeps its own; protocol errors are 400; the exporter\'s codes say the peer\'s DAG is bad', () => {
    expect(httpStatusOf(new HttpError(418, 'ERR_X', 'x'))).toBe(418)
    expect(httpStatusOf(new SchemaError('field', 'wrong'))).toBe(400)
    expect(httpStatusOf(Object.assign(new Error('not unixfs'), { code: 'ERR_NOT_UNIXFS' }))).toBe(502)
  })

  it('anything unknown is the daemon\'s own failure: 500, whatever its code looks like', () => {
    expect(httpStatusOf(new Error('boom'))).toBe(500)
    expect(httpStatusOf(Object.assign(new Error('x'), { code: 'ERR_SOMETHING_ELSE' }))).toBe(500)
    expect(httpStatusOf(Object.assign(new Error('x'), { code: 'toString' }))).toBe(500)
    expect(httpStatusOf(undefined)).toBe(500)
  })

  it('every status in the table is an HTTP error status', () => {
    for (const [code, status] of Object.entries(HTTP_STATUS)) expect(status >= 400 && status < 600, code).toBe(true)
  })
})
