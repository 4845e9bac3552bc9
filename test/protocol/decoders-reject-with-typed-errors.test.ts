import { describe, expect, it } from 'vitest'
import {
  ATTESTATION_PAYLOAD_TYPE, ATTESTATIONS_TOPIC, BuildIdMismatchError, CLAIM_PAYLOAD_TYPE, CLAIMS_TOPIC, ExpiredError,
  FutureError, JOB_PAYLOAD_TYPE, JOBS_TOPIC, KeyError, MAX_MESSAGE_BYTES, MalformedError, PayloadTypeError, ProtocolError,
  SchemaError, SignatureError, SizeLimitError, UnsupportedVersionError, base64Encode, createAttestation, createClaim, didFromPublicKey, decodeAttestation,
  decodeClaim, decodeJobAnnouncement, decodeMessage, envelopeBytes, envelopePayload, gossipActionFor,
  messageIdOf, parseEnvelope, signEnvelope, utf8Encode, validateTopicMessage
} from '../../protocol/index.ts'
import type { Envelope, SigningKey } from '../../protocol/index.ts'
import { attest, claimFor, fakeTreeCid, fixedKey, iso, makeJob, requester, T0 } from './fixtures.ts'

type ErrorClass = abstract new (...args: never[]) => ProtocolError

function expectError (fn: () => unknown, cls: ErrorClass, code: string, path?: string): void {
  let caught: unknown
  try { fn() } catch (err) { caught = err }
  expect(caught, 'expected a throw').toBeInstanceOf(cls)
  expect((caught as ProtocolError).code).toBe(code)
  if (path !== undefined) expect((caught as SchemaError).path).toBe(path)
}

const json = (env: Envelope): Record<string, unknown> => JSON.parse(new TextDecoder().decode(envelopePayload(env))) as Record<string, unknown>
const resign = (obj: unknown, type: string, key: SigningKey): Envelope => signEnvelope(type, utf8Encode(JSON.stringify(obj)), key)
const worker = fixedKey('worker-1')
const job = makeJob()
const NOW = T0 + 60_000
const att = attest(worker, { jobId: job.jobId })

/** Re-sign a job payload after `edit` so that only the edited rule can fail. */
function jobWith (edit: (j: Record<string, unknown>) => void, key: SigningKey = requester): Envelope {
  const j = json(job.envelope)
  edit(j)
  return resign(j, JOB_PAYLOAD_TYPE, key)
}
function attWith (edit: (s: any) => void, key: SigningKey = worker): Envelope {
  const s = json(att.envelope)
  edit(s)
  return resign(s, ATTESTATION_PAYLOAD_TYPE, key)
}

