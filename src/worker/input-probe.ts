/**
 * Claim only once able to start (issue 13): before a worker publishes its
 * claim on a job, it fetches the root block of each input the build will
 * need (the source, and the rootfs of a rootfs job) through the same block
 * store runBuild exports them from (src/worker/run-build.ts), within a short
 * bound. A claim holds one of the job's replica slots for a lease; made
 * before the fetch, it let a job naming a source no peer holds take that slot
 * (and one of the volunteer's build slots) for the whole fetch timeout.
 *
 * A root block that comes says a peer holds the input and answers now; it
 * does not promise the rest of the DAG (runBuild's caps and timeout still
 * govern that), but the block is kept, so the export starts from it.
 */
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import type { BuildDefinition } from '../../protocol/index.ts'
import { getBlock } from '../content/index.ts'
import type { ReadableBlockstore } from '../content/index.ts'

/** how long a worker waits for an input's root block before it leaves the job for later */
export const INPUT_PROBE_MS = 10_000
/** a job whose inputs did not come is offered again after this, doubling at each failure */
export const INPUT_RETRY_MS = 30_000
/** probes of one job before the worker gives it up (declines it): 30 s, 1, 2 and 4 min apart */
export const MAX_INPUT_PROBES = 5

/** a root block is one block: the largest the stores take (4 MiB, bitswap's own bound too) */
export const MAX_ROOT_BLOCK_BYTES = 4 * 1024 * 1024

/** the multihash code of an identity CID: its bytes are inline, nothing to fetch */
const IDENTITY = 0x00

export type ProbeResult = { ok: true } | { ok: false, reason: string }

/** the inputs a build fetches, as runBuild fetches them */
export function inputsOf (def: BuildDefinition): Array<{ what: 'source' | 'rootfs', cid: string }> {
  return [
    { what: 'source', cid: def.source },
    ...(def.environment.kind === 'rootfs' ? [{ what: 'rootfs' as const, cid: def.environment.rootfs }] : [])
  ]
}

/** fetch the root block of every input of `def` within `timeoutMs` (and `options.signal`) */
export async function probeInputs (blockstore: ReadableBlockstore, def: BuildDefinition, timeoutMs: number, options: AbortOptions & {
  /**
   * Bring the root block into the store by the DAG transfer first (one
   * stream per peer, relayed connections included); what it does not bring,
   * bitswap is asked for. A failure here is not the probe's: it falls back.
   */
  fetchRoot?: (cid: CID, options: { signal: AbortSignal }) => Promise<void>
} = {}): Promise<ProbeResult> {
  const bound = AbortSignal.timeout(timeoutMs)
  const signal = options.signal == null ? bound : AbortSignal.any([bound, options.signal])
  for (const input of inputsOf(def)) {
    try {
      const cid = CID.parse(input.cid)
      if (cid.multihash.code === IDENTITY) continue
      if (options.fetchRoot != null) await options.fetchRoot(cid, { signal }).catch(() => {})
      await getBlock(blockstore, cid, { signal })
    } catch (err) {
      return { ok: false, reason: `the ${input.what} ${input.cid} could not be fetched: ${bound.aborted ? `no peer delivered its root block within ${timeoutMs} ms` : (err as Error).message}` }
    }
  }
  return { ok: true }
}
