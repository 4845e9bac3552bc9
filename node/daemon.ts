import { readFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { logger } from '@libp2p/logger'
import { createConcurPeer } from '../src/net/peer.ts'
import type { ConcurPeer } from '../src/net/peer.ts'
import type { ConcurMessage } from '../src/net/validate.ts'
import { attestationSync } from '../src/net/sync.ts'
import type { AttestationSync } from '../src/net/sync.ts'
import { jobSync } from '../src/net/job-sync.ts'
import type { JobSync } from '../src/net/job-sync.ts'
import { ClaimBook } from '../src/store/claim-book.ts'
import { recordStore } from '../src/store/records.ts'
import type { RecordStore } from '../src/store/records.ts'
// the stores only: the importer and exporter load when content is first added or read
import { openStores } from '../src/content/stores.ts'
import type { Stores } from '../src/content/stores.ts'
import { checkHomeIsPrivate, rotateApiToken, homePaths, loadConfig, loadIdentity, writeDaemonInfo } from './home.ts'
import type { Identity, NodeConfig } from './home.ts'
import { startApiServer, Router } from './api/server.ts'
import type { ApiServer } from './api/server.ts'
import { PortInUseError, ConfigError } from './errors.ts'
import { EventHub } from './events.ts'

const log = logger('concur:daemon')

export interface DaemonOptions {
  home: string
  listen?: string[]
  bootstrap?: string[]
  api?: string
  /** act as a bootstrap node: circuit-relay server, peer exchange, no records */
  bootstrapNode?: boolean
  worker?: boolean
  /**
   * serve the test-only routes (POST /v1/gossip/publish-raw), which let the
   * token's holder put unvalidated bytes on gossip; `--enable-test-routes`
   */
  testRoutes?: boolean
  /** extra routes (worker, requester) are added by the caller */
  extend?: (ctx: DaemonContext) => Promise<void> | void
}

export interface DaemonContext {
  home: string
  config: NodeConfig
  identity: Identity
  stores: Stores
  peer: ConcurPeer
  records: RecordStore
  router: Router
  events: EventHub
  sync: AttestationSync
  jobSync: JobSync
  claims: ClaimBook
  onStop: (fn: () => Promise<void> | void) => void
}

export interface RunningDaemon extends DaemonContext {
  api: ApiServer
  stop (): Promise<void>
}

/** The default peer list shipped in bootstrap/peers.json (see its format there). */
export async function defaultBootstrapList (): Promise<string[]> {
  const file = fileURLToPath(new URL('../bootstrap/peers.json', import.meta.url))
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { peers?: unknown }
    return Array.isArray(parsed.peers) ? parsed.peers.filter((p): p is string => typeof p === 'string') : []
  } catch (err) {
    throw new ConfigError(`cannot read the default peer list ${file}: ${(err as Error).message}`, file)
  }
}

function wrapListenError (err: unknown, listen: string[]): never {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] }
  const text = [e.message, ...(e.errors ?? []).map(x => x.message)].join(' ')
  if (e.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(text)) {
    throw new PortInUseError(`listen ${listen.join(', ')}`)
  }
  throw err
}

