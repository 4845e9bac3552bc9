/**
 * Nodes keep a job at most maxJobLifetimeMs (7 days, src/store/limits.ts)
 * and IGNORE one that asks for longer. The requester's own node would keep it
 * (its own jobs are outside the caps), so without this check the job would
 * sit `pending` here while no peer ever heard it: refused at submit instead,
 * with the limit in the message.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requester } from '../../src/requester/requester.ts'
import type { Requester } from '../../src/requester/requester.ts'
import { JobTooLongError } from '../../src/requester/errors.ts'
import { DEFAULT_STORE_LIMITS } from '../../src/store/limits.ts'
import { fixedKey } from '../protocol/fixtures.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'

describe('a job asking to stay open past what nodes keep', () => {
  let dir = ''
  let svc: Requester
  const published: string[] = []
  const policy = new TestPolicy()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-requester-ttl-'))
    await writeFile(join(dir, 'label'), 'ttl\n')
    policy.set({ trusted: [fixedKey('w').did], threshold: 1 })
    svc = requester({ catchUpMs: 0 })(inMemoryComponents({ policy, publish: async (kind) => { published.push(kind); return { recipients: 0 } } }))
    await svc.start()
  })

  afterAll(async () => {
    await svc.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('is refused with the ceiling named; one at the ceiling is announced', async () => {
    const def = { command: ['sh', '-c', 'mkdir out; cp label out/'], output: 'out' }
    const ceiling = DEFAULT_STORE_LIMITS.maxJobLifetimeMs / 1000
    await expect(svc.submitDirectory(dir, def, { ttlSeconds: ceiling + 1, reuse: false })).rejects.toThrow(JobTooLongError)
    await expect(svc.submitDirectory(dir, def, { ttlSeconds: ceiling + 1, reuse: false })).rejects.toThrow(/at most 604800 s \(7 days\)/)
    expect(published).toEqual([])
    await svc.submitDirectory(dir, def, { ttlSeconds: ceiling, reuse: false })
    expect(published).toEqual(['job'])
  })
})
