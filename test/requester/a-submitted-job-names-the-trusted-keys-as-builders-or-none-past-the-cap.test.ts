/**
 * The requester names its builders (PROTOCOL.md §5.1, §7 rule 3): a job it
 * submits lists its trust policy's keys, so that claims by any other key take
 * none of the job's replica slots; with more trusted keys than MAX_BUILDERS
 * the job is open (no `builders`), as every job was before the field existed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_BUILDERS, decodeJobAnnouncement } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { requester } from '../../src/requester/requester.ts'
import type { Requester } from '../../src/requester/requester.ts'
import { fixedKey } from '../protocol/fixtures.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'

const keys = Array.from({ length: MAX_BUILDERS + 1 }, (_, i) => fixedKey(`trusted-builder-${i}`))

describe('a submitted job names the requester\'s trusted keys as its builders', () => {
  let dir = ''
  let svc: Requester
  const policy = new TestPolicy()
  const published: SignedJob[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-requester-builders-'))
    await writeFile(join(dir, 'label'), 'builders\n')
    svc = requester({ now: () => Date.now(), catchUpMs: 0 })(inMemoryComponents({
      policy,
      publish: async (kind, bytes) => {
        if (kind === 'job') published.push(decodeJobAnnouncement(bytes, { now: Date.now() }))
        return { recipients: 0 }
      }
    }))
    await svc.start()
  })

  afterAll(async () => {
    await svc.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('the policy\'s trusted keys, sorted, once each, whatever the order and spelling count in the policy', async () => {
    const trusted = [keys[2]!.did, keys[0]!.did, keys[1]!.did, keys[0]!.did]
    policy.set({ trusted, threshold: 2 })
    const { job } = await svc.submitDirectory(dir, { command: ['sh', '-c', 'mkdir out; cp label out/'], output: 'out', env: { RUN: '1' } }, { reuse: false })
    expect(job.job.builders).toEqual([keys[0]!.did, keys[1]!.did, keys[2]!.did].sort())
    expect(published.at(-1)?.jobId).toBe(job.jobId)
    expect(published.at(-1)?.job.builders).toEqual(job.job.builders)
  })

  it(`exactly ${MAX_BUILDERS} trusted keys are all named; one more, and the job is open`, async () => {
    policy.set({ trusted: keys.slice(0, MAX_BUILDERS).map(k => k.did), threshold: 1 })
    const capped = await svc.submitDirectory(dir, { command: ['sh', '-c', 'mkdir out; cp label out/'], output: 'out', env: { RUN: '2' } }, { reuse: false })
    expect(capped.job.job.builders).toHaveLength(MAX_BUILDERS)

    policy.set({ trusted: keys.map(k => k.did), threshold: 1 })
    const over = await svc.submitDirectory(dir, { command: ['sh', '-c', 'mkdir out; cp label out/'], output: 'out', env: { RUN: '3' } }, { reuse: false })
    expect(over.job.job.builders).toBeUndefined()
    expect(published.at(-1)?.job.builders).toBeUndefined()
  })
})
