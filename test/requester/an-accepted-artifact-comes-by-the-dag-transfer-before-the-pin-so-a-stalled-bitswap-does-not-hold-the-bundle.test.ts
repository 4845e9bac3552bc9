/**
 * A requester behind NAT reaches its workers through a relay, where bitswap's
 * want-lists were seen to stall for minutes (issue 17: the bundle of an
 * accepted job waited on a pin walking the artifact through bitswap). The
 * accepted artifact is fetched by the node's DAG transfer first, so the pin's
 * walk finds every block at home. Here "bitswap" is a pin that reads only the
 * local store and fails on the first block missing there (what a stalled
 * bitswap amounts to, without waiting for its timeout): without the transfer,
 * the bundle fails; with it, the bundle is written, and a transfer that stops
 * short leaves the rest to the pin.
 */
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import type { Pins } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { buildIdOf, evaluateVerdict } from '../../protocol/index.ts'
import { walkDag, walkDagBlocks } from '../../src/content/index.ts'
import { writeAcceptedBundle } from '../../src/requester/outcomes.ts'
import type { OutcomeComponents } from '../../src/requester/outcomes.ts'
import { attestFor, makeArtifact, makeJob, trustedPolicy, trustedWorkers, withTempDir } from './helpers.ts'

/** a pin whose walk reaches only `local`: a block missing there is a stalled fetch */
/** an artifact two trusted workers attested, the verdict accepting it, and where its bundle goes */
async function acceptedJob (tmp: string) {
  const { blockstore: remote, artifact } = await makeArtifact(tmp)
  const job = makeJob()
  const attestations = [attestFor(trustedWorkers[0], job, artifact), attestFor(trustedWorkers[1], job, artifact)]
  const policy = trustedPolicy(2)
  const verdict = evaluateVerdict(policy, buildIdOf(job.job.definition), attestations)
  const dirs = { bundles: join(tmp, 'bundles'), disputes: join(tmp, 'disputes') }
  const records = { attestations: () => attestations, equivocations: () => [] }
  return { remote, artifact, job, attestations, policy, verdict, dirs, records }
}

function localOnlyPins (local: MemoryBlockstore): Pick<Pins, 'add' | 'isPinned'> {
  return {
    isPinned: async () => false,
    add: async function * (root: CID) {
      try {
        for await (const cid of walkDag(local, root)) yield cid
      } catch (err) {
        throw new Error(`bitswap stalled: ${(err as Error).message}`)
      }
    }
  }
}

/** a pin whose walk reaches the workers' store (bitswap working): it brings into `local` what is not there */
function pinsFetchingFrom (remote: MemoryBlockstore, local: MemoryBlockstore): Pick<Pins, 'add' | 'isPinned'> {
  return {
    isPinned: async () => false,
    add: async function * (root: CID) {
      for await (const { cid, bytes } of walkDagBlocks(remote, root)) {
        if (!(await local.has(cid))) await local.put(cid, bytes)
        yield cid
      }
    }
  }
}

/** a DAG transfer from the workers' store, bringing at most `limit` blocks */
function transferFrom (remote: MemoryBlockstore, local: MemoryBlockstore, calls: CID[], limit = Infinity): NonNullable<OutcomeComponents['transfer']> {
  return async (root, _bounds, options) => {
    calls.push(root)
    let n = 0
    for await (const { cid, bytes } of walkDagBlocks(remote, root)) {
      if (n++ >= limit) return { complete: false }
      await local.put(cid, bytes)
      options.onBlock(cid, bytes)
    }
    return { complete: true }
  }
}

describe('the accepted artifact comes by the DAG transfer before the pin', () => {
  it('writes the bundle when bitswap delivers nothing, and fails without the transfer', async () => {
    await withTempDir(async tmp => {
      const { remote, artifact, job, policy, verdict, dirs, records } = await acceptedJob(tmp)
      expect(verdict.status).toBe('accepted')

      // without a transfer the pin is the only path, and it stalls
      const bare = new MemoryBlockstore()
      await expect(writeAcceptedBundle({ blockstore: bare, pins: localOnlyPins(bare), records }, dirs, job, verdict, policy)).rejects.toThrow(/bitswap stalled/)

      const local = new MemoryBlockstore()
      const calls: CID[] = []
      const out = await writeAcceptedBundle({ blockstore: local, pins: localOnlyPins(local), records, transfer: transferFrom(remote, local, calls) }, dirs, job, verdict, policy)
      expect(out).toBe(join(dirs.bundles, `${job.jobId}.car`))
      expect(calls.map(c => c.toString())).toEqual([artifact.toString()])
      for await (const cid of walkDag(remote, artifact)) expect(await local.has(cid)).toBe(true)
    })
  })

  it('a transfer that stops short or throws leaves the rest to the pin', async () => {
    await withTempDir(async tmp => {
      const { remote, job, policy, verdict, dirs, records } = await acceptedJob(tmp)
      // the pin here reaches the workers (bitswap working): it brings what the transfer left
      const local = new MemoryBlockstore()
      const fetchingPins = pinsFetchingFrom(remote, local)
      const partial = transferFrom(remote, local, [], 2)
      await writeAcceptedBundle({ blockstore: local, pins: fetchingPins, records, transfer: partial }, dirs, job, verdict, policy)
      const thrower: NonNullable<OutcomeComponents['transfer']> = async () => { throw new Error('no provider') }
      const again = new MemoryBlockstore()
      await writeAcceptedBundle({ blockstore: again, pins: pinsFetchingFrom(remote, again), records, transfer: thrower }, { ...dirs, bundles: join(tmp, 'bundles2') }, job, verdict, policy)
    })
  })

  it('a transfer that would take the bundle\'s whole time (a provider sending just fast enough not to be dropped) gets its share of it, then the pin fetches the rest', async () => {
    await withTempDir(async tmp => {
      const { remote, job, policy, verdict, dirs, records } = await acceptedJob(tmp)
      const local = new MemoryBlockstore()
      const fetchingPins = pinsFetchingFrom(remote, local)
      // a transfer that settles only when its signal ends it
      const slow: NonNullable<OutcomeComponents['transfer']> = async (_root, _bounds, o) => {
        await new Promise<void>((_resolve, reject) => { o.signal?.addEventListener('abort', () => { reject(o.signal?.reason as Error) }, { once: true }) })
        return { complete: false }
      }
      // the bundle's own time: 2 s; the transfer's share: 200 ms
      const out = await writeAcceptedBundle({ blockstore: local, pins: fetchingPins, records, transfer: slow }, dirs, job, verdict, policy, { signal: AbortSignal.timeout(2000), transferMs: 200 })
      expect(out).toBe(join(dirs.bundles, `${job.jobId}.car`))
    })
  })
})
