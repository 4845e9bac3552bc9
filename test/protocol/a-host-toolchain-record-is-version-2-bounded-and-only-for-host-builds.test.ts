/**
 * The host toolchain record (PROTOCOL.md §5.2): a worker building in the
 * `host` environment records its distribution and toolchain versions, so a
 * requester sees what built each CID. It is build type version 2 (an older
 * node IGNOREs it, never REJECTs), bounded and canonical (packages sorted,
 * printable, at most MAX_HOST_PACKAGES), and refused on a rootfs build (whose
 * toolchain its CID names).
 */
import { describe, expect, it } from 'vitest'
import { ATTESTATIONS_TOPIC, CONCUR_BUILD_TYPE, CONCUR_BUILD_TYPE_V2, MAX_HOST_PACKAGES, SchemaError, createAttestation, decodeAttestation, envelopePayload, signEnvelope, utf8Encode, validateTopicMessage, envelopeBytes, ATTESTATION_PAYLOAD_TYPE, buildIdOf } from '../../protocol/index.ts'
import type { HostToolchain } from '../../protocol/index.ts'
import { claimFor, definition, fakeTreeCid, fixedKey, T0 } from './fixtures.ts'

const worker = fixedKey('host-record-worker')
const host: HostToolchain = { os: 'Debian GNU/Linux 12 (bookworm)', packages: [{ name: 'g++', version: '4:12.2.0-3' }, { name: 'gcc', version: '4:12.2.0-3' }, { name: 'libc6', version: '2.36-9+deb12u14' }] }

describe('a host toolchain record', () => {
  it('is build type v2 and decodes with the record; without one an attestation stays v1, byte for byte', () => {
    const plain = createAttestation(claimFor(worker), worker)
    const recorded = createAttestation({ ...claimFor(worker), host }, worker)
    expect(plain.statement.predicate.buildDefinition.buildType).toBe(CONCUR_BUILD_TYPE)
    expect(recorded.statement.predicate.buildDefinition.buildType).toBe(CONCUR_BUILD_TYPE_V2)
    expect(decodeAttestation(recorded.bytes, { now: T0 }).claim.host).toEqual(host)
    expect(decodeAttestation(plain.bytes, { now: T0 }).claim.host).toBeUndefined()
    // a different statement: a different attestation id
    expect(recorded.id).not.toBe(plain.id)
  })

  it('must be what its build type says: v2 without a record, or v1 with one, is refused', () => {
    const recorded = createAttestation({ ...claimFor(worker), host }, worker)
    const json = JSON.parse(new TextDecoder().decode(envelopePayload(recorded.envelope))) as { predicate: { buildDefinition: { buildType: string, internalParameters: Record<string, unknown> } } }
    const resign = (mutate: (j: typeof json) => void): Uint8Array => {
      const j = structuredClone(json)
      mutate(j)
      return envelopeBytes(signEnvelope(ATTESTATION_PAYLOAD_TYPE, utf8Encode(JSON.stringify(j)), worker))
    }
    expect(() => decodeAttestation(resign(j => { j.predicate.buildDefinition.buildType = CONCUR_BUILD_TYPE }), { now: T0 })).toThrow(SchemaError)
    expect(() => decodeAttestation(resign(j => { delete j.predicate.buildDefinition.internalParameters.host }), { now: T0 })).toThrow(SchemaError)
    // a later version is IGNOREd on gossip, as an older node IGNOREs this one
    const v3 = resign(j => { j.predicate.buildDefinition.buildType = 'https://concur.dev/build/v3' })
    expect(validateTopicMessage(ATTESTATIONS_TOPIC, v3, { now: T0 }).action).toBe('ignore')
  })

  it('is bounded and canonical: printable, sorted, unique, at most MAX_HOST_PACKAGES packages', () => {
    const bad: Array<[string, HostToolchain]> = [
      ['unsorted', { os: 'x', packages: [{ name: 'make', version: '1' }, { name: 'gcc', version: '1' }] }],
      ['twice', { os: 'x', packages: [{ name: 'gcc', version: '1' }, { name: 'gcc', version: '2' }] }],
      ['too many', { os: 'x', packages: Array.from({ length: MAX_HOST_PACKAGES + 1 }, (_, i) => ({ name: `p${String(i).padStart(3, '0')}`, version: '1' })) }],
      ['a control character in os', { os: 'Debian\u001b[31m', packages: [] }],
      ['a newline in a version', { os: 'x', packages: [{ name: 'gcc', version: '1\n2' }] }],
      ['an empty os', { os: '', packages: [] }]
    ]
    for (const [what, h] of bad) expect(() => createAttestation({ ...claimFor(worker), host: h }, worker), what).toThrow(SchemaError)
    expect(createAttestation({ ...claimFor(worker), host: { os: 'x', packages: Array.from({ length: MAX_HOST_PACKAGES }, (_, i) => ({ name: `p${String(i).padStart(3, '0')}`, version: '1' })) } }, worker).claim.host?.packages).toHaveLength(MAX_HOST_PACKAGES)
  })

  it('is refused on a rootfs build: its toolchain is named by its CID', () => {
    const def = { ...definition, environment: { kind: 'rootfs' as const, rootfs: fakeTreeCid('a rootfs'), platform: 'linux/amd64' } }
    const claim = { ...claimFor(worker, { def }), buildId: buildIdOf(def) }
    expect(() => createAttestation({ ...claim, host }, worker)).toThrow(/only a build in the host environment/)
    expect(createAttestation(claim, worker).claim.host).toBeUndefined()
  })
})
