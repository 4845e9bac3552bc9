/**
 * The log of `concur daemon` and `concur bootstrap`: its flags, their
 * environment defaults, and the listener that writes one line per event of
 * the daemon's feed (node/render/event-log.ts) to stderr.
 */
import { enabled } from '@libp2p/logger'
import type { FeedEvent } from './api/types.ts'
import { UsageError } from './errors.ts'
import { LOG_FORMATS, LOG_LEVELS, eventRecord, formatRecord, shouldLog } from './render/event-log.ts'
import type { LogFormat, LogLevel } from './render/event-log.ts'

export const LOG_OPTIONS = {
  'log-format': { type: 'string' },
  'log-level': { type: 'string' }
} as const

export const LOG_USAGE = '[--log-format text|json] [--log-level debug|info|warn|error]'

export const LOG_HELP = [
  'the log: one line per significant event (a verdict, a build step, a policy change), on stderr',
  '(stdout keeps the ready document) [defaults]:',
  '  --log-format text|json  a line a person reads, or one JSON object a line [$CONCUR_LOG_FORMAT, else text]',
  '  --log-level LEVEL       debug, info, warn or error: the least level written [$CONCUR_LOG_LEVEL, else info]',
  '  DEBUG=concur:worker     also the debug lines of these namespaces (concur:gossip, concur:requester,',
  '                          concur:worker, concur:content, concur:policy; as @libp2p/logger, whose',
  '                          own debug output the same variable turns on)',
  '  a worker daemon on a terminal in text format shows its jobs\' steps as it always did (one line',
  '  a step, fetches rewritten in place) and logs only the other events; with --log-format json,',
  '  --json or off a terminal, the log has them all'
].join('\n')

export interface LogOptions { format: LogFormat, level: LogLevel }

function pick<T extends string> (allowed: readonly T[], flag: string, values: Record<string, unknown>, envName: string, env: NodeJS.ProcessEnv, fallback: T): T {
  const given = values[flag]
  const fromFlag = typeof given === 'string'
  const value = fromFlag ? given : env[envName] != null && env[envName] !== '' ? env[envName] : fallback
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new UsageError(`${fromFlag ? `--${flag}` : `$${envName}`} takes ${allowed.join(', ')}, not "${value}"`)
}

/** the flags' values, else the environment's, else text at info; anything else is a UsageError naming the allowed values */
export function logOptions (values: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): LogOptions {
  return {
    format: pick(LOG_FORMATS, 'log-format', values, 'CONCUR_LOG_FORMAT', env, 'text'),
    level: pick(LOG_LEVELS, 'log-level', values, 'CONCUR_LOG_LEVEL', env, 'info')
  }
}

/**
 * A listener for the daemon's feed that writes the log's lines with `write`;
 * `skip` leaves out events shown another way (a worker's terminal activity).
 */
export function eventLogger (opts: LogOptions, write: (line: string) => void, skip: (e: FeedEvent) => boolean = () => false): (e: FeedEvent, at: string) => void {
  return (e, at) => {
    if (skip(e)) return
    const r = eventRecord(e, at)
    if (r != null && shouldLog(r, opts.level, enabled)) write(formatRecord(r, opts.format))
  }
}
