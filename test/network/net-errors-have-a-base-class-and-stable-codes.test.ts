/**
 * src/net answers its own failures with NetError subclasses (protocol/errors.ts
 * is the model): callers branch on `err.code` or `isNetError(err)`, never on
 * messages. Every exported error class is constructed here.
 */
import { describe, expect, it } from 'vitest'
import * as net from '../../src/net/errors.ts'

const make: Record<string, () => net.NetError> = {
  InvalidPublishError: () => new net.InvalidPublishError('job', 'a job message does not belong on topic x', 'ERR_WRONG_TOPIC'),
  RequestTooLargeError: () => new net.RequestTooLargeError(2048, 1024),
  MalformedRequestError: () => new net.MalformedRequestError('the request is not UTF-8 JSON')
}

describe('src/net errors', () => {
  it('every exported error class but the base has a case here, and the codes thrown are exactly NET_ERROR_CODES', () => {
    const classes = Object.entries(net).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error).map(([k]) => k)
    expect(classes.sort()).toEqual(['NetError', ...Object.keys(make)].sort())
    expect(new Set(net.NET_ERROR_CODES).size).toBe(net.NET_ERROR_CODES.length)
    expect(Object.values(make).map(m => m().code).sort()).toEqual([...net.NET_ERROR_CODES].sort())
  })

  it.each(Object.keys(make))('%s extends NetError, has its own name and a listed code', (name) => {
    const err = make[name]!()
    expect(err).toBeInstanceOf(net.NetError)
    expect(err.constructor).toBe((net as Record<string, unknown>)[name])
    expect(err.name).toBe(name)
    expect(net.NET_ERROR_CODES).toContain(err.code)
    expect(err.message).not.toBe('')
    expect(net.isNetError(err)).toBe(true)
  })

  it('a refused publish keeps the code node/api relies on (ERR_INVALID_MESSAGE) and the validator\'s own', () => {
    expect(make.InvalidPublishError!()).toMatchObject({ code: 'ERR_INVALID_MESSAGE', kind: 'job', validation: 'ERR_WRONG_TOPIC' })
  })

  it('the guard refuses other errors', () => {
    expect(net.isNetError(new Error('plain'))).toBe(false)
    expect(net.isNetError({ code: 'ERR_INVALID_MESSAGE', name: 'NetError', message: 'look-alike' })).toBe(false)
  })
})
