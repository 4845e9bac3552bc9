/**
 * The daemon's log (node/render/event-log.ts): every event of its feed gives
 * one line, JSON (`--log-format json`) or text, with a time, a level and a
 * `concur:<area>` namespace. Most fields come from peers: a reason holding a
 * newline and a forged log line, terminal escapes, U+2028 and a bidi override
 * still gives exactly one line, with no raw control character, in both
 * formats. And a real daemon started with `--log-format json` writes such
 * lines to stderr for what the CLI does (`concur add`, `concur policy set`).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FeedEvent } from '../../node/api/types.ts'
import { LOG_LEVELS, eventRecord, formatJson, formatText, shouldLog } from '../../node/render/event-log.ts'
import type { LogRecord } from '../../node/render/event-log.ts'
import { eventLogger, logOptions } from '../../node/daemon-log.ts'
import { UsageError } from '../../node/errors.ts'
import { cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'

const TIME = '2026-12-01T10:00:00.000Z'
/** a peer's reason: a forged log line after a newline, a screen clear, a line separator, a bidi override, a C1 CSI */
const HOSTILE = 'disk full\n2026-12-01T10:00:01.000Z ERROR concur:requester forged\r\x1b[2J\x1b[H\u2028accepted \u202egnp.exe\u202c \u009b1m\u2029'
/** what must never reach a terminal or a log raw: C0 (newline included), DEL, C1, bidi, line and paragraph separators */
// matching control characters is the point of this pattern
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

/**
 * Every variant of the feed, each string field the hostile text: tsc refuses
 * this table if a type of FeedEvent is missing (a new event needs a line).
 */
const SAMPLES: { [K in FeedEvent['type']]: (s: string) => Array<Extract<FeedEvent, { type: K }>> } = {
  job: s => [{ type: 'job', jobId: s, buildId: s, requester: s }],
  attestation: s => [
    { type: 'attestation', id: s, jobId: s, buildId: s, worker: s, workerPeerId: s, result: { status: 'success', artifact: s, exitCode: 0 } },
    { type: 'attestation', id: s, jobId: s, buildId: s, worker: s, workerPeerId: s, result: { status: 'failure', exitCode: 1, reason: s } }
  ],
  claim: s => [
    { type: 'claim', jobId: s, worker: s, leaseUntil: s, seq: 3 },
    { type: 'claim', jobId: s, worker: s, leaseUntil: s, seq: 4, release: { kind: 'declined', reason: s } }
  ],
  equivocation: s => [{ type: 'equivocation', buildId: s, jobId: s, worker: s, detected: true }, { type: 'equivocation', buildId: s, jobId: s, worker: s, detected: false }],
  'request:release': s => [{ type: 'request:release', jobId: s, worker: s, kind: 'gave-up', reason: s, at: s, trusted: true }],
  'request:verdict': s => ['accepted', 'provisional', 'pending', 'disputed', 'failed', 'expired'].map(status => ({ type: 'request:verdict' as const, jobId: s, status, previous: 'pending', artifact: s, counted: [s, s], threshold: 2 })),
  'request:bundle': s => [{ type: 'request:bundle', jobId: s, path: s }],
  'request:bundle-failed': s => [{ type: 'request:bundle-failed', jobId: s, error: s }],
  'request:dispute': s => [{ type: 'request:dispute', jobId: s, report: s }, { type: 'request:dispute', jobId: s, error: s }, { type: 'request:dispute', jobId: s }],
  'request:non-reproducible': s => [{ type: 'request:non-reproducible', jobId: s, report: s }, { type: 'request:non-reproducible', jobId: s, error: s }],
  'policy:changed': () => [{ type: 'policy:changed', threshold: 2, trusted: 3 }, { type: 'policy:changed', threshold: null, trusted: 0 }],
  'content:add': s => [{ type: 'content:add', cid: s, bytes: 1234 }],
  'content:progress': s => [
    { type: 'content:progress', id: s, cid: s, blocks: 1, bytes: 1024, declaredBytes: 4096, elapsedMs: 500, done: false },
    { type: 'content:progress', id: s, cid: s, blocks: 4, bytes: 4096, elapsedMs: 900, done: true }
  ],
  'job:declined': s => [{ type: 'job:declined', jobId: s, reason: s, worker: s }],
  'job:claimed': s => [{ type: 'job:claimed', jobId: s, buildId: s, requester: s, worker: s }],
  'job:inputs-unavailable': s => [{ type: 'job:inputs-unavailable', jobId: s, attempt: 2, retryInMs: 60_000, reason: s, worker: s }],
  'build:committed': s => [{ type: 'build:committed', jobId: s, buildId: s, artifact: s, worker: s, waitMs: 2000 }],
  'job:spot-check': s => [{ type: 'job:spot-check', jobId: s, requester: s, worker: s }],
  'build:progress': s => [
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'fetching', what: 'source', cid: s } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'fetching', what: 'rootfs', cid: s, progress: { blocks: 1, bytes: 10, elapsedMs: 100, done: false } } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'fetching', what: 'rootfs', cid: s, progress: { blocks: 2, bytes: 20, elapsedMs: 200, done: true } } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'environment', cid: s, cached: true, ms: 5 } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'building' } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'importing' } },
    { type: 'build:progress', jobId: s, worker: s, progress: { stage: 'attesting', result: { status: 'failure', exitCode: null, reason: s } } }
  ],
  'build:attested': s => [
    { type: 'build:attested', jobId: s, buildId: s, requester: s, startedAt: s, finishedAt: s, sandboxTier: 'namespaces', parallelism: 1, worker: s, result: { status: 'success', artifact: s, exitCode: 0 } },
    { type: 'build:attested', jobId: s, buildId: s, requester: s, startedAt: s, finishedAt: s, sandboxTier: 'namespaces', parallelism: 1, worker: s, result: { status: 'failure', exitCode: 2, reason: s } }
  ],
  'build:abandoned': s => [{ type: 'build:abandoned', jobId: s, reason: s, worker: s }],
  'build:error': s => [{ type: 'build:error', jobId: s, message: s, worker: s }],
  'job:released': s => [{ type: 'job:released', jobId: s, release: { kind: 'inputs-unavailable', reason: s }, worker: s }],
  'job:release-suppressed': s => [{ type: 'job:release-suppressed', jobId: s, release: { kind: 'declined', reason: s }, worker: s }]
}