describe('envelope level (all decoders)', () => {
  const decoders = {
    job: (b: Uint8Array | Envelope) => decodeJobAnnouncement(b, { now: NOW }),
    attestation: (b: Uint8Array | Envelope) => decodeAttestation(b, { now: NOW }),
    claim: (b: Uint8Array | Envelope) => decodeClaim(b, { now: NOW }),
    message: (b: Uint8Array | Envelope) => decodeMessage(b instanceof Uint8Array ? b : envelopeBytes(b), { now: NOW })
  }
  for (const [name, decode] of Object.entries(decoders)) {
    it(`${name}: size cap is checked first (ERR_TOO_LARGE), for bytes and for envelope objects`, () => {
      expectError(() => decode(new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0x7b)), SizeLimitError, 'ERR_TOO_LARGE')
      const big: Envelope = { ...job.envelope, payload: base64Encode(new Uint8Array(MAX_MESSAGE_BYTES)) }
      expectError(() => decode(big), SizeLimitError, 'ERR_TOO_LARGE')
    })
    it(`${name}: unreadable bytes are ERR_MALFORMED`, () => {
      expectError(() => decode(Uint8Array.of(0xff, 0xfe, 0x7b)), MalformedError, 'ERR_MALFORMED')
      expectError(() => decode(utf8Encode('{"payload":')), MalformedError, 'ERR_MALFORMED')
      expectError(() => decode(utf8Encode('\ufeff' + new TextDecoder().decode(job.bytes))), MalformedError, 'ERR_MALFORMED')
      expectError(() => decode({ ...job.envelope, payload: job.envelope.payload.replace(/=+$/, '') }), MalformedError, 'ERR_MALFORMED')
    })
    it(`${name}: envelope shape errors are ERR_SCHEMA`, () => {
      expectError(() => decode(utf8Encode('[]')), SchemaError, 'ERR_SCHEMA', '')
      expectError(() => decode(utf8Encode(JSON.stringify({ payload: '', payloadType: JOB_PAYLOAD_TYPE }))), SchemaError, 'ERR_SCHEMA', 'signatures')
      expectError(() => decode(utf8Encode(JSON.stringify({ ...job.envelope, signatures: [] }))), SchemaError, 'ERR_SCHEMA', 'signatures')
      expectError(() => decode(utf8Encode(JSON.stringify({ ...job.envelope, extra: 1 }))), SchemaError, 'ERR_SCHEMA', 'extra')
      expectError(() => decode(utf8Encode(JSON.stringify({ ...job.envelope, payloadType: 7 }))), SchemaError, 'ERR_SCHEMA', 'payloadType')
    })
  }

  it('concur objects carry exactly one signature', () => {
    const two: Envelope = { ...job.envelope, signatures: [job.envelope.signatures[0]!, job.envelope.signatures[0]!] }
    expect(() => parseEnvelope(envelopeBytes(two))).not.toThrow() // generic DSSE allows several
    expectError(() => decodeJobAnnouncement(two, { now: NOW }), SchemaError, 'ERR_SCHEMA', 'signatures')
  })

  it('the payloadType must be the object\'s own (ERR_PAYLOAD_TYPE), and unknown ones are refused by decodeMessage', () => {
    expectError(() => decodeAttestation(job.envelope, { now: NOW }), PayloadTypeError, 'ERR_PAYLOAD_TYPE')
    expectError(() => decodeJobAnnouncement(att.envelope, { now: NOW }), PayloadTypeError, 'ERR_PAYLOAD_TYPE')
    const future = resign({ hello: 1 }, 'application/vnd.concur.job+json; version=9', requester)
    expectError(() => decodeMessage(envelopeBytes(future), { now: NOW }), PayloadTypeError, 'ERR_PAYLOAD_TYPE')
  })

  it('a keyid is never trusted: a wrong keyid on a good signature still verifies, a right keyid on a bad one does not', () => {
    const misnamed: Envelope = { ...job.envelope, signatures: [{ keyid: worker.did, sig: job.envelope.signatures[0]!.sig }] }
    expect(decodeJobAnnouncement(misnamed, { now: NOW }).jobId).toBe(job.jobId)
    const forged = resign(json(job.envelope), JOB_PAYLOAD_TYPE, worker)
    forged.signatures[0]!.keyid = requester.did
    expectError(() => decodeJobAnnouncement(forged, { now: NOW }), SignatureError, 'ERR_BAD_SIGNATURE')
  })
})

