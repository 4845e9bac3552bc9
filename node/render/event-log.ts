/**
 * The daemon's log: one record per significant event of its feed (a verdict,
 * a build step, a policy change), with a level and a `concur:<area>`
 * namespace as @libp2p/logger's (`DEBUG=concur:*` names the same areas), and
 * two ways to write it: JSON, one object a line, or text a person reads.
 *
 * Most fields come from peers (reasons, DIDs, CIDs, paths from a DAG) and are
 * hostile: in the text line every one is escaped (oneLine, reasonText), and
 * each formatter escapes the whole line once more as it writes it, so no
 * field can drive the terminal or start a line of its own (a reason holding
 * `\n2026-… ERROR forged` stays on its line). The JSON record keeps the
 * fields whole, escaped by terminalSafeJson: a raw U+2028, C1 control or
 * bidi override, which JSON.stringify leaves alone, becomes a \u escape.
 */
import type { FeedEvent } from '../api/types.ts'
import { terminalSafeJson } from '../../src/text/terminal-safe.ts'
import { oneLine, reasonText, releaseText, short } from './request.ts'
import { fetchProgressLine, formatBytes } from './fetch-progress.ts'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = typeof LOG_FORMATS[number]

/** the areas of the log, as @libp2p/logger's namespaces */
export type LogNamespace = 'concur:gossip' | 'concur:requester' | 'concur:worker' | 'concur:content' | 'concur:policy'

export type LogValue = string | number | boolean | null | string[]

export interface LogRecord {
  /** ISO 8601, when the daemon's feed took the event */
  time: string
  level: LogLevel
  ns: LogNamespace
  /** one line for a person, every peer-supplied part escaped and cut short */
  msg: string
  /** the feed event's type (`request:verdict`, `build:error`, …) */
  event: FeedEvent['type']
  /** the event's own fields, whole (JSON only) */
  [field: string]: LogValue
}

/** whether `level` is at least `min` */
export function atLeast (level: LogLevel, min: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(min)
}

/**
 * Whether a record is written: its level is at least `min`, or it is a debug
 * record of a namespace `debugEnabled` names (`DEBUG=concur:worker`).
 */
export function shouldLog (r: Pick<LogRecord, 'level' | 'ns'>, min: LogLevel, debugEnabled: (ns: string) => boolean = () => false): boolean {
  return atLeast(r.level, min) || (r.level === 'debug' && debugEnabled(r.ns))
}

const job = (id: string): string => `job ${short(oneLine(id))}`
const peer = (did: string): string => short(oneLine(did))

/**
 * The record of one feed event taken at `time`, or undefined for one not worth
 * a line. Records and claims heard on gossip are debug (any peer can make
 * thousands); what this node's requester and worker do is info, warn when
 * a job goes wrong, error when this node failed at something.
 */
