/** Commitments for the store's tests: fixed times, the fixtures' keys and jobs. */
import { createCommitment as create } from '../../protocol/index.ts'
import type { SignedCommitment, SignedJob, SigningKey } from '../../protocol/index.ts'
import { T0, iso } from '../protocol/fixtures.ts'

export function createCommitment (job: SignedJob, key: SigningKey, artifact: string, extra: { buildId?: string } = {}): SignedCommitment {
  return create({ buildId: extra.buildId ?? job.job.buildId, jobId: job.jobId, workerPeerId: '12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', issuedAt: iso(T0), artifact }, key)
}

/** a distinct fixed key label per stranger */
export function fakeKeyLabel (i: number): string {
  return `stranger-${i}`
}
