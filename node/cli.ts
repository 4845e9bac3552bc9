import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { CliError, UsageError } from './errors.ts'
import { isProtocolError } from '../protocol/index.ts'
import { terminalSafe, terminalSafeJson } from '../src/text/terminal-safe.ts'

export interface GlobalFlags {
  home?: string
  json: boolean
}

export interface Command {
  name: string
  summary: string
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  /** more text for `concur NAME --help` only (e.g. flags meant for tests, not for the usage line) */
  notes?: string
  /** allow `--` and positionals */
  positionals?: boolean
  run (args: { values: Record<string, unknown>, positionals: string[], global: GlobalFlags, rest: string[] }): Promise<number | undefined>
}

export const GLOBAL_OPTIONS = {
  home: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false }
} as const

/**
 * Print either a JSON document (--json) or human text. Human text often
 * carries text from the network (reasons, logs, names): the renderers escape
 * each such field, and every line printed passes the same rule once more here
 * (it changes nothing already escaped), so a field a renderer forgot can still
 * not drive the terminal.
 */
export function output (global: GlobalFlags, json: unknown, text: () => string): void {
  if (global.json) process.stdout.write(terminalSafeJson(json) + '\n')
  else process.stdout.write(terminalSafe(text()) + '\n')
}

export function progress (global: GlobalFlags, line: string): void {
  // progress goes to stderr so stdout stays machine-readable with --json
  if (!global.json || process.env.CONCUR_PROGRESS === '1') process.stderr.write(terminalSafe(line) + '\n')
}

function helpText (commands: Command[]): string {
  const width = Math.max(...commands.map(c => c.name.length))
  return [
    'concur — a peer-to-peer CI network for reproducible builds',
    '',
    'usage: concur <command> [options]',
    '',
    'commands:',
    ...commands.map(c => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'every command takes --home DIR (default $CONCUR_HOME, else ~/.concur), --json, --help',
    'commands that talk to a daemon wait $CONCUR_API_TIMEOUT seconds (default 5) for its first answer'
  ].join('\n')
}

export async function main (argv: string[], commands: Command[]): Promise<number> {
  const [name, ...args] = argv
  if (name == null || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText(commands) + '\n')
    return name == null ? 64 : 0
  }
  const cmd = commands.find(c => c.name === name)
  if (cmd == null) {
    process.stderr.write(`concur: unknown command "${name}"\n\n${helpText(commands)}\n`)
    return 64
  }
  const dash = args.indexOf('--')
  const own = dash === -1 ? args : args.slice(0, dash)
  const rest = dash === -1 ? [] : args.slice(dash + 1)
  let global: GlobalFlags = { json: args.includes('--json') }
  try {
    const parsed = parseArgs({ args: own, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: cmd.positionals === true, strict: true })
    const values = parsed.values as Record<string, unknown>
    if (values.help === true) {
      process.stdout.write(`usage: ${cmd.usage}\n\n${cmd.summary}\n${cmd.notes != null ? `\n${cmd.notes}\n` : ''}`)
      return 0
    }
    global = { home: values.home as string | undefined, json: values.json === true }
    const code = await cmd.run({ values, positionals: parsed.positionals, global, rest })
    return code ?? 0
  } catch (caught) {
    const e = caught as Error & { code?: string }
    const err = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
      ? new UsageError(`${e.message}\nusage: ${cmd.usage}`)
      : caught
    const ce = err as Error & { code?: string, exitCode?: number }
    if (global.json) {
      process.stderr.write(terminalSafeJson({ error: { name: ce.name, code: ce.code ?? 'ERR_UNEXPECTED', message: ce.message } }, 0) + '\n')
    } else {
      // error messages quote what they refused: names from DAGs, API answers
      process.stderr.write(`concur ${cmd.name}: ${terminalSafe(ce.message)}\n`)
      if (!(err instanceof CliError) && !isProtocolError(err) && process.env.DEBUG != null) process.stderr.write(`${ce.stack ?? ''}\n`)
    }
    return exitCodeOf(err)
  }
}

/**
 * The exit status of a failed command: a CliError's own; EX_CONFIG (78, as
 * sysexits.h) when this machine cannot be a worker as configured (no safe
 * sandbox, an unsafe scratch directory): the remedy is in the message; else 1.
 */
export function exitCodeOf (err: unknown): number {
  if (err instanceof CliError) return err.exitCode
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ERR_NO_SANDBOX' || code === 'ERR_SCRATCH_UNSAFE' ? 78 : 1
}