const every = (s: string): FeedEvent[] => Object.values(SAMPLES).flatMap(make => (make as (s: string) => FeedEvent[])(s))

const recordOf = (e: FeedEvent): LogRecord => {
  const r = eventRecord(e, TIME)
  if (r == null) throw new Error(`no log record for ${e.type}`)
  return r
}

describe('the daemon\'s log renders every feed event as one line', () => {
  it('every FeedEvent variant gives a record with time, level, a concur: namespace and a message, as one parsable JSON line', () => {
    const events = every('bafyclean')
    expect(new Set(events.map(e => e.type)).size).toBe(Object.keys(SAMPLES).length)
    for (const e of events) {
      const line = formatJson(recordOf(e))
      expect(line).not.toContain('\n')
      const parsed = JSON.parse(line) as LogRecord
      expect(parsed).toMatchObject({ time: TIME, event: e.type })
      expect(LOG_LEVELS).toContain(parsed.level)
      expect(parsed.ns).toMatch(/^concur:(gossip|requester|worker|content|policy)$/)
      expect(parsed.msg.length).toBeGreaterThan(0)
    }
  })

  it('a peer\'s newline, escapes, U+2028 and bidi override give exactly one line with no raw control character, in JSON and in text', () => {
    for (const e of every(HOSTILE)) {
      const r = recordOf(e)
      const json = formatJson(r)
      const text = formatText(r)
      for (const line of [json, text]) {
        expect(line, `${e.type}: ${line}`).not.toMatch(RAW)
        expect(line.split(/\r\n|[\n\r\u2028\u2029\u0085]/)).toHaveLength(1)
      }
      expect(text.startsWith(`${TIME} ${r.level.toUpperCase().padEnd(5)} ${r.ns} `)).toBe(true)
      // the forged line's words are there, visibly on this line: never at the start of one
      if (text.includes('forged')) expect(text).toMatch(/disk full( |\\x0a)2026-12-01T10:00:01\.000Z ERROR concur:requester forged/)
      // and the JSON keeps the peer's fields whole: the same string once parsed
      const parsed = JSON.parse(json) as Record<string, unknown>
      for (const k of ['reason', 'error', 'jobId', 'worker']) if (k in parsed) expect(parsed[k]).toBe(HOSTILE)
    }
  })

  it('levels: accepted info, disputed, failed and expired warn, build errors error, declines info, a fetch\'s chunks debug and its end info', () => {
    const level = (e: FeedEvent): string => recordOf(e).level
    const verdict = (status: string): FeedEvent => ({ type: 'request:verdict', jobId: 'j', status, previous: 'pending', counted: [], threshold: 1 })
    expect(level(verdict('accepted'))).toBe('info')
    for (const s of ['disputed', 'failed', 'expired']) expect(level(verdict(s))).toBe('warn')
    expect(level({ type: 'build:error', jobId: 'j', message: 'm', worker: 'w' })).toBe('error')
    expect(level({ type: 'job:declined', jobId: 'j', reason: 'r', worker: 'w' })).toBe('info')
    const [source, chunk, end] = SAMPLES['build:progress']('x')
    expect([source, chunk, end].map(e => level(e as FeedEvent))).toEqual(['info', 'debug', 'info'])
    const [running, done] = SAMPLES['content:progress']('x')
    expect([running, done].map(e => level(e as FeedEvent))).toEqual(['debug', 'info'])
    expect(recordOf(verdict('accepted')).ns).toBe('concur:requester')
  })

  it('a text line reads as time, level, namespace and message', () => {
    const e: FeedEvent = { type: 'request:verdict', jobId: 'bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5y3rl5lvtuzaq7y', status: 'accepted', previous: 'pending', artifact: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', counted: ['a', 'b', 'c'], threshold: 3 }
    expect(formatText(recordOf(e))).toBe('2026-12-01T10:00:00.000Z INFO  concur:requester job bafyreib2rxk3ryb…uzaq7y: accepted bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi (3/3)')
  })

  it('a line is written at or above the chosen level, and a debug line when DEBUG names its namespace', () => {
    const debugLine = { level: 'debug', ns: 'concur:worker' } as const
    expect(shouldLog({ level: 'warn', ns: 'concur:worker' }, 'info')).toBe(true)
    expect(shouldLog({ level: 'info', ns: 'concur:worker' }, 'warn')).toBe(false)
    expect(shouldLog(debugLine, 'info')).toBe(false)
    expect(shouldLog(debugLine, 'debug')).toBe(true)
    expect(shouldLog(debugLine, 'info', ns => ns === 'concur:worker')).toBe(true)
    expect(shouldLog({ level: 'debug', ns: 'concur:gossip' }, 'info', ns => ns === 'concur:worker')).toBe(false)
  })

  it('--log-format and --log-level take their defaults from CONCUR_LOG_FORMAT and CONCUR_LOG_LEVEL, and refuse other values naming the allowed ones', () => {
    expect(logOptions({}, {})).toEqual({ format: 'text', level: 'info' })
    expect(logOptions({}, { CONCUR_LOG_FORMAT: 'json', CONCUR_LOG_LEVEL: 'warn' })).toEqual({ format: 'json', level: 'warn' })
    expect(logOptions({ 'log-format': 'text', 'log-level': 'debug' }, { CONCUR_LOG_FORMAT: 'json', CONCUR_LOG_LEVEL: 'warn' })).toEqual({ format: 'text', level: 'debug' })
    expect(() => logOptions({ 'log-format': 'xml' }, {})).toThrow(UsageError)
    expect(() => logOptions({ 'log-format': 'xml' }, {})).toThrow('--log-format takes text, json, not "xml"')
    expect(() => logOptions({}, { CONCUR_LOG_LEVEL: 'loud' })).toThrow('$CONCUR_LOG_LEVEL takes debug, info, warn, error, not "loud"')
  })

  it('the daemon\'s listener leaves out what the worker\'s terminal shows, and debug lines below the level', () => {
    const lines: string[] = []
    const listen = eventLogger({ format: 'json', level: 'info' }, l => { lines.push(l) }, e => e.type === 'job:claimed')
    for (const e of every('x')) listen(e, TIME)
    const types = lines.map(l => (JSON.parse(l) as LogRecord).event)
    expect(types).not.toContain('job:claimed')
    expect(types).toContain('build:error')
    expect(lines.map(l => (JSON.parse(l) as LogRecord).level)).not.toContain('debug')
  })
})

describe('a daemon started with --log-format json', () => {
  afterAll(async () => { await cleanupAll() })

  it('writes one JSON line to stderr for a `concur add` and a `concur policy set`, and nothing else there', async () => {
    const home = await tempDir()
    const daemon = startConcur(['daemon', '--log-format', 'json'], { home })
    await daemon.ready
    const records = (): LogRecord[] => daemon.stderr().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as LogRecord)

    const src = join(await tempDir(), 'src')
    await mkdir(src)
    await writeFile(join(src, 'a.txt'), 'hello\n')
    const added = await runConcur(['add', src], { home })
    expect(added.code, added.stderr).toBe(0)
    const cid = (added.json() as { cid: string }).cid
    const add = await waitFor(async () => records().find(r => r.event === 'content:add'), 'the content:add line', 30_000)
    expect(add).toMatchObject({ level: 'info', ns: 'concur:content', cid, bytes: 6 })
    expect(add.msg).toBe(`added ${cid} (6 B)`)

    const id = await runConcur(['id'], { home })
    const did = (id.json() as { did: string }).did
    expect((await runConcur(['trust', 'add', did], { home })).code).toBe(0)
    const set = await runConcur(['policy', 'set', '--threshold', '1'], { home })
    expect(set.code, set.stderr).toBe(0)
    const policy = await waitFor(async () => records().find(r => r.event === 'policy:changed'), 'the policy:changed line', 30_000)
    expect(policy).toMatchObject({ level: 'info', ns: 'concur:policy', threshold: 1, trusted: 1, msg: 'trust policy: threshold 1, 1 trusted key' })
    expect(Date.parse(policy.time)).toBeGreaterThan(Date.parse(add.time) - 1)
    // every line of stderr is such a record (records() would have thrown on any other)
    expect(records().length).toBeGreaterThanOrEqual(2)
    await daemon.kill()
  })

  it('refuses --log-format xml with a usage error naming text and json', async () => {
    const r = await runConcur(['daemon', '--log-format', 'xml'], { home: await tempDir(), json: false })
    expect(r.code).toBe(64)
    expect(r.stderr).toContain('--log-format takes text, json, not "xml"')
  })
})
