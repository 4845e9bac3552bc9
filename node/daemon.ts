/**
 * A daemon, composed: every part is a service started in order and stopped as
 * one (src/lifecycle.ts), each given the narrow components it uses. This file
 * wires; the rules live in protocol/ and the behaviour in src/.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { defaultBootstrapList, isPeerListError } from '../bootstrap/peer-list.ts'
import { Lifecycle } from '../src/lifecycle.ts'
import { createConcurPeer } from '../src/net/peer.ts'
import { needsRelay } from '../src/net/dial-policy.ts'
import type { ConcurPeer } from '../src/net/peer.ts'
import type { ConcurMessage, MessagePeek } from '../src/net/validate.ts'
import { bytesEqual, holdsLiveReplicaLease, isTrustedSigner, publicKeyFromDid } from '../protocol/index.ts'
import type { SignedAttestation } from '../protocol/index.ts'
import { attestationSync } from '../src/net/sync.ts'
import { fairJobOrder, inShards, jobSync } from '../src/net/job-sync.ts'
import { AdvertBook } from '../src/store/advert-book.ts'
import { ClaimBook } from '../src/store/claim-book.ts'
import { SeenIds } from '../src/store/seen-ids.ts'
import { ingest } from '../src/store/ingest.ts'
import { recordStore } from '../src/store/records.ts'
import { commitmentBook } from '../src/store/commitment-book.ts'
import { blockQuota } from '../src/store/block-quota.ts'
import { pastLifetimeCeiling } from '../src/store/limits.ts'
import type { RecordStore } from '../src/store/records.ts'
import { requester } from '../src/requester/requester.ts'
import type { Requester } from '../src/requester/requester.ts'
// the stores only: the importer and exporter load when content is first added or read
import { openStores } from '../src/content/stores.ts'
import type { ExportOptions } from '../src/content/export-directory.ts'
import { checkHomeIsPrivate, rotateApiToken, homePaths, homeLockHolder, loadConfig, loadIdentity, readDaemonInfo, writeDaemonInfo } from './home.ts'
import type { Identity } from './home.ts'
import { startApiServer, Router } from './api/server.ts'
import type { ApiServer } from './api/server.ts'
import { contentRoutes } from './api/routes/content.ts'
import { storeRoutes } from './api/routes/store.ts'
import { nodeRoutes } from './api/routes/node.ts'
import { policyRoutes } from './api/routes/policy.ts'
import { recordRoutes } from './api/routes/records.ts'
import { requestRoutes } from './api/routes/requests.ts'
import { testOnlyRoutes } from './api/routes/test-only.ts'
import { ConfigError, HomeInUseError, PortInUseError } from './errors.ts'
import { EventHub } from './events.ts'
import { dashboardFiles } from './ui/files.ts'
import { DaemonMetrics } from './metrics.ts'
import { metricsRoutes } from './api/routes/metrics.ts'
import { CONCUR_TOPICS } from '../src/net/topics.ts'
import { PolicyStore } from './policy-store.ts'
import type { WorkerService } from './worker-service.ts'

const log = logger('concur:daemon')

export interface DaemonOptions {
  home: string
  listen?: string[]
  bootstrap?: string[]
  api?: string
  /** act as a bootstrap node: circuit-relay server, peer exchange, no records */
  bootstrapNode?: boolean
  /** run the worker role with these CLI flags (node/worker-options.ts) */
  worker?: Record<string, unknown>
  /**
   * serve the test-only routes (POST /v1/gossip/publish-raw), which let the
   * token's holder put unvalidated bytes on gossip; `--enable-test-routes`
   */
  testRoutes?: boolean
  /** dial loopback and private addresses wherever this node listens (`--dial-private`; see src/net/dial-policy.ts) */
  dialPrivate?: boolean
  /** reserve a slot on the bootstrap's relay: 'auto' (default) when the listen addresses say this node is behind NAT (private or all interfaces, none public) */
  relay?: 'auto' | 'on' | 'off'
  /** the shards whose topics this node reads besides the unsharded ones (`--shards`, PROTOCOL.md §6.1); default every shard */
  shards?: number[]
  /** the block store's quota (`--store-max`): over it, unpinned blocks are collected; default the config's limits.blockstoreQuotaBytes */
  storeMaxBytes?: number
}

