/**
 * Bench row: what hostile messages cost a node once its store limits are in
 * place (src/store/limits.ts). A requester daemon holding one job of its own
 * receives batches of 1,000 valid messages from fresh keys (jobs of fresh
 * requesters, attestations on its held build, attestations of builds nobody
 * announced, claims on invented jobs) from one adversary daemon; after each
 * batch: its RSS, what its store holds, and its datastore's size on disk.
 * With the limits lowered so a short run reaches them (200 jobs), growth per
 * batch should fall to ~0 once the caps are hit.
 */
import { execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createClaim, createJobAnnouncement, generateSigningKey } from '../../protocol/index.ts'
import type { SignedJob } from '../../protocol/index.ts'
import { api, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import type { StatsResponse } from '../../node/api/types.ts'
import { ATTESTATIONS_TOPIC, CLAIMS_TOPIC, JOBS_TOPIC, startAdversary, submitJob } from '../adversary/adversary.ts'
import type { Node } from '../helpers/network.ts'

export interface FloodBatch { messages: number, rssMB: number, held: number, datastoreKB: number }
export interface FloodResult { baseline: FloodBatch, batches: FloodBatch[] }

const rssMB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(execFileSync('cat', [`/proc/${pid}/status`]).toString())?.[1] ?? 0) / 1024
const duKB = (path: string): number => Number(execFileSync('du', ['-sk', path]).toString().split('\t')[0])

function freshJob (i: number, requesterPeerId: string): SignedJob {
  const key = generateSigningKey()
  const t = Date.now()
  return createJobAnnouncement({
    definition: { version: 1, source: 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354', environment: { kind: 'host', platform: 'linux/amd64' }, command: ['echo', `flood-${i}-${t}`], env: { SOURCE_DATE_EPOCH: '1700000000' }, output: 'out' },
    requester: key.did,
    requesterPeerId,
    replicas: 1,
    resources: { memoryBytes: 2 ** 28, cpus: 1, diskBytes: 2 ** 27, wallSeconds: 60, processes: 64 },
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + 600_000).toISOString()
  }, key)
}

export async function floodBench (opts: { batches: number, perBatch: number, log: (s: string) => void }): Promise<FloodResult> {
  const bootHome = await tempDir('concur-bench-flood-boot-')
  const boot = startConcur(['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], { home: bootHome })
  const bootAddr = ((await boot.ready) as { multiaddrs: string[] }).multiaddrs[0] as string
  const home = await tempDir('concur-bench-flood-')
  await runConcur(['init'], { home })
  const configPath = join(home, 'config.json')
  const config = JSON.parse(await readFile(configPath, 'utf8')) as { limits: Record<string, number> }
  config.limits = { ...config.limits, maxJobs: 200 }
  await writeFile(configPath, JSON.stringify(config, null, 2))
  const proc = startConcur(['daemon', '--bootstrap', bootAddr], { home })
  const r = await proc.ready
  const requester: Node = { proc, did: String(r.did), peerId: String(r.peerId), api: String(r.api), home }
  const adv = await startAdversary(bootAddr)
  await waitFor(async () => (await api<{ subscribers: { attestations: string[] } }>(requester.api, 'GET', '/v1/peers')).subscribers.attestations.includes(adv.node.peerId), 'the adversary meshed with the requester')
  // a policy (of a key that never builds here): submitting needs one
  await runConcur(['trust', 'add', generateSigningKey().did], { home })
  await runConcur(['policy', 'set', '--threshold', '1'], { home })
  const { jobId } = await submitJob(requester, { label: 'bench-flood', replicas: 1, script: 'true' })
  const held = await adv.heardJob(jobId)

  const stats = async (): Promise<StatsResponse> => await api<StatsResponse>(requester.api, 'GET', '/v1/stats')
  const handled = (s: StatsResponse): number => s.gossip.accepted + s.gossip.ignored + s.gossip.rejected
  const sample = async (messages: number): Promise<FloodBatch> => {
    const s = await stats()
    return { messages, rssMB: rssMB(proc.child.pid as number), held: (s.store?.jobs ?? 0) + (s.store?.attestations ?? 0), datastoreKB: duKB(join(home, 'datastore')) }
  }
  const baseline = await sample(0)
  const batches: FloodBatch[] = []
  let sent = 0
  for (let b = 0; b < opts.batches; b++) {
    const quarter = Math.floor(opts.perBatch / 4)
    const msgs: Array<{ topic: typeof JOBS_TOPIC | typeof ATTESTATIONS_TOPIC | typeof CLAIMS_TOPIC, bytes: Uint8Array }> = []
    for (let i = 0; i < quarter; i++) {
      const j = freshJob(sent + i, adv.node.peerId)
      msgs.push({ topic: JOBS_TOPIC, bytes: j.bytes })
      msgs.push({ topic: ATTESTATIONS_TOPIC, bytes: adv.attest(held, { key: generateSigningKey() }).bytes })
      msgs.push({ topic: ATTESTATIONS_TOPIC, bytes: adv.attest(freshJob(-1 - sent - i, adv.node.peerId), { key: generateSigningKey() }).bytes })
      const k = generateSigningKey()
      const t = Date.now()
      msgs.push({ topic: CLAIMS_TOPIC, bytes: createClaim({ jobId: freshJob(-100_000 - sent - i, adv.node.peerId).jobId, buildId: held.job.buildId, worker: k.did, workerPeerId: adv.node.peerId, issuedAt: new Date(t).toISOString(), leaseUntil: new Date(t + 30_000).toISOString(), seq: 1 }, k).bytes })
    }
    // let the HTTP client see sockets closed while signing held the loop
    for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
    const before = handled(await stats())
    for (const m of msgs) await adv.publishRaw(m.topic, m.bytes)
    sent += msgs.length
    await waitFor(async () => handled(await stats()) - before >= msgs.length, `the requester handling batch ${b + 1}`, 180_000)
    const s = await sample(sent)
    batches.push(s)
    opts.log(`flood batch ${b + 1}: ${sent} messages, RSS ${s.rssMB.toFixed(0)} MB, ${s.held} records held, datastore ${s.datastoreKB} KB`)
  }
  await boot.kill()
  return { baseline, batches }
}
