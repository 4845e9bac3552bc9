import { mkdir, stat } from 'node:fs/promises'
import { join, isAbsolute } from 'node:path'
import { CID } from 'multiformats/cid'
import { createJobAnnouncement, validateBuildDefinition, isProtocolError, isTrustedSigner } from '../protocol/index.ts'
import type { BuildDefinition, ResourceAsk, TrustPolicy } from '../protocol/index.ts'
import { requester } from '../src/requester/requester.ts'
import { pin } from '../src/store/pin.ts'
import { blockBudget, fileRootOf, fileSize, readFile } from '../src/content/read-file.ts'
import { terminalSafe } from '../src/text/terminal-safe.ts'
import { HttpError } from './api/server.ts'
import { str, num } from './api/routes.ts'
import type { DaemonContext } from './daemon.ts'
import { policyLoader, policyInput, readPolicyFile } from './policy-store.ts'

/** Fixed default so that the same sources and command give the same buildId. */
export const DEFAULT_SOURCE_DATE_EPOCH = '315532800' // 1980-01-01T00:00:00Z: the earliest date zip can store

export const DEFAULT_RESOURCES: ResourceAsk = {
  memoryBytes: 512 * 1024 * 1024,
  cpus: 1,
  diskBytes: 256 * 1024 * 1024,
  wallSeconds: 600,
  processes: 256
}

/**
 * Logs are read for a person, and an attestation's log is whatever its signer
 * stored: a sybil can attest every job with a log of many MiB. So a request
 * reads at most LOG_REQUEST_BYTES in all (memory per request is bounded
 * whatever the number of attestations), each log's tail only (the end of a
 * build log is where it failed), DEFAULT_LOG_TAIL_BYTES of it unless asked
 * for more, and by default only the logs of keys this requester trusts.
 */
export const DEFAULT_LOG_TAIL_BYTES = 256 * 1024
export const LOG_REQUEST_BYTES = 4 * 1024 * 1024

export function hostPlatform (): string {
  return `${process.platform}-${process.arch}`
}

interface LogTail {
  text: Buffer
  /** the size the log declares */
  size: number
  truncated: boolean
}

/** most bytes of a log's DAG structure one tail may read: a tail of N bytes needs far less */
const LOG_STRUCTURE_BYTES = 4 * 1024 * 1024

/** The last `maxBytes` of a log file; never holds more than that in memory, however the DAG declares its size. */
async function readLogTail (blockstore: DaemonContext['peer']['helia']['blockstore'], cid: CID, maxBytes: number, signal: AbortSignal): Promise<LogTail> {
  const { exporter } = await import('ipfs-unixfs-exporter')
  const entry = await exporter(cid, blockstore, { signal })
  const root = fileRootOf(entry)
  if (root == null) throw new HttpError(400, 'ERR_NOT_A_FILE', `${cid.toString()} is a ${entry.type}, not a log file`)
  const size = fileSize(root)
  const offset = Math.max(0, size - maxBytes)
  const chunks: Uint8Array[] = []
  let held = 0
  // only the blocks of the tail are read, one at a time (read-file.ts: a
  // malformed or shared-structure DAG from any key cannot make this spin)
  const onBlock = blockBudget(LOG_STRUCTURE_BYTES, () => new HttpError(413, 'ERR_CONTENT_TOO_LARGE', `the log's DAG structure is over ${LOG_STRUCTURE_BYTES} bytes`))
  for await (const chunk of readFile(blockstore, root, { signal, offset, length: maxBytes, onBlock })) {
    const room = maxBytes - held
    if (room <= 0) break
    const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
    chunks.push(part)
    held += part.byteLength
  }
  return { text: Buffer.concat(chunks), size, truncated: offset > 0 || held < size }
}

