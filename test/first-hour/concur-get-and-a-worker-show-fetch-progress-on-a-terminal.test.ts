import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { api, CONCUR_BIN, cleanupAll, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { keystream } from '../content/helpers.ts'
import { StatusLine, fetchProgressLine } from '../../node/render/fetch-progress.ts'
import { workerActivity } from '../../node/render/worker-activity.ts'
import type { EventsResponse, FeedEvent } from '../../node/api/types.ts'

interface Ready { peerId: string, multiaddrs: string[], api: string }
const MiB = 1024 * 1024

/** a stream that says it is a terminal, 100 columns wide, and keeps what is written */
function fakeTty (): NodeJS.WriteStream & { text: () => string } {
  let text = ''
  return { isTTY: true, columns: 100, write: (s: string) => { text += s; return true }, text: () => text } as unknown as NodeJS.WriteStream & { text: () => string }
}

// `concur get` of a large tree and a worker's input fetches showed nothing on
// a terminal until they ended. Now: bytes, rate and ETA on one line rewritten
// in place (on a terminal only: a log gets no partial lines).
describe('fetch progress on a terminal', () => {
  afterAll(async () => { await cleanupAll() })

  it('the line gives bytes of the declared size, rate and ETA while running, and the total and mean rate at the end', () => {
    expect(fetchProgressLine({ blocks: 10, bytes: 10 * MiB, declaredBytes: 100 * MiB, elapsedMs: 2000, done: false }))
      .toBe('10.0 MiB of ~100.0 MiB (10 %), 5.0 MiB/s, ETA 18 s')
    expect(fetchProgressLine({ blocks: 100, bytes: 100 * MiB, declaredBytes: 100 * MiB, elapsedMs: 20_000, done: true }))
      .toBe('100.0 MiB in 20 s (5.0 MiB/s)')
    // past the declared size (a DAG that understated it): no ETA, no percentage
    expect(fetchProgressLine({ blocks: 3, bytes: 3 * MiB, declaredBytes: MiB, elapsedMs: 1000, done: false })).toBe('3.0 MiB, 3.0 MiB/s')
  })

  it('a worker daemon\'s terminal shows each job step on its own line and the fetch on one line rewritten in place; nothing of it off a terminal', () => {
    const tty = fakeTty()
    const lines: string[] = []
    const show = workerActivity(new StatusLine(tty), l => { tty.write(`${l}\n`); lines.push(l) })
    const events: FeedEvent[] = [
      { type: 'job:claimed', jobId: 'j1', buildId: 'b1', requester: 'r', worker: 'w' },
      { type: 'build:progress', jobId: 'j1', progress: { stage: 'fetching', what: 'rootfs', cid: 'bafyroot' }, worker: 'w' },
      { type: 'build:progress', jobId: 'j1', progress: { stage: 'fetching', what: 'rootfs', cid: 'bafyroot', progress: { blocks: 1, bytes: MiB, declaredBytes: 4 * MiB, elapsedMs: 1000, done: false } }, worker: 'w' },
      { type: 'build:progress', jobId: 'j1', progress: { stage: 'fetching', what: 'rootfs', cid: 'bafyroot', progress: { blocks: 4, bytes: 4 * MiB, declaredBytes: 4 * MiB, elapsedMs: 2000, done: true } }, worker: 'w' },
      { type: 'build:progress', jobId: 'j1', progress: { stage: 'building' }, worker: 'w' }
    ]
    for (const e of events) show(e)
    expect(tty.text()).toBe([
      'job j1: claimed\n',
      'job j1: fetching rootfs bafyroot …\n',
      '\r\x1b[Kjob j1: fetching rootfs bafyroot: 1.0 MiB of ~4.0 MiB (25 %), 1.0 MiB/s, ETA 3 s',
      '\r\x1b[Kjob j1: fetching rootfs bafyroot: 4.0 MiB in 2 s (2.0 MiB/s)\n',
      'job j1: building\n'
    ].join(''))
    const log = { ...fakeTty(), isTTY: false }
    const offTty = workerActivity(new StatusLine(log as unknown as NodeJS.WriteStream), () => {})
    for (const e of events) offTty(e)
    expect(log.text()).toBe('')
  })

  it('`concur get` run on a terminal shows the fetch between two daemons as it runs and ends on its total', async () => {
    const a = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], { home: await tempDir() })
    const ra = await a.ready as unknown as Ready
    const homeB = await tempDir()
    const b = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', ra.multiaddrs[0] as string], { home: homeB })
    const rb = await b.ready as unknown as Ready
    await waitFor(async () => (await api<{ peers: Array<{ peerId: string }> }>(rb.api, 'GET', '/v1/peers')).peers.some(p => p.peerId === ra.peerId), 'B connected to A')

    const src = await tempDir()
    await mkdir(join(src, 'd'))
    await writeFile(join(src, 'd', 'big.bin'), keystream('progress')(24 * MiB))
    const added = await api<{ cid: string }>(ra.api, 'POST', '/v1/content/add', { path: src })

    // a real terminal: script(1) runs the CLI on a pseudo-terminal
    const out = join(await tempDir(), 'out')
    const cmd = [process.execPath, CONCUR_BIN, 'get', added.cid, '-o', out, '--home', homeB].map(x => `'${x}'`).join(' ')
    const { stdout } = await promisify(execFile)('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, COLUMNS: '200' }, maxBuffer: 16 * MiB })
    // the status line was drawn (rewritten in place) and ended on the fetch's figures
    expect(stdout).toContain('\r\u001b[Kfetching: ')
    expect(stdout).toMatch(/fetching: 24\.0 MiB in \d+ (s|min)/)
    expect(stdout).toContain(`${added.cid} → ${out}`)

    // the daemon's feed holds the fetch's reports: the first (the root) while it ran, the last with the whole DAG
    const ev = await api<EventsResponse>(rb.api, 'GET', '/v1/events?after=0')
    const progress = ev.events.map(e => e.event).filter((e): e is Extract<FeedEvent, { type: 'content:progress' }> => e.type === 'content:progress')
    expect(progress[0]?.done).toBe(false)
    expect(progress.at(-1)).toMatchObject({ done: true, cid: added.cid })
    expect(progress.at(-1)?.bytes).toBeGreaterThan(24 * MiB)
    expect(progress.at(-1)?.declaredBytes).toBe(progress.at(-1)?.bytes)
    // known from the first report on (the root comes first): an ETA while the bulk is still coming
    expect(progress[0]?.declaredBytes).toBe(progress.at(-1)?.bytes)
  })
})
