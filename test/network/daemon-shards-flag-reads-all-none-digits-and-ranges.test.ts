/**
 * `concur daemon --shards` (PROTOCOL.md §6.1): `all` (the default) is every
 * shard, `none` the unsharded topics only, otherwise hex digits and ranges;
 * anything else is a usage error naming what it takes, never a silent
 * subscription to the wrong shards.
 */
import { describe, expect, it } from 'vitest'
import { parseShards } from '../../node/commands/core.ts'
import { UsageError } from '../../node/errors.ts'

describe('--shards', () => {
  it('reads all, none, digits and ranges', () => {
    expect(parseShards(undefined)).toBeUndefined()
    expect(parseShards('all')).toBeUndefined()
    expect(parseShards('none')).toEqual([])
    expect(parseShards('0-7')).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(parseShards('a, 3,A,0-1')).toEqual([0, 1, 3, 10])
  })

  it('refuses anything else', () => {
    for (const v of ['', 'g', '10', '7-0', '0-', '1,,2', '-1', 'al']) expect(() => parseShards(v), v).toThrow(UsageError)
    expect(() => parseShards('x')).toThrow(/--shards takes all, none, or hex digits 0-f/)
  })
})
