/**
 * peekAttestation (protocol/attestation.ts): the cheap look a catch-up asker
 * takes before it spends a verification (PROTOCOL.md §13). It must give what
 * decodeAttestation would for an honest attestation, and it must not verify
 * anything: no signature check, no key decoding (those are the cost it is
 * there to avoid), so a forgery peeks the same as the real thing.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  ATTESTATION_PAYLOAD_TYPE, JOB_PAYLOAD_TYPE, MalformedError, PayloadTypeError, SchemaError, SignatureError, ProtocolError,
  decodeAttestation, envelopeBytes, envelopePayload, peekAttestation, signEnvelope, useEd25519Verify, utf8Encode
} from '../../protocol/index.ts'
import { attest, fixedKey, makeJob, T0 } from './fixtures.ts'

const worker = fixedKey('worker-1')
const other = fixedKey('worker-2')
const job = makeJob()
const att = attest(worker, { jobId: job.jobId })
const NOW = T0 + 600_000

const statement = (): any => JSON.parse(new TextDecoder().decode(envelopePayload(att.envelope)))
const signed = (s: unknown, key = other, type = ATTESTATION_PAYLOAD_TYPE): Uint8Array => envelopeBytes(signEnvelope(type, utf8Encode(JSON.stringify(s)), key))

function thrown (fn: () => unknown): ProtocolError {
  try { fn() } catch (err) { return err as ProtocolError }
  throw new Error('expected a throw')
}

describe('peekAttestation', () => {
  afterEach(() => { useEd25519Verify(null) })

  it('reads the buildId, the claimed signer and the id that decodeAttestation gives an honest attestation', () => {
    const decoded = decodeAttestation(att.bytes, { now: NOW })
    expect(peekAttestation(att.bytes)).toEqual({ buildId: decoded.claim.buildId, worker: decoded.claim.worker, id: decoded.id })
  })

  it('checks no signature: a forgery (another key signed it) peeks as its victim, and only decoding refuses it', () => {
    let verifications = 0
    useEd25519Verify(() => { verifications++; return true })
    const forged = signed(statement(), other)
    expect(peekAttestation(forged).worker).toBe(worker.did)
    expect(verifications).toBe(0)
    useEd25519Verify(null)
    expect(thrown(() => decodeAttestation(forged, { now: NOW }))).toBeInstanceOf(SignatureError)
  })

  it('decodes no key: a signer field that is no did:key at all is returned as written', () => {
    const s = statement()
    s.predicate.runDetails.builder.id = 'did:key:z-not-a-key'
    const bytes = signed(s)
    expect(peekAttestation(bytes).worker).toBe('did:key:z-not-a-key')
    expect(thrown(() => decodeAttestation(bytes, { now: NOW }))).toBeInstanceOf(ProtocolError)
  })

  it('refuses with typed errors what it does read: bytes, envelope, payloadType, the two fields', () => {
    expect(thrown(() => peekAttestation(utf8Encode('{not json')))).toBeInstanceOf(MalformedError)
    expect(thrown(() => peekAttestation(job.bytes))).toBeInstanceOf(PayloadTypeError)
    expect(thrown(() => peekAttestation(signed(statement(), other, JOB_PAYLOAD_TYPE)))).toBeInstanceOf(PayloadTypeError)
    const noBuild = statement()
    delete noBuild.predicate.buildDefinition.externalParameters.buildId
    expect(thrown(() => peekAttestation(signed(noBuild)))).toBeInstanceOf(SchemaError)
    const numericWorker = statement()
    numericWorker.predicate.runDetails.builder.id = 42
    expect(thrown(() => peekAttestation(signed(numericWorker)))).toBeInstanceOf(SchemaError)
    expect(thrown(() => peekAttestation(signed([1, 2, 3])))).toBeInstanceOf(SchemaError)
  })
})
