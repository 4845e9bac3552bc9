/**
 * Worker adverts at submit (PROTOCOL.md §5.4): a requester that has heard its
 * trusted workers' adverts warns when every one of them says it would not
 * take the job (too big, another environment, another shard), naming each
 * worker and why; it says nothing when one would, or when no trusted worker
 * advertised (v1 workers do not), and a stranger's advert is not read. The
 * job is announced either way: an advert is advice.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADVERT_MIN_INTERVAL_MS, MAX_ADVERT_MS, createAdvert } from '../../protocol/index.ts'
import type { SigningKey, WorkerAdvert } from '../../protocol/index.ts'
import { requester } from '../../src/requester/requester.ts'
import type { Requester } from '../../src/requester/requester.ts'
import { AdvertBook } from '../../src/store/advert-book.ts'
import { hostPlatform } from '../../src/requester/defaults.ts'
import { advertInput, fixedKey } from '../protocol/fixtures.ts'
import { TestPolicy, inMemoryComponents } from './in-memory-requester.ts'

const trusted = [fixedKey('advert-trusted-1'), fixedKey('advert-trusted-2')]
const stranger = fixedKey('advert-stranger')

describe('submit reads the trusted workers\' adverts', () => {
  let dir = ''
  let svc: Requester
  const published: string[] = []
  const policy = new TestPolicy()
  const book = new AdvertBook()
  let seq = 0
  // each advert issued a minute after the one before (a worker's adverts come no sooner), all in the past
  let issued = Date.now() - 10 * ADVERT_MIN_INTERVAL_MS
  const advertise = (key: SigningKey, over: Partial<WorkerAdvert> = {}): void => {
    issued += ADVERT_MIN_INTERVAL_MS
    book.record(createAdvert(advertInput(key, issued, MAX_ADVERT_MS, { environments: ['host'], platforms: [hostPlatform()], shards: [], seq: ++seq, ...over }), key))
  }
  const def = { command: ['sh', '-c', 'mkdir out; cp label out/'], output: 'out' }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-requester-adverts-'))
    await writeFile(join(dir, 'label'), 'adverts\n')
    policy.set({ trusted: trusted.map(k => k.did), threshold: 1 })
    svc = requester({ catchUpMs: 0 })({ ...inMemoryComponents({ policy, publish: async (kind) => { published.push(kind); return { recipients: 0 } } }), adverts: book })
    await svc.start()
  })

  afterAll(async () => {
    await svc.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('no trusted advert heard: no warning (nothing is known)', async () => {
    advertise(stranger, { limits: { memoryBytes: 1, cpus: 1, diskBytes: 1, wallSeconds: 1, processes: 1 } })
    expect((await svc.submitDirectory(dir, def, { reuse: false })).warnings).toEqual([])
  })

  it('every trusted worker that advertised would decline: a warning naming each and why; the job is announced anyway', async () => {
    advertise(trusted[0]!, { limits: { memoryBytes: 2 ** 32, cpus: 1, diskBytes: 2 ** 32, wallSeconds: 3600, processes: 1024 } })
    advertise(trusted[1]!, { environments: ['rootfs'] })
    const before = published.length
    const s = await svc.submitDirectory(dir, def, { reuse: false, resources: { cpus: 2 } })
    expect(s.warnings).toHaveLength(1)
    expect(s.warnings[0]).toMatch(/^no trusted worker's advert says it would take this job \(2 advertised\): /)
    expect(s.warnings[0]).toContain(`${trusted[0]!.did}: takes at most cpus 1 (the job asks 2)`)
    expect(s.warnings[0]).toContain(`${trusted[1]!.did}: does not build in host environments`)
    expect(published.length).toBe(before + 1)
    // a sharded job: no trusted worker reads any shard
    advertise(trusted[0]!)
    const sharded = await svc.submitDirectory(dir, def, { reuse: false, sharded: true })
    expect(sharded.warnings[0]).toMatch(new RegExp(`${trusted[0]!.did}: does not read shard [0-9a-f]`))
  })

  it('one trusted worker would take it: no warning', async () => {
    advertise(trusted[0]!, { shards: [...Array(16).keys()] })
    expect((await svc.submitDirectory(dir, def, { reuse: false, sharded: true })).warnings).toEqual([])
  })
})
