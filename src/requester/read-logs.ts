/**
 * The tails of a job's build logs, for a person to read. An attestation's
 * log is whatever its signer stored: a sybil can attest every job with a log
 * of many MiB. So one call reads at most LOG_REQUEST_BYTES in all (memory is
 * bounded whatever the number of attestations), each log's tail only (the end
 * of a build log is where it failed), DEFAULT_LOG_TAIL_BYTES of it unless
 * asked for more, and by default only the logs of keys this requester trusts.
 */
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { isTrustedSigner } from '../../protocol/index.ts'
import type { TrustPolicy } from '../../protocol/index.ts'
import { blockBudget, fileRootOf, fileSize, readFile } from '../content/read-file.ts'
import type { ReadableBlockstore } from '../content/index.ts'
import type { RecordStore } from '../store/records.ts'
import { LogTooLargeError, NoLogsError, NotAFileError, UnknownJobError } from './errors.ts'
import type { LogView, LogsView } from './types.ts'

export const DEFAULT_LOG_TAIL_BYTES = 256 * 1024
export const LOG_REQUEST_BYTES = 4 * 1024 * 1024
/** most bytes of a log's DAG structure one tail may read: a tail of N bytes needs far less */
const LOG_STRUCTURE_BYTES = 4 * 1024 * 1024
/** how long one log may take to arrive: a trusted worker's is worth waiting for longer */
const TRUSTED_LOG_TIMEOUT_MS = 30_000
const UNTRUSTED_LOG_TIMEOUT_MS = 10_000

export interface ReadLogsComponents {
  records: Pick<RecordStore, 'getJob' | 'attestations'>
  blockstore: ReadableBlockstore
}

export interface ReadLogsOptions extends AbortOptions {
  /** only these workers' logs (did:key), untrusted ones included */
  workers?: string[]
  /** every log, untrusted keys' too */
  all?: boolean
  /** the tail of each log, in bytes */
  tailBytes?: number
  /** the policy that says whose logs are loaded by default; none: only named workers' */
  policy?: TrustPolicy | null
}

interface LogTail {
  text: Uint8Array
  /** the size the log declares */
  size: number
  truncated: boolean
}

/** The last `maxBytes` of a log file; never holds more than that in memory, however the DAG declares its size. */
async function readLogTail (blockstore: ReadableBlockstore, cid: CID, maxBytes: number, options: AbortOptions = {}): Promise<LogTail> {
  const { exporter } = await import('ipfs-unixfs-exporter')
  const entry = await exporter(cid, blockstore, options)
  const root = fileRootOf(entry)
  if (root == null) throw new NotAFileError(`${cid.toString()} is a ${entry.type}, not a log file`)
  const size = fileSize(root)
  const offset = Math.max(0, size - maxBytes)
  const chunks: Uint8Array[] = []
  let held = 0
  // only the blocks of the tail are read, one at a time (read-file.ts: a
  // malformed or shared-structure DAG from any key cannot make this spin)
  const onBlock = blockBudget(LOG_STRUCTURE_BYTES, () => new LogTooLargeError(`the log's DAG structure is over ${LOG_STRUCTURE_BYTES} bytes`))
  for await (const chunk of readFile(blockstore, root, { signal: options.signal, offset, length: maxBytes, onBlock })) {
    const room = maxBytes - held
    if (room <= 0) break
    const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
    chunks.push(part)
    held += part.byteLength
  }
  return { text: Buffer.concat(chunks), size, truncated: offset > 0 || held < size }
}

export async function readLogs (components: ReadLogsComponents, jobId: string, options: ReadLogsOptions = {}): Promise<LogsView> {
  const job = components.records.getJob(jobId)
  if (job == null) throw new UnknownJobError(`no job ${jobId} is known to this node`)
  const workers = options.workers ?? []
  const tailBytes = options.tailBytes ?? DEFAULT_LOG_TAIL_BYTES
  const policy = options.policy ?? null
  const atts = components.records.attestations(job.job.buildId).filter(a => a.claim.log != null && (workers.length === 0 || workers.includes(a.claim.worker)))
  if (atts.length === 0) throw new NoLogsError(workers.length === 0 ? 'no attestation with a log yet' : `no attestation with a log from ${workers.join(', ')}`)
  const isTrusted = (signer: Uint8Array): boolean => policy != null && isTrustedSigner(policy, signer)
  // trusted keys' logs first: they are the ones the request budget is for
  const ordered = [...atts].sort((a, b) => Number(isTrusted(b.signer)) - Number(isTrusted(a.signer)))
  let budget = LOG_REQUEST_BYTES
  const logs: LogView[] = []
  for (const a of ordered) {
    const trusted = isTrusted(a.signer)
    const base = { worker: a.claim.worker, trusted, log: a.claim.log ?? undefined, status: a.claim.result.status }
    // untrusted keys' logs are neither fetched nor read unless asked for: by name or with all
    if (!trusted && options.all !== true && workers.length === 0) {
      logs.push({ ...base, skipped: 'untrusted key: not loaded unless asked for (--worker DID or --all)' })
      continue
    }
    if (budget <= 0) {
      logs.push({ ...base, skipped: `over the ${LOG_REQUEST_BYTES} bytes one request reads: ask for this one with --worker DID` })
      continue
    }
    const timeout = AbortSignal.timeout(trusted ? TRUSTED_LOG_TIMEOUT_MS : UNTRUSTED_LOG_TIMEOUT_MS)
    const signal = options.signal == null ? timeout : AbortSignal.any([options.signal, timeout])
    let tail: LogTail
    try {
      tail = await readLogTail(components.blockstore, CID.parse(a.claim.log as string), Math.min(tailBytes, LOG_REQUEST_BYTES, budget), { signal })
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      // one log that cannot be had (no peer holds it, a malformed DAG) does not fail the others
      logs.push({ ...base, skipped: `could not read this log: ${(err as Error).message}` })
      continue
    }
    budget -= tail.text.byteLength
    logs.push({ ...base, text: Buffer.from(tail.text).toString('utf8'), size: tail.size, shown: tail.text.byteLength, truncated: tail.truncated })
  }
  return { jobId, logs }
}