export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  // never run on keys or a token someone else could have put there
  await checkHomeIsPrivate(opts.home)
  const config = await loadConfig(opts.home)
  const identity = await loadIdentity(opts.home)
  const listen = opts.listen ?? config.listen
  const bootstrap = opts.bootstrap ?? config.bootstrap ?? await defaultBootstrapList()
  // the stores' lock first: a second daemon on this home fails here, before
  // it could replace the running daemon's token
  const stores = await openStores(opts.home)
  // a fresh token at every start (see rotateApiToken); kept in memory, never re-read
  let token: string
  try {
    token = await rotateApiToken(opts.home)
  } catch (err) {
    await stores.close()
    throw err
  }
  const stopFns: Array<() => Promise<void> | void> = []
  const events = new EventHub()
  let records: RecordStore | undefined
  let peer: ConcurPeer | undefined
  try {
    if (opts.bootstrapNode !== true) {
      records = recordStore()({ datastore: stores.datastore })
      const loaded = await records.load()
      log('loaded %d jobs and %d attestations (%d skipped)', loaded.jobs, loaded.attestations, loaded.skipped)
    }
    const held = records
    try {
      peer = await createConcurPeer({
        privateKey: identity.peerKey,
        blockstore: stores.blockstore,
        datastore: stores.datastore,
        listen,
        bootstrap,
        relayServer: opts.bootstrapNode === true,
        doPX: opts.bootstrapNode === true,
        validator: {
          isKnown: (m: ConcurMessage) =>
            held == null
              ? false
              : m.kind === 'job'
                ? held.hasJob(m.value.jobId)
                : m.kind === 'attestation' ? held.hasAttestation(m.value) : false
        }
      })
    } catch (err) {
      wrapListenError(err, listen)
    }
  } catch (err) {
    await stores.close()
    throw err
  }
  const livePeer = peer
  const liveRecords = records ?? recordStore()({ datastore: { put: async (k) => k, query: async function * () {} } })

  // who holds a lease on which job: the worker counts replica slots from it,
  // job catch-up hands its live claims to workers that join late
  const claims = new ClaimBook()

  livePeer.gossip.onMessage((m, from) => {
    // recorded before any other listener runs on: a worker deciding on a job
    // right after catch-up must already see the leases that came with it
    if (m.kind === 'claim') claims.record(m.value)
    void (async () => {
      try {
        if (m.kind === 'job') {
          if (await liveRecords.putJob(m.value)) events.emit({ type: 'job', jobId: m.value.jobId, buildId: m.value.job.buildId, requester: m.value.job.requester, from: from?.toString() ?? 'self' })
        } else if (m.kind === 'attestation') {
          if (await liveRecords.putAttestation(m.value)) {
            const c = m.value.claim
            events.emit({ type: 'attestation', id: m.value.id, buildId: c.buildId, jobId: c.jobId, worker: c.worker, result: c.result, from: from?.toString() ?? 'self' })
          }
        } else {
          const c = m.value.claim
          events.emit({ type: 'claim', jobId: c.jobId, worker: c.worker, leaseUntil: c.leaseUntil, seq: c.seq })
        }
      } catch (err) {
        log.error('storing a %s failed: %e', m.kind, err)
      }
    })()
  })

  // every peer answers catch-up requests for the attestations it holds
  const sync = attestationSync({
    lookup: (buildId) => liveRecords.attestations(buildId).map(a => a.bytes),
    ingest: (bytes) => { livePeer.gossip.ingest('attestation', bytes) }
  })({ libp2p: livePeer.libp2p })
  if (opts.bootstrapNode !== true) await sync.start()
  stopFns.push(async () => { await sync.stop() })

  // every peer answers job catch-up requests with its open jobs and live claims
  const jobs = jobSync({
    openJobs: () => {
      const now = Date.now()
      return liveRecords.jobs().filter(j => Date.parse(j.job.expiresAt) > now)
        .sort((a, b) => Date.parse(b.job.createdAt) - Date.parse(a.job.createdAt)).map(j => j.bytes)
    },
    liveClaims: () => claims.allLive(Date.now()).map(c => c.bytes),
    ingest: (kind, bytes) => { livePeer.gossip.ingest(kind, bytes) }
  })({ libp2p: livePeer.libp2p })
  if (opts.bootstrapNode !== true) await jobs.start()
  stopFns.push(async () => { await jobs.stop() })

  const router = new Router()
  const ctx: DaemonContext = {
    home: opts.home,
    config,
    identity,
    stores,
    peer: livePeer,
    records: liveRecords,
    router,
    events,
    sync,
    jobSync: jobs,
    claims,
    onStop: (fn) => { stopFns.push(fn) }
  }
  const { baseRoutes, testRoutes } = await import('./api/routes.ts')
  baseRoutes(ctx)
  if (opts.testRoutes === true) {
    testRoutes(ctx)
    log('test routes enabled: POST /v1/gossip/publish-raw is served')
  }
  try {
    if (opts.bootstrapNode !== true) {
      const { requesterExtension } = await import('./requester-hook.ts')
      await requesterExtension(ctx)
    }
    await opts.extend?.(ctx)
  } catch (err) {
    for (const fn of stopFns.reverse()) await Promise.resolve(fn()).catch(() => {})
    await livePeer.stop()
    await stores.close()
    throw err
  }

  let api: ApiServer
  try {
    api = await startApiServer(router, opts.api ?? config.api, { token, home: opts.home })
  } catch (err) {
    await livePeer.stop()
    await stores.close()
    throw err
  }

  const multiaddrs = livePeer.libp2p.getMultiaddrs().map(String)
  await writeDaemonInfo(opts.home, {
    pid: process.pid,
    api: api.address,
    peerId: identity.peerId,
    did: identity.signing.did,
    multiaddrs,
    startedAt: new Date().toISOString(),
    worker: opts.worker === true
  })

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      for (const fn of stopFns.reverse()) {
        try { await fn() } catch (err) { log.error('stop hook failed: %e', err) }
      }
      await api.close()
      await livePeer.stop()
      await stores.close()
      rmSync(homePaths(opts.home).daemon, { force: true })
    })()
    await stopping
  }
  return { ...ctx, api, stop }
}