export interface RunningDaemon {
  identity: Identity
  peer: ConcurPeer
  api: ApiServer
  records: RecordStore
  /** the feed the API serves (GET /v1/events), for the daemon's own terminal */
  events: EventHub
  requester?: Requester
  worker?: WorkerService
  stop (): Promise<void>
}

function wrapListenError (err: unknown, listen: string[]): never {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] }
  const text = [e.message, ...(e.errors ?? []).map(x => x.message)].join(' ')
  if (e.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(text)) {
    throw new PortInUseError(`listen ${listen.join(', ')}`)
  }
  throw err
}

/** an export's transfer (ExportOptions.transfer) through the peer's DAG transfer */
function dagTransferFor (peer: Pick<ConcurPeer, 'dag'>): NonNullable<ExportOptions['transfer']> {
  return async (root, bounds, options) => await peer.dag.fetch(root, { ...bounds, ...options })
}

/**
 * The stores would not open: if another process holds the home's lock, say
 * which daemon it is and what to do (the store's own error is a bare
 * "Database failed to open"); any other failure is passed on as it is.
 */
async function homeInUse (home: string, err: unknown): Promise<unknown> {
  const pid = await homeLockHolder(home)
  if (pid == null) return err
  const info = await readDaemonInfo(home)
  const who = info?.pid === pid ? `pid ${pid}, API http://${info.api}` : `pid ${pid}, still starting: no API yet`
  return new HomeInUseError(`${home} is in use by another concur daemon (${who}): stop it (\`kill ${pid}\`, or Ctrl-C where it runs), or run this one on another home with --home DIR`, pid)
}

