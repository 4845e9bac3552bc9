/**
 * protocol/vectors/verdict/*.json (PROTOCOL.md §8.1) checked both ways: our
 * createPolicy + decodeAttestation + evaluateVerdict give each vector's
 * verdict (or refuse its policy with its code), and so does a count written
 * from the spec's words without protocol/ code: signatures by node:crypto
 * (OpenSSL), keys compared raw, an unnamed key its own operator, accepted
 * iff >= k distinct trusted keys on the CID span >= minOperators operators.
 * The vectors are single-CID, success-only, so that count is the whole rule
 * for them (disputes and tiers are §8's other vectors' and tests' business).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ATTESTATION_PAYLOAD_TYPE, ProtocolError, createPolicy, decodeAttestation, evaluateVerdict } from '../../protocol/index.ts'
import type { Envelope } from '../../protocol/index.ts'
import { VECTORS_DIR } from './generate-vectors.ts'
import type { VerdictVector } from './generate-vectors.ts'
import { independentlyValid, payloadJson, rawKeyFromDid } from './independent.ts'

const dir = resolve(VECTORS_DIR, 'verdict')
const vectors = readdirSync(dir).filter(f => f.endsWith('.json')).sort()
  .map(f => [f, JSON.parse(readFileSync(resolve(dir, f), 'utf8')) as VerdictVector] as const)

const hex = (did: string): string => Buffer.from(rawKeyFromDid(did)).toString('hex')

/** §8.1 from its words: the verdict of single-CID success attestations, or 'ERR_POLICY' for a policy that can never be met */
function independentVerdict (v: VerdictVector): { status: string, counted: string[], spanned: string[] } | 'ERR_POLICY' {
  const { trusted, threshold: k, operators = {}, minOperators: m = 1 } = v.policy
  const operatorOf = new Map<string, string>()
  for (const [name, dids] of Object.entries(operators)) for (const did of dids) operatorOf.set(hex(did), name)
  const trustedKeys = new Map(trusted.map(did => [hex(did), did]))
  const opOf = (key: string): string => operatorOf.get(key) ?? trustedKeys.get(key)!
  const distinctOperators = new Set([...trustedKeys.keys()].map(opOf)).size
  if (k < 1 || k > trustedKeys.size || m < 1 || m > k || m > distinctOperators) return 'ERR_POLICY'
  const agreeing = new Map<string, string>()
  for (const env of v.attestations) {
    const statement = payloadJson(env)
    const signer = ((statement.predicate as { runDetails: { builder: { id: string } } }).runDetails.builder.id)
    expect(independentlyValid(env, ATTESTATION_PAYLOAD_TYPE, signer)).toBe(true)
    if (trustedKeys.has(hex(signer))) agreeing.set(hex(signer), signer)
  }
  const counted = [...agreeing.values()].sort()
  const spanned = [...new Set([...agreeing.keys()].map(opOf))].sort()
  const status = counted.length >= k && spanned.length >= m ? 'accepted' : counted.length > 0 ? 'provisional' : 'pending'
  return { status, counted, spanned }
}

describe('operator (verdict) vectors', () => {
  it('cover the cases §8.1 names: one operator refused, two accepted, an unnamed key its own, an unmeetable policy', () => {
    expect(vectors.map(([f]) => f)).toEqual([
      'operators-three-keys-of-one-operator-provisional.json',
      'operators-two-operators-accepted.json',
      'operators-unmeetable-policy-refused.json',
      'operators-unnamed-key-is-its-own-operator-accepted.json'
    ])
  })

  for (const [file, v] of vectors) {
    describe(file, () => {
      it('every attestation is one CID for the vector\'s build (what the independent count assumes)', () => {
        const subjects = new Set(v.attestations.map(env => (payloadJson(env).subject as Array<{ uri: string }>)[0]!.uri))
        expect(subjects.size).toBeLessThanOrEqual(1)
        for (const env of v.attestations) {
          const ext = ((payloadJson(env).predicate as { buildDefinition: { externalParameters: { buildId: string } } }).buildDefinition.externalParameters)
          expect(ext.buildId).toBe(v.buildId)
        }
      })

      it(v.error !== undefined ? `our createPolicy refuses the policy with ${v.error}` : `our verdict is ${v.expect?.status ?? '?'}`, () => {
        if (v.error !== undefined) {
          let caught: unknown
          try { createPolicy(v.policy) } catch (err) { caught = err }
          expect(caught).toBeInstanceOf(ProtocolError)
          expect((caught as ProtocolError).code).toBe(v.error)
          return
        }
        const now = Date.parse(v.verifyAt)
        const atts = v.attestations.map(env => decodeAttestation(env as Envelope, { now }))
        const verdict = evaluateVerdict(createPolicy(v.policy), v.buildId, atts)
        expect({ status: verdict.status, artifact: verdict.artifact, counted: verdict.counted, operators: verdict.operators }).toEqual({ artifact: undefined, ...v.expect })
      })

      it('the count written from the spec, without protocol/ code, agrees', () => {
        const ind = independentVerdict(v)
        if (v.error !== undefined) { expect(ind).toBe(v.error); return }
        expect(ind).toEqual({ status: v.expect!.status, counted: v.expect!.counted, spanned: v.expect!.operators!.spanned })
      })
    })
  }
})
