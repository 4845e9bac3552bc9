import { mkdir, stat } from 'node:fs/promises'
import { join, isAbsolute } from 'node:path'
import { CID } from 'multiformats/cid'
import { createJobAnnouncement, validateBuildDefinition, isProtocolError } from '../protocol/index.ts'
import type { BuildDefinition, ResourceAsk, TrustPolicy } from '../protocol/index.ts'
import { requester } from '../src/requester/requester.ts'
import { pin } from '../src/store/pin.ts'
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

const MAX_LOG_BYTES = 4 * 1024 * 1024

export function hostPlatform (): string {
  return `${process.platform}-${process.arch}`
}

async function catBytes (blockstore: DaemonContext['peer']['helia']['blockstore'], cid: CID, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  const { exporter } = await import('ipfs-unixfs-exporter')
  const entry = await exporter(cid, blockstore, { signal })
  if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') throw new HttpError(400, 'ERR_NOT_A_FILE', `${cid.toString()} is a ${entry.type}, not a log file`)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of entry.content({ signal })) {
    size += (chunk as Uint8Array).byteLength
    if (size > maxBytes) throw new HttpError(413, 'ERR_CONTENT_TOO_LARGE', `log over ${maxBytes} bytes`)
    chunks.push(chunk as Uint8Array)
  }
  return Buffer.concat(chunks)
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
      trusted: current?.trusted.has(Buffer.from(a.signer).toString('hex')) ?? false,
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
    const worker = req.query.get('worker')
    const atts = records.attestations(job.job.buildId).filter(a => a.claim.log != null && (worker == null || a.claim.worker === worker))
    if (atts.length === 0) throw new HttpError(404, 'ERR_NO_LOGS', worker == null ? 'no attestation with a log yet' : `no attestation with a log from ${worker}`)
    const logs = []
    for (const a of atts) {
      const bytes = await catBytes(helia.blockstore, CID.parse(a.claim.log as string), MAX_LOG_BYTES, AbortSignal.timeout(30_000))
      logs.push({ worker: a.claim.worker, log: a.claim.log, status: a.claim.result.status, text: bytes.toString('utf8') })
    }
    return { jobId: id, logs }
  })
}

function summarize (report: unknown): string {
  const entries = (report as { entries?: Array<{ path: string, change: string, sizeA?: number, sizeB?: number }> }).entries ?? []
  return entries.map(e => `${e.change} ${e.path} (${e.sizeA ?? '-'} vs ${e.sizeB ?? '-'} bytes)`).join('\n')
}