export async function startDaemon (opts: DaemonOptions): Promise<RunningDaemon> {
  const { home } = opts
  const full = opts.bootstrapNode !== true
  // never run on keys or a token someone else could have put there
  await checkHomeIsPrivate(home)
  const config = await loadConfig(home)
  const identity = await loadIdentity(home)
  const listen = opts.listen ?? config.listen
  const bootstrap = opts.bootstrap ?? config.bootstrap ?? await defaultBootstrapList().catch((err: unknown) => {
    throw isPeerListError(err) ? new ConfigError(err.message, err.file) : err
  })
  const life = new Lifecycle()
  try {
    // the stores' lock first: a second daemon on this home fails here, before
    // it could replace the running daemon's token
    const stores = await life.run('stores', async () => await openStores(home).catch(async (err: unknown) => { throw await homeInUse(home, err) }), async s => { await s.close() })
    // a fresh token at every start (see rotateApiToken); kept in memory, never re-read
    const token = await rotateApiToken(home)
    const events = new EventHub()
    // libp2p's, gossipsub's and concur's metrics, one registry (GET /debug/metrics/prometheus)
    const metrics = new DaemonMetrics()
    events.listen((e) => { metrics.event(e) })

    // a bootstrap node keeps no records (nothing is ingested): it relays and introduces, nothing more
    // bound by the node's limits, whatever peers send (src/store/limits.ts);
    // attestations of keys this node trusts, and its own, are always kept
    // the trust policy before the records: what it trusts is kept whatever the caps for strangers
    const policy = full ? await life.start('policy', new PolicyStore(home)) : undefined
    /** this node's own key or one its policy trusts, by raw key (the policy's one rule, isTrustedSigner) */
    const trustsSigner = (signer: Uint8Array): boolean => {
      if (bytesEqual(signer, identity.signing.publicKey)) return true
      try {
        return policy != null && isTrustedSigner(policy.current(), signer)
      } catch {
        return false
      }
    }
    const trusts = (att: SignedAttestation): boolean => trustsSigner(att.signer)
    // a did from a verified message: its key is in keys.ts's cache, so this is a lookup
    const trustsDid = (did: string): boolean => {
      try {
        return trustsSigner(publicKeyFromDid(did))
      } catch {
        return false
      }
    }
    const records = recordStore({ limits: config.limits, own: identity.signing.did, trusts })({ datastore: stores.datastore })
    if (full) {
      const loaded = await records.load()
      log('loaded %d jobs and %d attestations (%d skipped, %d dropped under the limits)', loaded.jobs, loaded.attestations, loaded.skipped, loaded.dropped)
      await life.start('records', records)
    }
    // who holds a lease on which job: the worker counts replica slots from it,
    // job catch-up hands its live claims to workers that join late, and gossip
    // IGNOREs a claim that is not its worker's newest
    const claims = new ClaimBook({
      isBuilder: (c) => records.getJob(c.jobId)?.job.builders?.includes(c.worker) === true,
      attested: (jobId, worker) => {
        const job = records.getJob(jobId)
        return job != null && records.attestations(job.job.buildId).some(a => a.claim.jobId === jobId && a.claim.worker === worker)
      }
    })
    // commitments and first reveals in arrival order (PROTOCOL.md §8.3): the
    // verdict's evidence against copiers, and what a worker waits on to reveal
    const commitments = commitmentBook({
      trusts: trustsDid,
      own: identity.signing.did,
      // a worker building the job: its commitment is what the others wait on, so it is kept and relayed whatever the caps
      claimant: (jobId, did) => claims.claimsOf(jobId).some(c => c.worker === did && holdsLiveReplicaLease(c, Date.now()))
    })({ datastore: stores.datastore, records })
    if (full) {
      const loaded = await commitments.load()
      log('loaded %d commitments and %d reveal places', loaded.commitments, loaded.reveals)
    }
    records.addEventListener('job:pruned', ({ detail: { jobId, buildId } }) => {
      claims.forget(jobId)
      commitments.forget(jobId, buildId).catch((err: Error) => { log.error('forgetting commitments of %s failed: %e', jobId, err) })
    })
    // workers' capability adverts (PROTOCOL.md §5.4): the latest of each, trusted workers' kept over strangers'
    const adverts = new AdvertBook({ isTrusted: trustsDid })
    // lapsed leases without an attestation take no slot: forgotten once a minute
    await life.run('claim-sweep', async () => {
      const t = setInterval(() => { claims.sweep(Date.now()) }, 60_000)
      t.unref()
      return t
    }, (t) => { clearInterval(t) })
    const seen = new SeenIds()
    const peer = await life.run('libp2p', async () => {
      try {
        return await createConcurPeer({
          privateKey: identity.peerKey,
          blockstore: stores.blockstore,
          datastore: stores.datastore,
          listen,
          bootstrap,
          relayServer: !full,
          // behind NAT (as far as the listen addresses tell): reachable through the bootstrap's relay
          relayReservation: full && (opts.relay === 'on' || (opts.relay !== 'off' && needsRelay(listen))),
          ...(opts.dialPrivate === true ? { allowDial: { loopback: true, private: true } } : {}),
          doPX: !full,
          metrics: metrics.registry,
          validator: {
            ...(opts.shards != null ? { shards: opts.shards } : {}),
            observe: metrics.gossipOutcome,
            // what this node already holds is IGNOREd, not relayed again: jobs
            // and attestations by id (a bootstrap node, which keeps no records,
            // by the ids it passed on), claims unless newer than the worker's last,
            // equivocation proofs by key and build (one convicts the key; others about it are copies)
            isKnown: (m: ConcurMessage) => m.kind === 'job'
              ? (full ? records.hasJob(m.value.jobId) : seen.has(`job:${m.value.jobId}`))
              : m.kind === 'attestation'
                ? (full ? records.hasAttestation(m.value) : seen.has(`attestation:${m.value.id}`))
                : m.kind === 'equivocation'
                  ? (full ? records.hasEquivocation(m.value.key) : seen.has(`equivocation:${m.value.key}`))
                  : m.kind === 'advert'
                    ? adverts.isStale(m.value, Date.now())
                    : m.kind === 'commitment'
                      ? (full ? commitments.has(m.value) : seen.has(`commitment:${m.value.commitment.jobId}:${m.value.commitment.worker}`))
                      : claims.isStale(m.value),
            // what this node has seen, kept or not, is public (PROTOCOL.md §8.3): an
            // attestation's CID is revealed even when a cap here drops it
            ...(full ? { verified: (m: ConcurMessage) => { commitments.verified(m) } } : {}),
            // the unknown-job and unknown-build rules below, on the peeked fields, before any
            // signature is checked: a flood of junk from fresh keys costs a parse each
            refuseUnread: (p: MessagePeek) => {
              if (p.kind === 'claim' || p.kind === 'commitment') {
                return (full ? records.hasJob(p.jobId) : seen.has(`job:${p.jobId}`)) ? undefined : { code: 'ERR_UNKNOWN_JOB', reason: `no job ${p.jobId} is held here` }
              }
              return (full ? records.hasBuild(p.buildId) : seen.has(`build:${p.buildId}`)) ? undefined : { code: 'ERR_UNKNOWN_BUILD', reason: `no job held here names build ${p.buildId}` }
            },
            // what this node would not keep is not relayed either (src/store/records.ts):
            // claims only on jobs it holds (or, on a bootstrap node, has passed on),
            // attestations only of builds such a job names, jobs under the store's limits
            // (claims on unknown jobs and attestations of unknown builds never get
            // here: refuseUnread IGNOREd them on the same fields, unverified)
            refuse: (m: ConcurMessage) => {
              if (m.kind === 'claim') return undefined
              // the book says whether the sender is charged: a flood of one key's adverts is, a full book is not
              if (m.kind === 'advert') return adverts.refusal(m.value, Date.now())
              if (m.kind === 'commitment') {
                if (full) return commitments.refusal(m.value)
                return seen.has(`job:${m.value.commitment.jobId}`) ? undefined : { code: 'ERR_UNKNOWN_JOB', reason: `no job ${m.value.commitment.jobId} passed on here` }
              }
              if (full) return records.refusal(m)
              // a bootstrap node passes on only what full nodes keep: a relay
              // forwarding what they refuse would be charged for it (peer-budget.ts)
              if (m.kind === 'equivocation' && !seen.has(`build:${m.value.buildId}`)) {
                return { code: 'ERR_UNKNOWN_BUILD', reason: `no job passed on here names build ${m.value.buildId}` }
              }
              if (m.kind === 'job' && pastLifetimeCeiling(m.value.job.expiresAt, Date.now(), config.limits)) {
                return { code: 'ERR_JOB_LIFETIME', reason: `expires at ${m.value.job.expiresAt}, past the lifetime ceiling` }
              }
              return undefined
            }
          }
        })
      } catch (err) {
        wrapListenError(err, listen)
      }
    }, async p => { await p.stop() })

    const router = new Router()
    nodeRoutes(router, { identity: { did: identity.signing.did, peerId: identity.peerId }, peer, events, ...(full ? { store: records } : {}) })
    // the store's quota: `--store-max`, else the config's
    const quotaBytes = opts.storeMaxBytes ?? config.limits.blockstoreQuotaBytes
    let afterFetch = (): void => {}
    contentRoutes(router, { helia: peer.helia, events, transfer: dagTransferFor(peer), afterGet: () => { afterFetch() } })
    recordRoutes(router, { gossip: peer.gossip, records, adverts })
    if (opts.testRoutes === true) {
      testOnlyRoutes(router, { gossip: peer.gossip })
      log('test routes enabled: POST /v1/gossip/publish-raw is served')
    }

    if (!full) {
      // a bootstrap node relays: it remembers what it passed on, to IGNORE copies
      const unsubscribe = peer.gossip.onMessage((m) => {
        if (m.kind === 'claim') claims.record(m.value)
        else if (m.kind === 'advert') adverts.record(m.value)
        else if (m.kind === 'attestation') seen.add(`attestation:${m.value.id}`)
        else if (m.kind === 'equivocation') seen.add(`equivocation:${m.value.key}`)
        else if (m.kind === 'commitment') seen.add(`commitment:${m.value.commitment.jobId}:${m.value.commitment.worker}`)
        else {
          seen.add(`job:${m.value.jobId}`)
          seen.add(`build:${m.value.job.buildId}`)
        }
      })
      await life.run('seen-ids', async () => unsubscribe, (stop) => { stop() })
    }

    let requesterService: Requester | undefined
    let workerSvc: WorkerService | undefined
    if (policy != null) {
      // the feed: what the stores announce, as this node stored it
      records.addEventListener('job:stored', ({ detail: j }) => { events.emit({ type: 'job', jobId: j.jobId, buildId: j.job.buildId, requester: j.job.requester }) })
      records.addEventListener('attestation:stored', ({ detail: a }) => {
        const c = a.claim
        events.emit({ type: 'attestation', id: a.id, buildId: c.buildId, jobId: c.jobId, worker: c.worker, workerPeerId: c.workerPeerId, result: c.result })
      })
      const inbox = await life.start('ingest', ingest()({ gossip: peer.gossip, records, claims, adverts, commitments }))
      // an equivocation this node found in its own store goes out once
      // (PROTOCOL.md §8.2): requesters that saw one of the two envelopes stop
      // counting the key too. One proof per key and build is ever kept, so
      // it is published at most once, and never when a peer's came first
      records.addEventListener('equivocation:stored', ({ detail: { proof, detected } }) => {
        events.emit({ type: 'equivocation', buildId: proof.buildId, jobId: proof.jobId, worker: proof.attestations[0].claim.worker, detected })
        if (!detected) return
        peer.gossip.publish('equivocation', proof.bytes).catch((err: Error) => { log.error('publishing an equivocation proof failed: %e', err) })
      })
      inbox.addEventListener('claim:recorded', ({ detail: { claim: c } }) => { events.emit({ type: 'claim', jobId: c.jobId, worker: c.worker, leaseUntil: c.leaseUntil, seq: c.seq, ...(c.release != null ? { release: c.release } : {}) }) })

      // every peer answers catch-up requests for the attestations it holds;
      // what it is answered it verifies only within its budget (src/net/sync.ts):
      // what it holds is skipped, its trusted keys and its own always verified
      const sync = await life.start('attestation-sync', attestationSync({
        lookup: (buildId) => records.attestations(buildId).map(a => a.bytes),
        ingest: (bytes) => peer.gossip.ingest('attestation', bytes),
        trustedSigners: () => {
          const dids = new Set([identity.signing.did])
          try {
            for (const did of policy.current().trusted.values()) dids.add(did)
          } catch { /* no usable policy yet: only our own key */ }
          return dids
        },
        holds: (buildId, id) => records.attestations(buildId).some(a => a.id === id)
      })({ libp2p: peer.libp2p }))
      // every peer answers job catch-up requests with its open jobs and live claims
      const jobs = await life.start('job-sync', jobSync({
        // fair across requesters, by when this node received them (records keep that order)
        openJobs: (shards) => {
          const now = Date.now()
          const open = records.jobs().filter(j => Date.parse(j.job.expiresAt) > now && inShards(j, shards)).map(j => ({ requester: j.job.requester, bytes: j.bytes }))
          return fairJobOrder(open).map(j => j.bytes)
        },
        liveClaims: (shards) => claims.allLive(Date.now()).filter(c => inShards(records.getJob(c.claim.jobId), shards)).map(c => c.bytes),
        shards: () => peer.gossip.shards(),
        ingest: (kind, bytes) => { peer.gossip.ingest(kind, bytes) }
      })({ libp2p: peer.libp2p }))

      policy.addEventListener('policy:changed', ({ detail: p }) => { events.emit({ type: 'policy:changed', threshold: p?.threshold ?? null, trusted: p?.trusted.size ?? 0 }) })
      const requesterDirs = { bundles: join(home, 'bundles'), disputes: join(home, 'disputes') }
      requesterService = requester({ dirs: requesterDirs })({
        records,
        gossip: peer.gossip,
        datastore: stores.datastore,
        policy,
        blockstore: peer.helia.blockstore,
        pins: peer.helia.pins,
        identity: { signing: identity.signing, peerId: identity.peerId },
        sync,
        connections: peer.libp2p,
        claims: inbox,
        adverts,
        transfer: dagTransferFor(peer),
        commitments
      })
      requesterService.addEventListener('verdict:changed', ({ detail: d }) => { events.emit({ type: 'request:verdict', ...d }) })
      requesterService.addEventListener('release:recorded', ({ detail: d }) => { events.emit({ type: 'request:release', ...d }) })
      requesterService.addEventListener('bundle:written', ({ detail: d }) => { events.emit({ type: 'request:bundle', ...d }) })
      requesterService.addEventListener('bundle:failed', ({ detail: d }) => { events.emit({ type: 'request:bundle-failed', ...d }) })
      requesterService.addEventListener('dispute:diagnosed', ({ detail: d }) => { events.emit({ type: 'request:dispute', ...d }) })
      requesterService.addEventListener('non-reproducible:diagnosed', ({ detail: d }) => { events.emit({ type: 'request:non-reproducible', jobId: d.jobId, ...(d.report != null ? { report: d.report } : {}), ...(d.error != null ? { error: d.error } : {}) }) })
      await life.start('requester', requesterService)
      requestRoutes(router, { requester: requesterService, events, dirs: requesterDirs })
      policyRoutes(router, { policy })

      // fetched blocks do not pile up for ever: over the quota, unpinned ones go (not during a build)
      const quota = await life.start('block-quota', blockQuota({
        quotaBytes,
        busy: () => (workerSvc?.info()?.running.length ?? 0) > 0
      })({ helia: peer.helia, blockstore: stores.blockstore }))
      storeRoutes(router, { helia: peer.helia, blockstore: stores.blockstore, quotaBytes })
      // a fetch for someone else (`concur get`) is another time the store grows
      afterFetch = () => { void quota.check().catch((err: Error) => { log.error('quota check failed: %e', err) }) }

      if (opts.worker != null) {
        // loaded only for workers: the sandbox code is not needed otherwise
        const { workerService } = await import('./worker-service.ts')
        const { workerRoutes } = await import('./api/routes/worker.ts')
        workerSvc = await life.start('worker', workerService(opts.worker)({
          identity,
          config,
          helia: peer.helia,
          gossip: peer.gossip,
          records,
          datastore: stores.datastore,
          claims,
          commitments,
          jobSync: jobs,
          libp2p: peer.libp2p,
          transfer: dagTransferFor(peer),
          onEvent: (e) => {
            events.emit({ ...e, worker: identity.signing.did })
            // a build's end is when its inputs may go: check the quota then, not only every 10 minutes
            if (e.type === 'build:attested' || e.type === 'build:abandoned' || e.type === 'build:error') {
              void quota.check().catch((err: Error) => { log.error('quota check failed: %e', err) })
            }
          }
        }))
        workerRoutes(router, { worker: workerSvc })
      }
    }

    metrics.attach({
      libp2p: peer.libp2p,
      pubsub: peer.libp2p.services.pubsub,
      topics: CONCUR_TOPICS,
      gossip: peer.gossip,
      dag: peer.dag,
      ...(full ? { jobsHeld: () => records.jobs().length, store: () => stores.blockstore.stats(), quotaBytes } : {}),
      ...(requesterService != null ? { requests: () => (requesterService as Requester).list(), request: (id: string) => (requesterService as Requester).get(id) } : {}),
      ...(workerSvc != null ? { worker: () => (workerSvc as WorkerService).info() } : {})
    })
    metricsRoutes(router, { registry: metrics.registry })
    const ui = await dashboardFiles()
    const api = await life.run('api', async () => await startApiServer(router, opts.api ?? config.api, { token, home }, ui), async a => { await a.close() })
    await writeDaemonInfo(home, {
      pid: process.pid,
      api: api.address,
      peerId: identity.peerId,
      did: identity.signing.did,
      multiaddrs: peer.libp2p.getMultiaddrs().map(String),
      startedAt: new Date().toISOString(),
      worker: workerSvc != null
    })
    // stopped first (services stop in reverse): no command tries to reach a daemon that is stopping, and daemon.json never outlives it
    await life.run('daemon.json', async () => undefined, () => { rmSync(homePaths(home).daemon, { force: true }) })
    return {
      identity,
      peer,
      api,
      records,
      events,
      ...(requesterService != null ? { requester: requesterService } : {}),
      ...(workerSvc != null ? { worker: workerSvc } : {}),
      stop: async () => { await life.stop() }
    }
  } catch (err) {
    await life.stop()
    throw err
  }
}
