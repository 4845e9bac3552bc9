/**
 * concur wire protocol: types, encoding, signing, verification and trust-policy
 * evaluation. Pure: no I/O, no clock reads (callers pass `now`), no libp2p/helia.
 * Normative description: ./PROTOCOL.md.
 */
export * from './errors.ts'
export * from './encoding.ts'
export * from './time.ts'
export * from './limits.ts'
export * from './cid.ts'
export * from './keys.ts'
export * from './dsse.ts'
export * from './build.ts'
export * from './shard.ts'
export * from './job.ts'
export * from './attestation.ts'
export * from './claim.ts'
export * from './advert.ts'
export * from './equivocation.ts'
export * from './commitment.ts'
export * from './message.ts'
export * from './policy.ts'
export * from './verdict.ts'