export function eventRecord (e: FeedEvent, time: string): LogRecord | undefined {
  const rec = (level: LogLevel, ns: LogNamespace, msg: string, fields: Record<string, LogValue | undefined>): LogRecord => {
    const out: LogRecord = { time, level, ns, msg, event: e.type }
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v
    return out
  }
  switch (e.type) {
    // records heard on gossip (or made here): debug, a flood must not flood the log
    case 'job':
      return rec('debug', 'concur:gossip', `${job(e.jobId)} stored: build ${short(oneLine(e.buildId))} of ${peer(e.requester)}`, { jobId: e.jobId, buildId: e.buildId, requester: e.requester })
    case 'attestation': {
      const r = e.result
      const what = r.status === 'success' ? oneLine(r.artifact) : `failure (exit ${r.exitCode ?? 'none'}): ${reasonText(r.reason)}`
      return rec('debug', 'concur:gossip', `${job(e.jobId)}: attestation by ${peer(e.worker)}: ${what}`, {
        jobId: e.jobId, buildId: e.buildId, id: e.id, worker: e.worker, status: r.status,
        artifact: r.status === 'success' ? r.artifact : undefined,
        exitCode: r.exitCode,
        reason: r.status === 'failure' ? r.reason : undefined
      })
    }
    case 'claim':
      return rec('debug', 'concur:gossip', e.release != null
        ? `${job(e.jobId)}: released by ${peer(e.worker)}: ${releaseText(e.release)}`
        : `${job(e.jobId)}: claimed by ${peer(e.worker)} (seq ${e.seq}, lease until ${oneLine(e.leaseUntil)})`, {
        jobId: e.jobId, worker: e.worker, seq: e.seq, leaseUntil: e.leaseUntil, releaseKind: e.release?.kind, reason: e.release?.reason
      })
    case 'equivocation':
      // a proof is rare and says a key lied: worth a line, whoever sent it (one per key and build)
      return rec('warn', 'concur:gossip', `${job(e.jobId)}: ${peer(e.worker)} equivocated (two artifacts signed for one job): it counts for nothing on build ${short(oneLine(e.buildId))}${e.detected ? ' (found here, proof published)' : ' (proof received)'}`, {
        jobId: e.jobId, buildId: e.buildId, worker: e.worker, detected: e.detected
      })

    // this node's requester
    case 'request:release':
      return rec('info', 'concur:requester', `${job(e.jobId)}: ${peer(e.worker)} (${e.trusted ? 'trusted' : 'untrusted'}) is not building it: ${releaseText(e)}`, {
        jobId: e.jobId, worker: e.worker, trusted: e.trusted, releaseKind: e.kind, reason: e.reason, at: e.at
      })
    case 'request:verdict': {
      const level: LogLevel = e.status === 'disputed' || e.status === 'failed' || e.status === 'expired' ? 'warn' : 'info'
      return rec(level, 'concur:requester', `${job(e.jobId)}: ${oneLine(e.status)}${e.artifact != null ? ` ${oneLine(e.artifact)}` : ''} (${e.counted.length}/${e.threshold})`, {
        jobId: e.jobId, status: e.status, previous: e.previous, artifact: e.artifact, counted: e.counted, threshold: e.threshold
      })
    }
    case 'request:bundle':
      return rec('info', 'concur:requester', `${job(e.jobId)}: bundle written to ${oneLine(e.path)}`, { jobId: e.jobId, path: e.path })
    case 'request:bundle-failed':
      return rec('error', 'concur:requester', `${job(e.jobId)}: bundle not written: ${reasonText(e.error)}`, { jobId: e.jobId, error: e.error })
    case 'request:dispute':
    case 'request:non-reproducible': {
      const what = e.type === 'request:dispute' ? 'disputed' : 'not reproducible'
      if (e.error != null) return rec('error', 'concur:requester', `${job(e.jobId)}: ${what}: diagnosis failed: ${reasonText(e.error)}`, { jobId: e.jobId, error: e.error })
      return rec('warn', 'concur:requester', `${job(e.jobId)}: ${what}${e.report != null ? `: diff in ${oneLine(e.report)}` : ''}`, { jobId: e.jobId, report: e.report })
    }

    case 'policy:changed': {
      const usable = e.threshold != null && e.trusted > 0
      return rec(usable ? 'info' : 'warn', 'concur:policy', `trust policy: ${e.threshold != null ? `threshold ${e.threshold}` : 'no threshold'}, ${e.trusted} trusted key${e.trusted === 1 ? '' : 's'}${usable ? '' : ' (no job can be accepted until both are set)'}`, {
        threshold: e.threshold, trusted: e.trusted
      })
    }

    case 'content:add':
      return rec('info', 'concur:content', `added ${oneLine(e.cid)} (${formatBytes(e.bytes)})`, { cid: e.cid, bytes: e.bytes })
    case 'content:progress':
      // a fetch reports every 250 ms: its end is the line, the rest debug
      return rec(e.done ? 'info' : 'debug', 'concur:content', `${e.done ? 'fetched' : 'fetching'} ${oneLine(e.cid)}: ${fetchProgressLine(e)}`, {
        cid: e.cid, id: e.id, blocks: e.blocks, bytes: e.bytes, declaredBytes: e.declaredBytes, elapsedMs: e.elapsedMs, done: e.done
      })

    // this node's worker
    case 'job:declined':
      return rec('info', 'concur:worker', `${job(e.jobId)}: declined: ${reasonText(e.reason)}`, { jobId: e.jobId, worker: e.worker, reason: e.reason })
    case 'job:claimed':
      return rec('info', 'concur:worker', `${job(e.jobId)}: claimed`, { jobId: e.jobId, buildId: e.buildId, worker: e.worker })
    case 'job:inputs-unavailable':
      return rec('warn', 'concur:worker', `${job(e.jobId)}: inputs did not come (attempt ${e.attempt}, again in ${Math.round(e.retryInMs / 1000)} s): ${reasonText(e.reason)}`, {
        jobId: e.jobId, worker: e.worker, attempt: e.attempt, retryInMs: e.retryInMs, reason: e.reason
      })
    case 'job:spot-check':
      return rec('info', 'concur:worker', `${job(e.jobId)}: spot check of ${peer(e.requester)}`, { jobId: e.jobId, worker: e.worker, requester: e.requester })
    case 'build:progress': {
      const p = e.progress
      const base = { jobId: e.jobId, worker: e.worker, stage: p.stage }
      switch (p.stage) {
        case 'fetching': {
          const what = `${job(e.jobId)}: fetching ${p.what} ${oneLine(p.cid)}`
          const fields = { ...base, what: p.what, cid: p.cid }
          if (p.progress == null) return rec('info', 'concur:worker', what, fields)
          return rec(p.progress.done ? 'info' : 'debug', 'concur:worker', `${what}: ${fetchProgressLine(p.progress)}`, {
            ...fields, blocks: p.progress.blocks, bytes: p.progress.bytes, declaredBytes: p.progress.declaredBytes, elapsedMs: p.progress.elapsedMs, done: p.progress.done
          })
        }
        case 'environment':
          return rec('info', 'concur:worker', `${job(e.jobId)}: environment ${oneLine(p.cid)} ${p.cached ? 'already here' : 'ready'}`, { ...base, cid: p.cid, cached: p.cached, ms: p.ms })
        case 'building':
          return rec('info', 'concur:worker', `${job(e.jobId)}: building`, base)
        // build:attested follows with the result
        case 'importing':
        case 'attesting':
          return rec('debug', 'concur:worker', `${job(e.jobId)}: ${p.stage}`, base)
        default: return unknownEvent(p)
      }
    }
    case 'build:attested': {
      const r = e.result
      if (r.status === 'success') return rec('info', 'concur:worker', `${job(e.jobId)}: attested ${oneLine(r.artifact)}`, { jobId: e.jobId, buildId: e.buildId, worker: e.worker, status: r.status, artifact: r.artifact })
      return rec('warn', 'concur:worker', `${job(e.jobId)}: attested failure (exit ${r.exitCode ?? 'none'}): ${reasonText(r.reason)}`, {
        jobId: e.jobId, buildId: e.buildId, worker: e.worker, status: r.status, exitCode: r.exitCode, reason: r.reason
      })
    }
    case 'build:committed':
      return rec('info', 'concur:worker', `${job(e.jobId)}: committed to ${oneLine(e.artifact)}; revealed once the other builders have committed, in ${Math.round(e.waitMs / 1000)} s at most`, { jobId: e.jobId, buildId: e.buildId, worker: e.worker, artifact: e.artifact, waitMs: e.waitMs })
    case 'build:abandoned':
      return rec('warn', 'concur:worker', `${job(e.jobId)}: abandoned: ${reasonText(e.reason)}`, { jobId: e.jobId, worker: e.worker, reason: e.reason })
    case 'build:error':
      return rec('error', 'concur:worker', `${job(e.jobId)}: error: ${reasonText(e.message)}`, { jobId: e.jobId, worker: e.worker, error: e.message })
    case 'job:released':
      return rec('info', 'concur:worker', `${job(e.jobId)}: released: ${releaseText(e.release)}`, { jobId: e.jobId, worker: e.worker, releaseKind: e.release.kind, reason: e.release.reason })
    case 'job:release-suppressed':
      return rec('warn', 'concur:worker', `${job(e.jobId)}: release not published (over the releases a minute): ${releaseText(e.release)}`, {
        jobId: e.jobId, worker: e.worker, releaseKind: e.release.kind, reason: e.release.reason
      })
    default: return unknownEvent(e)
  }
}

/** a feed event this file does not know: tsc refuses it (the switches are exhaustive); at run time, no line */
function unknownEvent (_: never): undefined {
  return undefined
}

/** `2026-12-01T10:00:00.000Z INFO  concur:requester job 1a2b…: accepted bafy… (3/3)` */
export function formatText (r: LogRecord): string {
  return oneLine(`${r.time} ${r.level.toUpperCase().padEnd(5)} ${r.ns} ${r.msg}`)
}

/** one JSON object, on one line, with no character a terminal acts on */
export function formatJson (r: LogRecord): string {
  return terminalSafeJson(r, 0)
}

export function formatRecord (r: LogRecord, format: LogFormat): string {
  return format === 'json' ? formatJson(r) : formatText(r)
}