describe('job announcements', () => {
  const decode = (e: Envelope | Uint8Array, now = NOW) => decodeJobAnnouncement(e, { now })

  it('decodes its own output, with jobId = CID of the payload and bytes = canonical envelope', () => {
    const d = decode(job.bytes)
    expect(d.jobId).toBe(job.jobId)
    expect(d.job).toEqual(job.job)
    expect(d.bytes).toEqual(job.bytes)
    expect(d.jobId.startsWith('bafkrei')).toBe(true)
    expect(messageIdOf(job.bytes)).toHaveLength(32)
  })

  it('version: another JobAnnouncement version is ERR_UNSUPPORTED_VERSION, an unknown _type is ERR_SCHEMA', () => {
    expectError(() => decode(jobWith(j => { j._type = 'https://concur.dev/JobAnnouncement/v3' })), UnsupportedVersionError, 'ERR_UNSUPPORTED_VERSION')
    // version 2 (a sharded job, §6.1) is known: under version 1's payloadType it is a mislabelled job
    expectError(() => decode(jobWith(j => { j._type = 'https://concur.dev/JobAnnouncement/v2' })), SchemaError, 'ERR_SCHEMA', '_type')
    expectError(() => decode(jobWith(j => { j._type = 'https://example.com/Other' })), SchemaError, 'ERR_SCHEMA', '_type')
    expectError(() => decode(jobWith(j => { delete j._type })), SchemaError, 'ERR_SCHEMA', '_type')
    expectError(() => decode(jobWith(j => { (j.definition as any).version = 2 })), SchemaError, 'ERR_SCHEMA', 'definition.version')
  })

  it('schema errors name the field', () => {
    const cases: Array<[string, (j: any) => void]> = [
      ['replicas', j => { j.replicas = 0 }],
      ['replicas', j => { j.replicas = 1.5 }],
      ['replicas', j => { j.replicas = '2' }],
      ['unknownField', j => { j.unknownField = true }],
      ['nonce', j => { j.nonce = 'abcd' }],
      ['requester', j => { j.requester = 'did:key:' + 'z'.repeat(500) }],
      ['createdAt', j => { j.createdAt = '2025-06-01 12:00:00' }],
      ['createdAt', j => { j.createdAt = '2025-06-01T12:00:00+02:00' }],
      ['createdAt', j => { j.createdAt = '2025-02-30T00:00:00Z' }],
      ['createdAt', j => { j.createdAt = 1748779200000 }],
      ['expiresAt', j => { j.expiresAt = j.createdAt }],
      ['resources.cpus', j => { j.resources.cpus = 0 }],
      ['resources.wallSeconds', j => { j.resources.wallSeconds = -1 }],
      ['definition.command', j => { j.definition.command = [] }],
      ['definition.command', j => { j.definition.command = new Array(1000).fill('x') }],
      ['definition.command[1]', j => { j.definition.command[1] = 'x'.repeat(5000) }],
      ['definition.command[0]', j => { j.definition.command[0] = 'a\u0000b' }],
      ['definition.command[0]', j => { j.definition.command[0] = '\ud800' }],
      ['definition.env.SOURCE_DATE_EPOCH', j => { delete j.definition.env.SOURCE_DATE_EPOCH }],
      ['definition.env.SOURCE_DATE_EPOCH', j => { j.definition.env.SOURCE_DATE_EPOCH = '-1' }],
      ['definition.env.1BAD', j => { j.definition.env['1BAD'] = 'x' }],
      ['definition.output', j => { j.definition.output = '../etc' }],
      ['definition.output', j => { j.definition.output = '/abs' }],
      ['definition.output', j => { j.definition.output = 'a//b' }],
      ['definition.source', j => { j.definition.source = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG' }],
      ['definition.source', j => { j.definition.source = 'not a cid' }],
      ['definition.source', j => { j.definition.source = j.definition.source.toUpperCase() }],
      ['definition.environment.kind', j => { j.definition.environment = { kind: 'docker', image: 'x' } }],
      ['definition.environment.platform', j => { j.definition.environment.platform = 'Linux AMD64' }]
    ]
    for (const [path, edit] of cases) {
      expectError(() => decode(jobWith(edit)), SchemaError, 'ERR_SCHEMA', path)
    }
  })

  it('buildId must be the hash of the definition (ERR_BUILD_ID_MISMATCH)', () => {
    expectError(() => decode(jobWith(j => { (j.definition as any).command = ['make', 'evil'] })), BuildIdMismatchError, 'ERR_BUILD_ID_MISMATCH')
  })

  it('time window: expired (ERR_EXPIRED) unless allowExpired, future beyond skew (ERR_FUTURE)', () => {
    const expiresAt = Date.parse(job.job.expiresAt)
    expect(() => decode(job.bytes, expiresAt - 1)).not.toThrow()
    expectError(() => decode(job.bytes, expiresAt), ExpiredError, 'ERR_EXPIRED')
    expect(decodeJobAnnouncement(job.bytes, { now: expiresAt + 1e9, allowExpired: true }).jobId).toBe(job.jobId)
    const createdAt = Date.parse(job.job.createdAt)
    expect(() => decode(job.bytes, createdAt - 5 * 60_000)).not.toThrow()
    expectError(() => decode(job.bytes, createdAt - 5 * 60_000 - 1), FutureError, 'ERR_FUTURE')
    expectError(() => decodeJobAnnouncement(job.bytes, { now: createdAt - 1, maxFutureSkewMs: 0 }), FutureError, 'ERR_FUTURE')
  })

  it('signature: by the requester named in the payload, over this exact payload', () => {
    expectError(() => decode(jobWith(() => {}, worker)), SignatureError, 'ERR_BAD_SIGNATURE')
    const sig = job.envelope.signatures[0]!.sig
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1)
    expectError(() => decode({ ...job.envelope, signatures: [{ keyid: '', sig: flipped }] }), SignatureError, 'ERR_BAD_SIGNATURE')
  })

  it('a small-order requester key is ERR_SMALL_ORDER_KEY', () => {
    const identity = new Uint8Array(32); identity[0] = 1
    const identityDid = didFromPublicKey(identity)
    expectError(() => decode(jobWith(j => { j.requester = identityDid })), KeyError, 'ERR_SMALL_ORDER_KEY')
  })
})

describe('attestations', () => {
  const decode = (e: Envelope | Uint8Array, now = NOW + 120_000) => decodeAttestation(e, { now })

  it('decodes its own output; id is sha256 of the payload', () => {
    const d = decode(att.bytes)
    expect(d.claim).toEqual(att.claim)
    expect(d.id).toBe(att.id)
    expect(d.id).toMatch(/^[0-9a-f]{64}$/)
  })

  it('versions: other statement, predicate or build types are ERR_UNSUPPORTED_VERSION', () => {
    expectError(() => decode(attWith(s => { s._type = 'https://in-toto.io/Statement/v0.1' })), UnsupportedVersionError, 'ERR_UNSUPPORTED_VERSION')
    expectError(() => decode(attWith(s => { s.predicateType = 'https://slsa.dev/provenance/v2' })), UnsupportedVersionError, 'ERR_UNSUPPORTED_VERSION')
    expectError(() => decode(attWith(s => { s.predicate.buildDefinition.buildType = 'https://concur.dev/build/v3' })), UnsupportedVersionError, 'ERR_UNSUPPORTED_VERSION')
    expectError(() => decode(attWith(s => { s._type = 'x' })), SchemaError, 'ERR_SCHEMA', '_type')
  })

  it('schema: the statement must be exactly the canonical provenance of its claim', () => {
    expectError(() => decode(attWith(s => { s.subject[0].digest.sha256 = '00'.repeat(32) })), SchemaError, 'ERR_SCHEMA', 'subject[0].digest.sha256')
    expectError(() => decode(attWith(s => { s.subject.push(s.subject[0]) })), SchemaError, 'ERR_SCHEMA', 'subject')
    expectError(() => decode(attWith(s => { s.predicate.runDetails.metadata.invocationId = 'x' })), SchemaError, 'ERR_SCHEMA', 'predicate.runDetails.metadata.invocationId')
    expectError(() => decode(attWith(s => { s.predicate.extra = 1 })), SchemaError, 'ERR_SCHEMA', 'predicate.extra')
    expectError(() => decode(attWith(s => { s.predicate.buildDefinition.internalParameters.sandboxTier = 'none' })), SchemaError, 'ERR_SCHEMA', 'predicate.buildDefinition.internalParameters.sandboxTier')
    expectError(() => decode(attWith(s => { s.predicate.buildDefinition.internalParameters.parallelism = 0 })), SchemaError, 'ERR_SCHEMA', 'predicate.buildDefinition.internalParameters.parallelism')
    expectError(() => decode(attWith(s => { s.predicate.runDetails.metadata.startedOn = '2025-06-01T13:00:00Z' })), SchemaError, 'ERR_SCHEMA')
    expectError(() => decode(attWith(s => { s.predicate.runDetails.byproducts.at(-1).annotations.exitCode = 1 })), SchemaError, 'ERR_SCHEMA')
  })

  it('buildId must be the hash of the definition (ERR_BUILD_ID_MISMATCH)', () => {
    expectError(() => decode(attWith(s => { s.predicate.buildDefinition.externalParameters.definition.env.EXTRA = '1' })), BuildIdMismatchError, 'ERR_BUILD_ID_MISMATCH')
  })

  it('finishedAt beyond now + skew is ERR_FUTURE; attestations do not expire', () => {
    const finished = Date.parse(att.claim.finishedAt)
    expectError(() => decode(att.bytes, finished - 5 * 60_000 - 1), FutureError, 'ERR_FUTURE')
    expect(() => decode(att.bytes, finished + 10 * 365 * 86_400_000)).not.toThrow()
  })

  it('signature must be by builder.id', () => {
    expectError(() => decode(attWith(() => {}, fixedKey('worker-2'))), SignatureError, 'ERR_BAD_SIGNATURE')
  })

  it('createAttestation refuses inconsistent claims', () => {
    expectError(() => attest(worker, { buildId: job.jobId }), SchemaError, 'ERR_SCHEMA', 'buildId')
    expectError(() => attest(worker, { startedAt: T0 + 10, finishedAt: T0 }), SchemaError, 'ERR_SCHEMA', 'finishedAt')
    expectError(() => createAttestation(claimFor(worker), fixedKey('someone-else')), SchemaError, 'ERR_SCHEMA', 'worker')
    expectError(() => createAttestation({ ...claimFor(worker), source: fakeTreeCid('other') }, worker), SchemaError, 'ERR_SCHEMA', 'source')
    const otherDef = { ...claimFor(worker).definition, command: ['make', 'other'] }
    expectError(() => createAttestation({ ...claimFor(worker), definition: otherDef }, worker), BuildIdMismatchError, 'ERR_BUILD_ID_MISMATCH')
  })
})

describe('claims (leases)', () => {
  const make = (issued: number, until: number, key = worker) => createClaim({
    jobId: job.jobId,
    buildId: job.job.buildId,
    worker: key.did,
    workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
    issuedAt: iso(issued),
    leaseUntil: iso(until),
    seq: 1
  }, key)

  it('a live lease decodes; a lapsed one is ERR_EXPIRED; one issued in the future is ERR_FUTURE', () => {
    const c = make(T0, T0 + 30_000)
    expect(decodeClaim(c.bytes, { now: T0 + 29_999 }).claim).toEqual(c.claim)
    expectError(() => decodeClaim(c.bytes, { now: T0 + 30_000 }), ExpiredError, 'ERR_EXPIRED')
    expectError(() => decodeClaim(c.bytes, { now: T0 - 5 * 60_000 - 1 }), FutureError, 'ERR_FUTURE')
  })

  it('leases longer than MAX_LEASE_MS are ERR_SCHEMA, and so is a claim with an unknown version', () => {
    expectError(() => make(T0, T0 + 10 * 60_000), SchemaError, 'ERR_SCHEMA', 'leaseUntil')
    const c = make(T0, T0 + 30_000)
    const j = json(c.envelope)
    j._type = 'https://concur.dev/Claim/v9'
    expectError(() => decodeClaim(resign(j, CLAIM_PAYLOAD_TYPE, worker), { now: T0 }), UnsupportedVersionError, 'ERR_UNSUPPORTED_VERSION')
  })
})

describe('gossip actions', () => {
  it('maps errors to REJECT or IGNORE, and a known type on the wrong topic is REJECTed', () => {
    expect(gossipActionFor('ERR_EXPIRED')).toBe('ignore')
    expect(gossipActionFor('ERR_UNSUPPORTED_VERSION')).toBe('ignore')
    expect(gossipActionFor(new SignatureError('test'))).toBe('reject')
    for (const code of ['ERR_TOO_LARGE', 'ERR_MALFORMED', 'ERR_SCHEMA', 'ERR_BAD_SIGNATURE', 'ERR_FUTURE', 'ERR_BUILD_ID_MISMATCH', 'ERR_SMALL_ORDER_KEY'] as const) {
      expect(gossipActionFor(code)).toBe('reject')
    }
    expect(validateTopicMessage(JOBS_TOPIC, job.bytes, { now: NOW }).action).toBe('accept')
    expect(validateTopicMessage(ATTESTATIONS_TOPIC, job.bytes, { now: NOW }).action).toBe('reject')
    expect(validateTopicMessage(CLAIMS_TOPIC, job.bytes, { now: NOW }).action).toBe('reject')
    expect(validateTopicMessage(JOBS_TOPIC, job.bytes, { now: Date.parse(job.job.expiresAt) }).action).toBe('ignore')
    expect(validateTopicMessage(JOBS_TOPIC, utf8Encode('nonsense'), { now: NOW }).action).toBe('reject')
  })
})
