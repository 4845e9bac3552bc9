/**
 * Attestation catch-up (`/concur/sync/attestations/1.0.0`, PROTOCOL.md §13)
 * as a push channel: a hostile peer answers every pull of the requester with
 * 3,000 attestations of the requester's open build, each from a fresh key.
 * Each costs the requester a full decode and signature check (~2-5 ms for a
 * key never seen) if it takes them in: before the catch-up budget, one such
 * peer held a requester at ~100% CPU, its API silent for seconds.
 *
 * The requester runs in this process (startDaemon, what `concur daemon`
 * runs), so the test can count the envelopes its catch-up hands to
 * verification (a spy on `gossip.ingest`); the bootstrap node and the honest
 * worker are processes, and so is the hostile peer (catch-up-junk-answerer.ts:
 * the daemon's libp2p stack with a sync handler that answers junk), so that
 * its own cost is not the requester's. The requester's API latency is sampled
 * all along the flood and reported, not asserted.
 */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { createJobAnnouncement, peekAttestation, useEd25519Verify, validateBuildDefinition } from '../../protocol/index.ts'
import { addDirectory } from '../../src/content/add-directory.ts'
import { installFastVerify } from '../../src/net/fast-verify.ts'
import { DEFAULT_CATCH_UP_BUDGET } from '../../src/net/sync.ts'
import { DEFAULT_RESOURCES, DEFAULT_SOURCE_DATE_EPOCH, hostPlatform } from '../../src/requester/defaults.ts'
import { startDaemon } from '../../node/daemon.ts'
import type { RunningDaemon } from '../../node/daemon.ts'
import { initHome, loadIdentity, readApiToken } from '../../node/home.ts'
import { writePolicyFile } from '../../node/policy-store.ts'
import type { RequestView } from '../../node/api/types.ts'
import { cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'

const JUNK = 3000
/** hostile answers the requester must sit through (one per pull: every 5 s while the job is open) */
const ANSWERS = 3
const ANSWERER = fileURLToPath(new URL('./catch-up-junk-answerer.ts', import.meta.url))

const iso = (ms: number): string => new Date(ms).toISOString()
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

describe('a peer answering attestation catch-up with 3,000 fresh-key attestations', () => {
  let daemon: RunningDaemon | undefined
  let hostile: ChildProcess | undefined

  afterAll(async () => {
    hostile?.kill('SIGKILL')
    await daemon?.stop().catch(() => {})
    useEd25519Verify(null)
    await cleanupAll()
  })

  it('gets at most the untrusted allowance verified and stored; the honest job is accepted and the API keeps answering', async () => {
    // the honest side: a bootstrap node and one trusted worker, as processes
    const bootstrap = startConcur(['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { home: await tempDir() })
    const bootAddr = ((await bootstrap.ready) as { multiaddrs: string[] }).multiaddrs[0]!
    const worker = startConcur(['daemon', '--worker', '--bootstrap', bootAddr], { home: await tempDir() })
    const workerReady = await worker.ready
    const workerDid = String(workerReady.did)
    const workerPeerId = String(workerReady.peerId)

    // the requester's home, trust policy and job, made before its daemon starts
    const home = await tempDir()
    await initHome(home)
    await writePolicyFile(home, { version: 1, trusted: [workerDid], threshold: 1, required: [], minTier: null })
    const identity = await loadIdentity(home)
    const src = await tempDir('concur-catch-up-src-')
    await writeFile(join(src, 'label'), `catch-up flood ${process.pid}\n`)
    const { cid: source } = await addDirectory(new MemoryBlockstore(), src)
    const now = Date.now()
    const job = createJobAnnouncement({
      definition: validateBuildDefinition({
        version: 1,
        source: source.toString(),
        environment: { kind: 'host', platform: hostPlatform() },
        // long enough that the flood starts while the job is still open
        command: ['sh', '-c', 'sleep 6; mkdir out; cp label out/'],
        env: { SOURCE_DATE_EPOCH: DEFAULT_SOURCE_DATE_EPOCH },
        output: 'out'
      }),
      requester: identity.signing.did,
      requesterPeerId: identity.peerId,
      replicas: 1,
      resources: DEFAULT_RESOURCES,
      createdAt: iso(now),
      expiresAt: iso(now + 600_000)
    }, identity.signing)
    const buildId = job.job.buildId

    // the hostile peer signs its junk meanwhile, in its own process
    let served = 0
    let written = 0
    const child = spawn(process.execPath, [ANSWERER, Buffer.from(job.bytes).toString('base64'), String(JUNK)], { stdio: ['ignore', 'pipe', 'pipe'] })
    hostile = child
    let errText = ''
    child.stderr.on('data', (c: Buffer) => { errText += c.toString() })
    const hostileAddr = new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString()
        let nl
        while ((nl = out.indexOf('\n')) !== -1) {
          const doc = JSON.parse(out.slice(0, nl)) as { ready?: string, served?: number, written?: number }
          out = out.slice(nl + 1)
          if (doc.ready != null) resolve(doc.ready)
          served = Math.max(served, doc.served ?? 0)
          written = Math.max(written, doc.written ?? 0)
        }
      })
      child.on('exit', (code) => { reject(new Error(`the hostile peer exited with ${code ?? 'a signal'}: ${errText}`)) })
    })

    // the requester, in this process: what `concur daemon` runs
    installFastVerify()
    daemon = await startDaemon({ home, bootstrap: [bootAddr] })
    const requester = daemon
    const token = await readApiToken(home)
    const call = async <T>(path: string): Promise<T> => {
      const res = await fetch(`http://${requester.api.address}${path}`, { headers: { authorization: `Bearer ${token}` } })
      if (!res.ok) throw new Error(`API ${path}: ${res.status}`)
      return await res.json() as T
    }
    await waitFor(async () => requester.peer.gossip.subscribers('job').some(p => p.toString() === workerPeerId), 'the worker on the jobs topic', 30_000)
    const ingest = vi.spyOn(requester.peer.gossip, 'ingest')
    const isJunk = (bytes: Uint8Array): boolean => peekAttestation(bytes).worker !== workerDid
    const junkVerified = (): number => ingest.mock.calls.filter(([kind, bytes]) => kind === 'attestation' && isJunk(bytes)).length

    // the job is submitted as `concur submit` would: its source held (and served) by the requester
    expect((await addDirectory(requester.peer.helia.blockstore, src)).cid.toString()).toBe(source.toString())
    await requester.requester!.submit(job)

    // from the connection on (identify starts a pull), the API is timed, a probe every 100 ms
    const addr = await hostileAddr
    const latencies: number[] = []
    const t0 = Date.now()
    await requester.peer.libp2p.dial(multiaddr(addr))
    let view: RequestView | undefined
    const deadline = t0 + 90_000
    while (served < ANSWERS || view?.record.status !== 'accepted') {
      if (Date.now() > deadline) throw new Error(`timed out: ${served} hostile answers served, job ${view?.record.status ?? '?'}`)
      const t = performance.now()
      view = await call<RequestView>(`/v1/requests/${job.jobId}`)
      latencies.push(performance.now() - t)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const elapsedMs = Date.now() - t0

    const verified = junkVerified()
    const stored = requester.records.attestations(buildId).filter(a => a.claim.worker !== workerDid).length
    const b = DEFAULT_CATCH_UP_BUDGET
    // the most one peer's answers may get verified from strangers: its burst and what refilled, at most a few per build per answer
    const allowance = Math.min(b.untrustedPerPeerBurst + Math.ceil(b.untrustedPerPeerPerMinute * elapsedMs / 60_000), b.untrustedPerBuild * served)
    const workerConnected = requester.peer.libp2p.getConnections().some(c => c.remotePeer.toString() === workerPeerId)
    console.log(`catch-up flood: ${served} hostile answers in ${(elapsedMs / 1000).toFixed(1)} s, ${written} frames written by it;`,
      `the requester verified ${verified} junk attestations (allowance ${allowance}) and stored ${stored};`,
      `API latency over ${latencies.length} probes: median ${median(latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms;`,
      `worker still connected: ${workerConnected}`)

    expect(verified, 'junk attestations handed to signature verification').toBeLessThanOrEqual(allowance)
    expect(stored, 'junk attestations stored').toBeLessThanOrEqual(allowance)
    const trusted = view.attestations.filter(a => a.worker === workerDid)
    expect(trusted.length).toBe(1)
    expect(view.record.artifact).toBe(trusted[0]!.result.status === 'success' ? trusted[0]!.result.artifact : undefined)
  }, 180_000)
})
