import { CID } from 'multiformats/cid'
import { isAbsolute } from 'node:path'
import { CONCUR_TOPICS } from '../../src/net/topics.ts'
import type { MessageKind } from '../../src/net/topics.ts'
import { HttpError } from './server.ts'
import { pin } from '../../src/store/pin.ts'
import type { DaemonContext } from '../daemon.ts'

export function str (body: unknown, key: string, required = true): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null && !required) return undefined
  if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be a non-empty string`)
  return v
}

export function num (body: unknown, key: string, fallback: number): number {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be a non-negative number`)
  return v
}

export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new HttpError(400, 'ERR_BAD_CID', `not a CID: ${text}`)
  }
}

function absPath (p: string, key: string): string {
  if (!isAbsolute(p)) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be an absolute path (the CLI resolves it)`)
  return p
}

export const DEFAULT_FETCH_TIMEOUT_MS = 60_000

/** how the user of `concur get` (the caller of this route) raises each cap */
const GET_LIMIT_REMEDY = {
  bytes: 'raise it with `concur get --max-bytes SIZE` ("maxBytes")',
  entries: 'raise it with `concur get --max-entries N` ("maxEntries")',
  'directory-bytes': 'raise it with `concur get --max-dir-bytes SIZE` ("maxDirectoryBytes")'
} as const

export function baseRoutes (ctx: DaemonContext): void {
  const { router, peer, identity, records, events } = ctx
  const helia = peer.helia

  router.on('GET', '/v1/id', async () => ({
    did: identity.signing.did,
    peerId: identity.peerId,
    multiaddrs: peer.libp2p.getMultiaddrs().map(String)
  }))

  router.on('GET', '/v1/peers', async () => ({
    peers: peer.libp2p.getConnections().map(c => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction })),
    subscribers: {
      jobs: peer.gossip.subscribers('job').map(String),
      attestations: peer.gossip.subscribers('attestation').map(String)
    },
    discovered: peer.discovery.known()
  }))

  router.on('GET', '/v1/stats', async () => ({ gossip: peer.gossip.stats(), memory: process.memoryUsage() }))

  // every route this daemon serves, the ones added after this line included
  // (like kubo's `ipfs commands`); behind the token like every other route
  router.on('GET', '/v1/routes', async () => ({ routes: router.table() }))

  router.on('GET', '/v1/events', async (req) => {
    const after = Number(req.query.get('after') ?? '0')
    const wait = Math.min(Number(req.query.get('wait') ?? '0'), 30_000)
    const ac = new AbortController()
    req.raw.on('close', () => { ac.abort() })
    return { last: events.last, events: await events.wait(Number.isFinite(after) ? after : 0, Number.isFinite(wait) ? wait : 0, ac.signal) }
  })

  router.on('POST', '/v1/content/add', async (req) => {
    const path = absPath(str(req.body, 'path') as string, 'path')
    // through helia's blockstore, so peers that already want these blocks hear of them
    const { addDirectory } = await import('../../src/content/add-directory.ts')
    const result = await addDirectory(helia.blockstore, path, { signal: AbortSignal.timeout(30 * 60_000) })
    await pin(helia.pins, result.cid)
    events.emit({ type: 'content:add', cid: result.cid.toString(), bytes: result.bytes })
    return { cid: result.cid.toString(), bytes: result.bytes, files: result.files }
  })

  router.on('POST', '/v1/content/get', async (req) => {
    const cid = parseCid(str(req.body, 'cid') as string)
    const out = absPath(str(req.body, 'out') as string, 'out')
    // loaded on first use, like the exporter it brings
    const { DEFAULT_FETCH_LIMITS, exportToDirectory } = await import('../../src/content/export-directory.ts')
    // a DAG from the network can name far more than it weighs: every cap has a default
    const maxBytes = num(req.body, 'maxBytes', DEFAULT_FETCH_LIMITS.maxBytes)
    const maxEntries = num(req.body, 'maxEntries', DEFAULT_FETCH_LIMITS.maxEntries)
    const maxDirectoryBytes = num(req.body, 'maxDirectoryBytes', DEFAULT_FETCH_LIMITS.maxDirectoryBytes)
    const timeoutMs = num(req.body, 'timeoutMs', DEFAULT_FETCH_TIMEOUT_MS)
    const overwrite = (req.body as { overwrite?: unknown }).overwrite === true
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      // helia's blockstore fetches missing blocks over bitswap and checks each
      // block's hash against its CID before it is stored or returned
      // Not pinned: a pin walks every link of the DAG again, per visit, with
      // none of the export's caps (a symlink node's ignored links to one huge
      // shared node kept a daemon busy for minutes). The blocks read stay in
      // the store; `concur add` pins what this node publishes.
      const result = await exportToDirectory(helia.blockstore, cid, out, { signal, maxBytes, maxEntries, maxDirectoryBytes, overwrite, remedy: GET_LIMIT_REMEDY })
      return { cid: cid.toString(), out, ...(typeof result === 'object' && result != null ? result : {}) }
    } catch (err) {
      if (signal.aborted) {
        throw new HttpError(504, 'ERR_FETCH_TIMEOUT', `no peer delivered ${cid.toString()} within ${timeoutMs} ms (is a peer holding it connected?)`)
      }
      const e = err as Error & { code?: string }
      if (e.code === 'ERR_CONTENT_TOO_LARGE') throw new HttpError(413, e.code, e.message)
      if (e.code === 'ERR_TARGET_NOT_EMPTY') throw new HttpError(409, e.code, e.message)
      if (typeof e.code === 'string' && e.code.startsWith('ERR_')) throw new HttpError(400, e.code, e.message)
      throw err
    }
  })

  router.on('GET', '/v1/pins', async () => {
    const pins: string[] = []
    for await (const p of helia.pins.ls()) pins.push(p.cid.toString())
    return { pins }
  })

  router.on('POST', '/v1/gossip/publish', async (req) => {
    const kind = str(req.body, 'kind') as MessageKind
    if (!['job', 'attestation', 'claim'].includes(kind)) throw new HttpError(400, 'ERR_BAD_REQUEST', '"kind" must be job, attestation or claim')
    const envelope = (req.body as { envelope?: unknown }).envelope
    if (typeof envelope !== 'object' || envelope == null) throw new HttpError(400, 'ERR_BAD_REQUEST', '"envelope" must be a DSSE envelope object')
    const bytes = new TextEncoder().encode(JSON.stringify(envelope))
    try {
      return await peer.gossip.publish(kind, bytes)
    } catch (err) {
      throw new HttpError(400, 'ERR_INVALID_MESSAGE', (err as Error).message)
    }
  })

  router.on('GET', '/v1/jobs', async () => ({
    jobs: records.jobs().map(j => ({ jobId: j.jobId, buildId: j.job.buildId, requester: j.job.requester, createdAt: j.job.createdAt, expiresAt: j.job.expiresAt, replicas: j.job.replicas }))
  }))

  router.on('GET', '/v1/jobs/:id', async (req) => {
    const job = records.getJob(req.params.id ?? '')
    if (job == null) throw new HttpError(404, 'ERR_UNKNOWN_JOB', `no job ${req.params.id ?? ''} is known to this node`)
    return { jobId: job.jobId, job: job.job, envelope: job.envelope, attestations: records.attestations(job.job.buildId).map(a => ({ id: a.id, claim: a.claim })) }
  })

  router.on('GET', '/v1/attestations', async (req) => {
    const buildId = req.query.get('buildId') ?? undefined
    return { attestations: records.attestations(buildId).map(a => ({ id: a.id, claim: a.claim, envelope: a.envelope })) }
  })
}

/**
 * Routes only a daemon started with --enable-test-routes serves, never by
 * default: they let a caller do what no honest node does.
 */
export function testRoutes (ctx: DaemonContext): void {
  const { router, peer } = ctx
  // Raw bytes onto a concur topic, bypassing our own validation: this is how
  // tests and the adversary harness play a misbehaving peer.
  router.on('POST', '/v1/gossip/publish-raw', async (req) => {
    const topic = str(req.body, 'topic') as string
    if (!(CONCUR_TOPICS as readonly string[]).includes(topic)) throw new HttpError(400, 'ERR_BAD_REQUEST', `unknown topic ${topic}`)
    const data = Buffer.from(str(req.body, 'data') as string, 'base64')
    return await peer.gossip.publishRaw(topic, data)
  })
}
