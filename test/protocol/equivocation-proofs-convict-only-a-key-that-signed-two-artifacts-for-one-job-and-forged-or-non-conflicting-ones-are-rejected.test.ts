/**
 * Equivocation proofs (PROTOCOL.md §8.2).
 *
 * protocol/vectors/equivocation/*.json checked both ways: our
 * decodeEquivocationProof takes each valid vector (convicting the key, build
 * and job it names) and refuses each invalid one with its code; and a check
 * written from §8.2's words without protocol/ code (signatures by node:crypto,
 * keys compared raw, fields read from the statements) agrees on every vector.
 *
 * Then the gossip validator on the equivocations topic: a valid proof is
 * accepted, a forged one or one that proves nothing is REJECTed (the sender's
 * score pays, like any invalid message), an oversized one is REJECTed before
 * it is parsed, a later proof version is IGNOREd (an honest newer peer), and
 * a proof on another topic, or an attestation on this one, is REJECTed.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ATTESTATIONS_TOPIC, ATTESTATION_PAYLOAD_TYPE, EQUIVOCATIONS_TOPIC, EQUIVOCATION_PROOF_TYPE, MAX_EQUIVOCATION_PROOF_BYTES, NotEquivocationError, ProtocolError,
  TOPIC_KINDS, createEquivocationProof, decodeEquivocationProof, didFromPublicKey, envelopePayload, signEnvelope, utf8Encode
} from '../../protocol/index.ts'
import type { Envelope } from '../../protocol/index.ts'
import { createMessageValidator } from '../../src/net/validate.ts'
import { T0, attest, fakeRawCid, fakeTreeCid, fixedKey } from './fixtures.ts'
import { VECTORS_DIR } from './generate-vectors.ts'
import type { EquivocationVector } from './generate-vectors.ts'
import { independentlyValid, payloadJson, rawKeyFromDid } from './independent.ts'

const dir = resolve(VECTORS_DIR, 'equivocation')
const vectors = readdirSync(dir).filter(f => f.endsWith('.json')).sort()
  .map(f => [f, JSON.parse(readFileSync(resolve(dir, f), 'utf8')) as EquivocationVector] as const)

/** §8.2 from its words: the convicted key, build and job, or why the pair proves nothing */
function independentVerdict (v: EquivocationVector): { worker: string, buildId: string, jobId: string } | 'signature' | 'no conflict' {
  const read = v.proof.attestations.map(env => {
    const s = payloadJson(env) as { subject: Array<{ name: string, uri: string }>, predicate: { runDetails: { builder: { id: string } }, buildDefinition: { externalParameters: { buildId: string, jobId: string } } } }
    const worker = s.predicate.runDetails.builder.id
    return { env, worker, ext: s.predicate.buildDefinition.externalParameters, subject: s.subject[0]! }
  })
  if (!read.every(r => independentlyValid(r.env, ATTESTATION_PAYLOAD_TYPE, r.worker))) return 'signature'
  const [a, b] = read as [typeof read[0], typeof read[0]]
  const sameKey = Buffer.from(rawKeyFromDid(a.worker)).equals(Buffer.from(rawKeyFromDid(b.worker)))
  const bothArtifacts = a.subject.name === 'artifact' && b.subject.name === 'artifact'
  if (!sameKey || a.ext.buildId !== b.ext.buildId || a.ext.jobId !== b.ext.jobId || !bothArtifacts || a.subject.uri === b.subject.uri) return 'no conflict'
  return { worker: a.worker, buildId: a.ext.buildId, jobId: a.ext.jobId }
}

describe('equivocation-proof vectors', () => {
  it('cover a valid proof, a forged one, two statements of one artifact, and a rerun of two jobs', () => {
    expect(vectors.map(([f]) => f)).toEqual([
      'equivocation-proof-forged.json',
      'equivocation-proof-same-artifact.json',
      'equivocation-proof-two-jobs.json',
      'equivocation-proof-valid.json'
    ])
  })

  for (const [file, v] of vectors) {
    describe(file, () => {
      const bytes = utf8Encode(JSON.stringify(v.proof))
      const now = Date.parse(v.verifyAt)

      it(v.valid ? 'our decoder convicts the key it names' : `our decoder refuses it with ${v.error ?? '?'}`, () => {
        if (v.valid) {
          const p = decodeEquivocationProof(bytes, { now })
          expect({ worker: didFromPublicKey(p.attestations[0].signer), buildId: p.buildId, jobId: p.jobId }).toEqual(v.convicts)
          return
        }
        let caught: unknown
        try { decodeEquivocationProof(bytes, { now }) } catch (err) { caught = err }
        expect(caught).toBeInstanceOf(ProtocolError)
        expect((caught as ProtocolError).code).toBe(v.error)
      })

      it('an independent check from the spec\'s words agrees', () => {
        const independent = independentVerdict(v)
        if (v.valid) expect(independent).toEqual(v.convicts)
        else expect(independent).toBe(v.error === 'ERR_BAD_SIGNATURE' ? 'signature' : 'no conflict')
      })
    })
  }
})

