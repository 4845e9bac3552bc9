/**
 * Fuzzing the gossip validator (createMessageValidator: what every node runs
 * on every message from the network) and the offline bundle verifier
 * (verifyBundle: what anyone runs on a file from anywhere).
 *
 * Validator: every (topic, bytes) gets accept / ignore / reject with a code,
 * never ERR_INTERNAL (that would be a decoder throwing something untyped), and
 * accept only for a message that decodes and belongs on that topic.
 * Bundle verifier: never throws, and a bundle with any byte changed is never ok.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { EQUIVOCATION_PROOF_TYPE, createPolicy, decodeMessage, utf8Encode } from '../../protocol/index.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, EQUIVOCATIONS_TOPIC, JOBS_TOPIC } from '../../src/net/topics.ts'
import { installFastVerify } from '../../src/net/fast-verify.ts'
import { addDirectory } from '../../src/content/index.ts'
import { verifyBundle, writeBundle } from '../../src/requester/bundle/index.ts'
import { LONG, RUNS, watchUnhandled, NOW, anyInput, attestationOf, key, mutateBytes, seedAttestation, seedFailure, seedJob, workerKey } from './inputs.ts'

installFastVerify()
let inputs = 0
const unhandled = watchUnhandled()

const KIND: Record<string, string> = { [JOBS_TOPIC]: 'job', [ATTESTATIONS_TOPIC]: 'attestation', [CLAIMS_TOPIC]: 'claim' }
const topics = fc.oneof(fc.constantFrom(JOBS_TOPIC, ATTESTATIONS_TOPIC, CLAIMS_TOPIC), fc.string({ maxLength: 40 }))

afterAll(() => {
  expect(unhandled.stop()).toBe(0)
  console.log(`fuzz: ${inputs} inputs through the validator and the bundle verifier (${LONG ? 'long' : 'short'} mode)`)
})

describe('the gossip validator answers every message', () => {
  it('accept / ignore / reject with a code, never an internal failure; accept only what decodes on its own topic', () => {
    const validate = createMessageValidator({ now: () => NOW })
    fc.assert(fc.property(topics, anyInput, (topic, bytes) => {
      inputs++
      const out = validate(topic, bytes)
      expect(['accept', 'ignore', 'reject']).toContain(out.action)
      if (out.action === 'accept') {
        const m = decodeMessage(bytes, { now: NOW })
        expect(m.kind).toBe(KIND[topic])
      } else {
        expect(out.code).toMatch(/^ERR_[A-Z_]+$/)
        expect(out.code).not.toBe('ERR_INTERNAL')
      }
    }), { numRuns: RUNS * 3 })
  })

  it('on the equivocations topic: random, mutated and re-paired proofs answer with a code, and only a pair convicting one key is accepted', () => {
    const validate = createMessageValidator({ now: () => NOW })
    const other = attestationOf(seedJob, workerKey, 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const stranger = attestationOf(seedJob, key('stranger'), 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const envelopes = [seedAttestation, seedFailure, other, stranger].map(a => a.envelope)
    const pair = (a: number, b: number, type = EQUIVOCATION_PROOF_TYPE): Uint8Array => utf8Encode(JSON.stringify({ _type: type, attestations: [envelopes[a], envelopes[b]] }))
    const valid = pair(0, 2)
    const proofs = fc.oneof(
      anyInput,
      mutateBytes(valid),
      fc.tuple(fc.nat(3), fc.nat(3), fc.constantFrom(EQUIVOCATION_PROOF_TYPE, 'https://concur.dev/EquivocationProof/v2', 'x')).map(([a, b, t]) => pair(a, b, t))
    )
    fc.assert(fc.property(proofs, (bytes) => {
      inputs++
      const out = validate(EQUIVOCATIONS_TOPIC, bytes)
      if (out.action === 'accept') {
        // only the one real conflict in the pool: the worker's two CIDs for the seed job
        expect(out.message.kind).toBe('equivocation')
        const ids = out.message.kind === 'equivocation' ? out.message.value.attestations.map(a => a.id).sort() : []
        expect(ids).toEqual([seedAttestation.id, other.id].sort())
      } else {
        expect(out.code).toMatch(/^ERR_[A-Z_]+$/)
        expect(out.code).not.toBe('ERR_INTERNAL')
      }
    }), { numRuns: RUNS * 2 })
    expect(validate(EQUIVOCATIONS_TOPIC, valid).action).toBe('accept')
  })

  it('a clock anywhere (past, future, far future) never turns an input into a crash', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 8_000_000_000_000 }), anyInput, (now, bytes) => {
      inputs++
      const out = createMessageValidator({ now: () => now })(ATTESTATIONS_TOPIC, bytes)
      if (out.action !== 'accept') expect(out.code).not.toBe('ERR_INTERNAL')
    }), { numRuns: RUNS })
  })
})

describe('verifyBundle never throws, and never passes a changed bundle', () => {
  let bundle: Uint8Array
  let dir: string
  const trusted = [workerKey, key('worker-2')]
  const policy = createPolicy({ trusted: trusted.map(k => k.did), threshold: 2 })

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'concur-fuzz-bundle-'))
    const art = join(dir, 'artifact')
    await writeFile(join(dir, 'placeholder'), '')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(art)
    await writeFile(join(art, 'hello'), 'hello, fuzz\n')
    await writeFile(join(art, 'data'), Buffer.alloc(3000, 7))
    const blockstore = new MemoryBlockstore()
    const { cid } = await addDirectory(blockstore, art)
    const atts = trusted.map(k => attestationOf(seedJob, k, cid.toString()))
    await writeBundle(blockstore, { job: seedJob, attestations: atts, artifact: cid }, join(dir, 'b.car'))
    bundle = new Uint8Array(await readFile(join(dir, 'b.car')))
    expect(verifyBundle(bundle, { policy, now: NOW }).ok).toBe(true)
  })

  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('mutated bundles: a report every time, ok only for the untouched bytes', () => {
    fc.assert(fc.property(mutateBytes(bundle), (bytes) => {
      inputs++
      const report = verifyBundle(bytes, { policy, now: NOW })
      expect(Array.isArray(report.problems)).toBe(true)
      if (!Buffer.from(bytes).equals(Buffer.from(bundle))) expect(report.ok).toBe(false)
    }), { numRuns: RUNS })
  })

  it('random bytes and random messages as bundles', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 4096 }), anyInput), (bytes) => {
      inputs++
      const report = verifyBundle(bytes, { policy, now: NOW })
      expect(report.ok).toBe(false)
      expect(report.problems.length).toBeGreaterThan(0)
    }), { numRuns: RUNS })
  })

  if (LONG) {
    it('long mode reached its input count', () => { expect(inputs).toBeGreaterThanOrEqual(60_000) })
  }
})
