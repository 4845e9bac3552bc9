/**
 * The requester service on in-memory stores, for tests without a network:
 * a policy source the test sets, and the components a daemon would give it.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { createPolicy } from '../../protocol/index.ts'
import type { TrustPolicy, TrustPolicyInput } from '../../protocol/index.ts'
import { recordStore } from '../../src/store/records.ts'
import type { RecordStore } from '../../src/store/records.ts'
import type { RequesterComponents } from '../../src/requester/requester.ts'
import { NoPolicyError } from '../../src/requester/errors.ts'
import type { PolicySource } from '../../src/requester/types.ts'
import { requester as requesterKey } from '../protocol/fixtures.ts'

export class TestPolicy extends TypedEventEmitter<{ 'policy:changed': CustomEvent<TrustPolicy | null> }> implements PolicySource {
  private policy: TrustPolicy | null = null
  current (): TrustPolicy {
    if (this.policy == null) throw new NoPolicyError('no policy in this test yet')
    return this.policy
  }

  set (input: TrustPolicyInput): void {
    this.policy = createPolicy(input)
    this.safeDispatchEvent('policy:changed', { detail: this.policy })
  }
}

/** what a daemon hands the requester, in memory; `publish` sees what it gossips */
export function inMemoryComponents (opts: { policy: PolicySource, publish: RequesterComponents['gossip']['publish'], records?: RecordStore, blockstore?: MemoryBlockstore }): RequesterComponents {
  return {
    records: opts.records ?? recordStore()({ datastore: new MemoryDatastore() }),
    gossip: { publish: opts.publish },
    datastore: new MemoryDatastore(),
    policy: opts.policy,
    blockstore: opts.blockstore ?? new MemoryBlockstore(),
    pins: { add: async function * () {}, isPinned: async () => true },
    identity: { signing: requesterKey, peerId: '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq' }
  }
}