describe('the gossip validator on the equivocations topic', () => {
  const liar = fixedKey('equivocator-1')
  const jobId = fakeRawCid('job-1')
  const now = T0 + 5 * 60_000
  const validate = createMessageValidator({ now: () => now })
  const x = attest(liar, { jobId, artifact: fakeTreeCid('artifact-A') })
  const y = attest(liar, { jobId, artifact: fakeTreeCid('artifact-B'), finishedAt: T0 + 121_000 })
  const raw = (a: Envelope, b: Envelope, type = EQUIVOCATION_PROOF_TYPE): Uint8Array => utf8Encode(JSON.stringify({ _type: type, attestations: [a, b] }))

  it('is one of the concur topics, so nodes subscribe to it and read it', () => {
    expect(TOPIC_KINDS[EQUIVOCATIONS_TOPIC]).toBe('equivocation')
  })

  it('accepts a valid proof, whichever order it lists the two envelopes in', () => {
    for (const bytes of [raw(x.envelope, y.envelope), raw(y.envelope, x.envelope)]) {
      const out = validate(EQUIVOCATIONS_TOPIC, bytes)
      expect(out.action).toBe('accept')
      if (out.action === 'accept' && out.message.kind === 'equivocation') expect(out.message.value.key).toBe(`${x.claim.buildId}/${Buffer.from(liar.publicKey).toString('hex')}`)
    }
    // honest nodes publish the canonical bytes, so two detections of one pair are one gossip message
    expect(createEquivocationProof(x, y).bytes).toEqual(createEquivocationProof(y, x).bytes)
  })

  it('REJECTs a forged proof: the conflicting envelope names the key but another key signed it', () => {
    const forgedSig = signEnvelope(ATTESTATION_PAYLOAD_TYPE, envelopePayload(y.envelope), fixedKey('forger-1')).signatures[0]!.sig
    const out = validate(EQUIVOCATIONS_TOPIC, raw(x.envelope, { ...y.envelope, signatures: [{ keyid: liar.did, sig: forgedSig }] }))
    expect(out).toMatchObject({ action: 'reject', code: 'ERR_BAD_SIGNATURE' })
  })

  it('REJECTs pairs that prove nothing: one artifact twice, two jobs, two keys, a failure', () => {
    const cases = {
      'one artifact twice': attest(liar, { jobId, artifact: fakeTreeCid('artifact-A'), finishedAt: T0 + 122_000 }),
      'two jobs (a rerun)': attest(liar, { jobId: fakeRawCid('job-2'), artifact: fakeTreeCid('artifact-B') }),
      'two keys': attest(fixedKey('honest-1'), { jobId, artifact: fakeTreeCid('artifact-B') }),
      'a failure': attest(liar, { jobId, failure: { exitCode: 1, reason: 'no' } })
    }
    for (const [name, other] of Object.entries(cases)) {
      const out = validate(EQUIVOCATIONS_TOPIC, raw(x.envelope, other.envelope))
      expect(out, name).toMatchObject({ action: 'reject', code: 'ERR_NOT_EQUIVOCATION' })
      expect(() => createEquivocationProof(x, other), name).toThrow(NotEquivocationError)
    }
    // the same envelope twice
    expect(validate(EQUIVOCATIONS_TOPIC, raw(x.envelope, x.envelope))).toMatchObject({ action: 'reject', code: 'ERR_NOT_EQUIVOCATION' })
  })

  it('REJECTs an oversized proof unread, and one without exactly two envelopes', () => {
    const big = new Uint8Array(MAX_EQUIVOCATION_PROOF_BYTES + 1).fill(0x20)
    expect(validate(EQUIVOCATIONS_TOPIC, big)).toMatchObject({ action: 'reject', code: 'ERR_TOO_LARGE' })
    const three = utf8Encode(JSON.stringify({ _type: EQUIVOCATION_PROOF_TYPE, attestations: [x.envelope, y.envelope, y.envelope] }))
    expect(validate(EQUIVOCATIONS_TOPIC, three)).toMatchObject({ action: 'reject', code: 'ERR_SCHEMA' })
  })

  it('IGNOREs a later proof version (a newer honest peer), REJECTs a proof on another topic and an attestation on this one', () => {
    expect(validate(EQUIVOCATIONS_TOPIC, raw(x.envelope, y.envelope, 'https://concur.dev/EquivocationProof/v2'))).toMatchObject({ action: 'ignore', code: 'ERR_UNSUPPORTED_VERSION' })
    expect(validate(ATTESTATIONS_TOPIC, raw(x.envelope, y.envelope)).action).toBe('reject')
    expect(validate(EQUIVOCATIONS_TOPIC, x.bytes).action).toBe('reject')
  })
})
