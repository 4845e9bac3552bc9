/**
 * Text from the network is shown, never obeyed. A sybil (a key nobody trusts)
 * attests a job with a failure reason and a build log full of terminal
 * escapes: a screen clear and cursor home followed by a fake verdict, an OSC
 * title, a C1 CSI and a bidi override. The requester's `concur status` and
 * `concur logs` (human output, as a person at a terminal reads it) must print
 * none of those bytes raw and show them as visible escapes instead.
 *
 * And a sybil's log is not loaded unasked: by default `logs` reads only the
 * logs of trusted workers (a sybil can attest every job with a log of many
 * MiB), so the sybil's log block is not even fetched until `--worker DID`
 * or `--all` asks for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { generateSigningKey } from '../../protocol/index.ts'
import { openStores } from '../../src/content/index.ts'
import { api, cleanupAll, runConcur, waitFor } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { allAlive, setPolicy, startAdversary, submitJob, viewUntil } from './adversary.ts'
import type { Adversary } from './adversary.ts'

const REASON = '\u001b[2J\u001b[H accepted \u202egnp.exe\u202c \u009b1m'
const LOG = 'line one\n\u001b[2J\u001b[H\u001b]0;pwned\u0007verdict ACCEPTED\n\u202edrowssap\u202c and \u009b31m C1\nlast line\n'
/** what must never reach a terminal raw: ESC, BEL, C1 controls, bidi overrides/isolates */
// matching control characters is the point of this pattern
// eslint-disable-next-line no-control-regex
const RAW_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

describe('untrusted text reaching a requester\'s terminal', () => {
  let net: Devnet
  let adv: Adversary
  let logCid: CID
  let jobId: string

  beforeAll(async () => {
    const bytes = new TextEncoder().encode(LOG)
    logCid = CID.createV1(raw.code, await sha256.digest(bytes))
    // the requester's log at debug: the records it hears on gossip, the sybil's attestation among them
    net = await startNetwork({ workers: [], requesterEnv: { CONCUR_LOG_LEVEL: 'debug' } })
    // trusted: a key with no worker behind it; the sybil's attestation is all there is
    await setPolicy(net.requester, [generateSigningKey().did], 1)
    // the log block exists only in the sybil's blockstore: the requester must fetch it to read it
    adv = await startAdversary(net.bootAddr, async (home) => {
      const stores = await openStores(home)
      try { await stores.blockstore.put(logCid, bytes) } finally { await stores.close() }
    })
    jobId = (await submitJob(net.requester, { label: `terminal-${process.pid}`, script: 'true', replicas: 1 })).jobId
    const job = await adv.heardJob(jobId)
    const att = adv.attest(job, { key: adv.key, failure: REASON, log: logCid.toString() })
    await api(adv.node.api, 'POST', '/v1/gossip/publish', { kind: 'attestation', envelope: att.envelope })
    await viewUntil(net.requester, jobId, v => v.attestations.length === 1, 'the sybil\'s attestation at the requester')
  })

  afterAll(async () => {
    if (net != null) expect(await allAlive([net.requester])).toBe(true)
    await cleanupAll()
  })

  // asked of the running daemon: its own store only, never fetched
  const hasBlock = async (cid: CID): Promise<boolean> => (await api<{ has: boolean }>(net.requester.api, 'GET', `/v1/store/blocks/${cid.toString()}`)).has

  it('`concur status` shows the sybil\'s failure reason escaped, with no raw control byte', async () => {
    const r = await runConcur(['status', jobId], { home: net.requester.home, json: false })
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain('\\x1b[2J\\x1b[H accepted \\u202egnp.exe\\u202c \\x9b1m')
    expect(r.stdout).not.toMatch(RAW_CONTROLS)
  })

  it('the requester daemon\'s log shows the sybil\'s reason escaped on the attestation\'s one line, with no raw control byte', async () => {
    const line = await waitFor(async () => net.requester.proc.stderr().split('\n').find(l => l.includes('attestation by')), 'the attestation\'s log line', 30_000)
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z DEBUG concur:gossip job /)
    expect(line).toContain('failure (exit 1): \\x1b[2J\\x1b[H accepted \\u202egnp.exe\\u202c \\x9b1m')
    expect(net.requester.proc.stderr()).not.toMatch(RAW_CONTROLS)
  })

  it('by default `concur logs` neither fetches nor prints a sybil\'s log, and says how to ask for it', async () => {
    const r = await runConcur(['logs', jobId], { home: net.requester.home, json: false })
    expect(r.stdout).not.toContain('line one')
    expect(r.stdout).not.toMatch(RAW_CONTROLS)
    expect(r.stdout + r.stderr).toContain(adv.key.did)
    expect(r.stdout + r.stderr).toMatch(/--worker|--all/)
    const viaApi = await api<{ logs: Array<{ worker: string, text?: string }> }>(net.requester.api, 'GET', `/v1/requests/${jobId}/logs`)
    expect(viaApi.logs.filter(l => l.text != null)).toEqual([])
    expect(await hasBlock(logCid)).toBe(false)
  })

  it('`concur logs --all` loads it and prints it escaped: the lines kept, no raw control byte', async () => {
    const r = await runConcur(['logs', jobId, '--all'], { home: net.requester.home, json: false })
    expect(r.code).toBe(0)
    // every line behind the gutter: a log cannot print a line that looks like another worker's header
    expect(r.stdout).toContain('│ line one\n│ \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07verdict ACCEPTED\n│ \\u202edrowssap\\u202c and \\x9b31m C1\n│ last line')
    expect(r.stdout).not.toMatch(RAW_CONTROLS)
    expect(await hasBlock(logCid)).toBe(true)
    // and --worker DID names it explicitly
    const one = await runConcur(['logs', jobId, '--worker', adv.key.did], { home: net.requester.home, json: false })
    expect(one.stdout).toContain('line one')
    expect(one.stdout).not.toMatch(RAW_CONTROLS)
    // only the tail asked for is read and returned, and it says so
    const size = new TextEncoder().encode(LOG).byteLength
    const tail = await api<{ logs: Array<{ text?: string, size?: number, shown?: number, truncated?: boolean }> }>(net.requester.api, 'GET', `/v1/requests/${jobId}/logs?all=1&bytes=16`)
    expect(tail.logs).toEqual([expect.objectContaining({ text: LOG.slice(-16), size, shown: 16, truncated: true })])
  })

  it('--json output is JSON with C1 controls and bidi overrides \\u-escaped too (JSON.stringify leaves them raw)', async () => {
    for (const args of [['status', jobId], ['logs', jobId, '--all']]) {
      const r = await runConcur(args, { home: net.requester.home })
      // status exits 6 for a job still pending (no trusted attestation here)
      expect([0, 6], r.stderr).toContain(r.code)
      expect(r.stdout).not.toMatch(RAW_CONTROLS)
      // the same values once parsed
      expect(JSON.stringify(r.json())).toMatch(/\u009b|\\u009b/)
    }
  })
})