export async function requesterExtension (ctx: DaemonContext): Promise<void> {
  const { router, peer, records, identity, events, home } = ctx
  const helia = peer.helia
  const load = policyLoader(home)
  let current: TrustPolicy | null = null
  let policyError = 'no trust policy yet'
  const refresh = async (): Promise<TrustPolicy | null> => {
    try {
      current = await load()
      policyError = ''
    } catch (err) {
      current = null
      policyError = (err as Error).message
    }
    return current
  }
  await refresh()
  const refresher = setInterval(() => { void refresh() }, 1000)
  refresher.unref()

  const bundles = join(home, 'bundles')
  const disputes = join(home, 'disputes')

  const svc = requester({
    policy: () => {
      if (current == null) throw new Error(policyError)
      return current
    },
    onEvent: (e) => { events.emit({ ...e, type: `request:${e.type}` }) },
    onAccepted: async (job, record, verdict) => {
      const artifact = CID.parse(verdict.artifact as string)
      // fetch (from the workers that built it) and keep the whole artifact DAG
      await pin(helia.pins, artifact, { signal: AbortSignal.timeout(10 * 60_000) })
      await mkdir(bundles, { recursive: true })
      const counted = new Set(verdict.counted)
      const attestations = records.attestations(record.buildId)
        .filter(a => a.claim.result.status === 'success' && a.claim.result.artifact === verdict.artifact && counted.has(a.claim.worker))
      const out = join(bundles, `${job.jobId}.car`)
      // loaded on first use: an idle daemon does not carry the CAR and diff code
      const { writeBundle } = await import('../src/requester/bundle/index.ts')
      await writeBundle(helia.blockstore, { job, attestations, artifact, policy: policyInput(await readPolicyFile(home)) }, out, { signal: AbortSignal.timeout(10 * 60_000) })
      return { bundle: out }
    },
    onDisputed: async (job, record, verdict) => {
      const [a, b] = [...verdict.candidates].sort((x, y) => y.trusted.length - x.trusted.length)
      if (a == null || b == null) throw new Error('a dispute needs two artifacts')
      const dir = join(disputes, job.jobId)
      await mkdir(dir, { recursive: true })
      const { diagnoseDispute } = await import('../src/requester/diff/index.ts')
      const report = await diagnoseDispute(helia.blockstore, CID.parse(a.artifact), CID.parse(b.artifact), dir, { signal: AbortSignal.timeout(10 * 60_000) })
      return { report: join(dir, 'report.txt'), summary: summarize(report) }
    }
  })({ gossip: peer.gossip, records, datastore: ctx.stores.datastore })
  // catch up on attestations published while this node was down or not yet
  // connected: at start, on every new connection, and every few seconds while
  // a job is still open
  const open = (): string[] => [...new Set(svc.list().filter(r => r.status === 'pending' || r.status === 'provisional' || r.status === 'accepted').filter(r => Date.parse(r.expiresAt) > Date.now() - 60_000).map(r => r.buildId))]
  const catchUp = (): void => { void ctx.sync.pull(open()).catch(() => {}) }
  const syncTimer = setInterval(catchUp, 5000)
  syncTimer.unref()
  const onConnect = (): void => { setTimeout(catchUp, 500) }
  peer.libp2p.addEventListener('peer:connect', onConnect)
  ctx.onStop(async () => {
    clearInterval(refresher)
    clearInterval(syncTimer)
    peer.libp2p.removeEventListener('peer:connect', onConnect)
    await svc.stop()
  })
  await svc.start()
  catchUp()

  router.on('POST', '/v1/jobs', async (req) => {
    const body = req.body as Record<string, unknown>
    if (await refresh() == null) throw new HttpError(412, 'ERR_NO_POLICY', policyError)
    const sourcePath = str(body, 'source') as string
    if (!isAbsolute(sourcePath)) throw new HttpError(400, 'ERR_BAD_REQUEST', '"source" must be an absolute path')
    if (!(await stat(sourcePath).catch(() => null))?.isDirectory()) throw new HttpError(400, 'ERR_BAD_REQUEST', `not a directory: ${sourcePath}`)
    const { addDirectory } = await import('../src/content/add-directory.ts')
    const added = await addDirectory(helia.blockstore, sourcePath, { signal: AbortSignal.timeout(30 * 60_000) })
    await pin(helia.pins, added.cid)
    const envText = typeof body.environment === 'string' ? body.environment : 'host'
    const platform = typeof body.platform === 'string' ? body.platform : hostPlatform()
    let definition: BuildDefinition
    try {
      definition = validateBuildDefinition({
        version: 1,
        source: added.cid.toString(),
        environment: envText === 'host' ? { kind: 'host', platform } : { kind: 'rootfs', rootfs: envText, platform },
        command: body.command,
        env: { SOURCE_DATE_EPOCH: DEFAULT_SOURCE_DATE_EPOCH, ...(body.env as Record<string, string> | undefined ?? {}) },
        output: body.output
      })
    } catch (err) {
      if (isProtocolError(err)) throw new HttpError(400, err.code, err.message)
      throw err
    }
    const resources: ResourceAsk = { ...DEFAULT_RESOURCES, ...(body.resources as Partial<ResourceAsk> | undefined ?? {}) }
    const ttl = num(body, 'ttlSeconds', 3600)
    const now = Date.now()
    let job
    try {
      job = createJobAnnouncement({
        definition,
        requester: identity.signing.did,
        requesterPeerId: identity.peerId,
        replicas: num(body, 'replicas', 3),
        resources,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + ttl * 1000).toISOString()
      }, identity.signing)
    } catch (err) {
      if (isProtocolError(err)) throw new HttpError(400, err.code, err.message)
      throw err
    }
    const record = await svc.submit(job, { reuse: body.reuse !== false })
    return { jobId: job.jobId, buildId: job.job.buildId, source: added.cid.toString(), record, threshold: current?.threshold }
  })

  router.on('GET', '/v1/requests', async () => ({ requests: svc.list() }))

  router.on('GET', '/v1/requests/:id', async (req) => {
    const id = req.params.id ?? ''
    const record = svc.get(id)
    if (record == null) throw new HttpError(404, 'ERR_UNKNOWN_JOB', `this node submitted no job ${id}`)
    let verdict
    try { verdict = svc.verdict(id) } catch { verdict = undefined }
    const attestations = records.attestations(record.buildId).map(a => ({
      worker: a.claim.worker,
      trusted: current != null && isTrustedSigner(current, a.signer),
      jobId: a.claim.jobId,
      result: a.claim.result,
      log: a.claim.log,
      sandboxTier: a.claim.sandboxTier,
      finishedAt: a.claim.finishedAt
    }))
    return { record, verdict: verdict == null ? null : { ...verdict, equivocators: verdict.equivocators.map(e => ({ worker: e.worker })) }, attestations, threshold: current?.threshold ?? null }
  })

  router.on('GET', '/v1/requests/:id/logs', async (req) => {
    const id = req.params.id ?? ''
    const job = records.getJob(id)
    if (job == null) throw new HttpError(404, 'ERR_UNKNOWN_JOB', `no job ${id} is known to this node`)
    const workers = req.query.getAll('worker')
    const all = req.query.get('all') === '1' || req.query.get('all') === 'true'
    const asked = req.query.get('bytes')
    const tailBytes = asked == null ? DEFAULT_LOG_TAIL_BYTES : Number(asked)
    if (!Number.isSafeInteger(tailBytes) || tailBytes <= 0) throw new HttpError(400, 'ERR_BAD_REQUEST', '"bytes" must be a positive whole number')
    const atts = records.attestations(job.job.buildId).filter(a => a.claim.log != null && (workers.length === 0 || workers.includes(a.claim.worker)))
    if (atts.length === 0) throw new HttpError(404, 'ERR_NO_LOGS', workers.length === 0 ? 'no attestation with a log yet' : `no attestation with a log from ${workers.join(', ')}`)
    const isTrusted = (signer: Uint8Array): boolean => current != null && isTrustedSigner(current, signer)
    // trusted keys' logs first: they are the ones the request budget is for
    const ordered = [...atts].sort((a, b) => Number(isTrusted(b.signer)) - Number(isTrusted(a.signer)))
    let budget = LOG_REQUEST_BYTES
    const logs = []
    for (const a of ordered) {
      const trusted = isTrusted(a.signer)
      const base = { worker: a.claim.worker, trusted, log: a.claim.log, status: a.claim.result.status }
      // untrusted keys' logs are neither fetched nor read unless asked for: by name or with all
      if (!trusted && !all && workers.length === 0) {
        logs.push({ ...base, skipped: 'untrusted key: not loaded unless asked for (--worker DID or --all)' })
        continue
      }
      if (budget <= 0) {
        logs.push({ ...base, skipped: `over the ${LOG_REQUEST_BYTES} bytes one request reads: ask for this one with --worker DID` })
        continue
      }
      let tail: LogTail
      try {
        tail = await readLogTail(helia.blockstore, CID.parse(a.claim.log as string), Math.min(tailBytes, LOG_REQUEST_BYTES, budget), AbortSignal.timeout(trusted ? 30_000 : 10_000))
      } catch (err) {
        // one log that cannot be had (no peer holds it, a malformed DAG) does not fail the others
        logs.push({ ...base, skipped: `could not read this log: ${(err as Error).message}` })
        continue
      }
      budget -= tail.text.byteLength
      logs.push({ ...base, text: tail.text.toString('utf8'), size: tail.size, shown: tail.text.byteLength, truncated: tail.truncated })
    }
    return { jobId: id, logs }
  })
}

function summarize (report: unknown): string {
  const entries = (report as { entries?: Array<{ path: string, change: string, sizeA?: number, sizeB?: number }> }).entries ?? []
  // paths are names from the artifacts' DAGs: one line each, whatever they hold
  return entries.map(e => `${e.change} ${terminalSafe(e.path, { singleLine: true })} (${e.sizeA ?? '-'} vs ${e.sizeB ?? '-'} bytes)`).join('\n')
}
