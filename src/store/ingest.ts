/**
 * Every message gossip validated goes to the node's stores, in one place:
 * claims to the claim book (at once, before any other listener runs: a worker
 * deciding on a job right after catch-up must already see the leases that
 * came with it), jobs and attestations to the record store, which announces
 * them once persisted ('job:stored', 'attestation:stored'). Whoever reacts to
 * a record listens to the store, not to gossip, so it never runs before the
 * record is there.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { SignedClaim } from '../../protocol/index.ts'
import type { ConcurGossip } from '../net/gossip.ts'
import type { AdvertBook } from './advert-book.ts'
import type { ClaimBook } from './claim-book.ts'
import type { CommitmentBook } from './commitment-book.ts'
import type { RecordStore } from './records.ts'

const log = logger('concur:ingest')

export interface IngestComponents {
  gossip: Pick<ConcurGossip, 'onMessage'>
  records: Pick<RecordStore, 'putJob' | 'putAttestation' | 'putEquivocation'>
  claims: Pick<ClaimBook, 'record'>
  /** worker adverts (PROTOCOL.md §5.4); none: not kept */
  adverts?: Pick<AdvertBook, 'record'>
  /** commitments (PROTOCOL.md §8.3); none: a node without the rule */
  commitments?: Pick<CommitmentBook, 'put'>
}

export interface IngestEvents {
  /** a claim that is its worker's newest on its job (replays and older ones are not announced) */
  'claim:recorded': CustomEvent<SignedClaim>
}

export class Ingest extends TypedEventEmitter<IngestEvents> implements Startable {
  private readonly components: IngestComponents
  private unsubscribe: (() => void) | undefined

  constructor (components: IngestComponents) {
    super()
    this.components = components
  }

  start (): void {
    const { gossip, records, claims, adverts, commitments } = this.components
    this.unsubscribe = gossip.onMessage((m) => {
      if (m.kind === 'claim') {
        if (claims.record(m.value)) this.safeDispatchEvent('claim:recorded', { detail: m.value })
        return
      }
      if (m.kind === 'advert') {
        adverts?.record(m.value)
        return
      }
      if (m.kind === 'commitment') {
        commitments?.put(m.value)
        return
      }
      // (what it reveals was noted when it verified: CommitmentBook.verified)
      const stored = m.kind === 'job'
        ? records.putJob(m.value)
        : m.kind === 'attestation' ? records.putAttestation(m.value) : records.putEquivocation(m.value)
      stored.catch((err: Error) => { log.error('storing a %s failed: %e', m.kind, err) })
    })
  }

  stop (): void {
    this.unsubscribe?.()
  }
}

export function ingest () {
  return (components: IngestComponents): Ingest => new Ingest(components)
}
