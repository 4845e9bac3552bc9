/**
 * A strict reader of the Prometheus text exposition format 0.0.4, for tests:
 * every line must be a HELP, TYPE or other comment, blank, or a sample that
 * matches the grammar (name, optional labels with escaped values, a float,
 * an optional timestamp). Anything else throws, with the line.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*'
/** a label value as written: any character but `"`, `\` and newline, or one of the escapes `\\`, `\"`, `\n` */
const LABEL_VALUE = '(?:[^"\\\\\\n]|\\\\[\\\\"n])*'
const LABEL = `${LABEL_NAME}="${LABEL_VALUE}"`
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN)'

const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`)
const HELP = new RegExp(`^# HELP (${NAME}) (?:[^\\\\\\n]|\\\\[\\\\n])*$`)
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)
const ONE_LABEL = new RegExp(`(${LABEL_NAME})="(${LABEL_VALUE})"`, 'g')

export class ExpositionError extends Error {
  override name = 'ExpositionError'
}

function parseValue (text: string): number {
  if (text === 'NaN') return NaN
  if (/^\+?Inf$/.test(text)) return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}

function unescapeLabelValue (text: string): string {
  return text.replace(/\\([\\"n])/g, (_, c: string) => c === 'n' ? '\n' : c)
}

/**
 * Every sample of the text, keyed by `name{label="v",…}` exactly as written
 * (escapes kept). Throws {@link ExpositionError} on a line outside the
 * grammar, a second HELP or TYPE for one name, or a sample written twice.
 */
export function parsePrometheus (text: string): Map<string, number> {
  const samples = new Map<string, number>()
  const helped = new Set<string>()
  const typed = new Set<string>()
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`
    if (line.trim() === '') return
    if (line.startsWith('# HELP ')) {
      const m = HELP.exec(line)
      if (m == null) throw new ExpositionError(`malformed HELP, ${where}`)
      if (helped.has(m[1]!)) throw new ExpositionError(`second HELP, ${where}`)
      helped.add(m[1]!)
      return
    }
    if (line.startsWith('# TYPE ')) {
      const m = TYPE.exec(line)
      if (m == null) throw new ExpositionError(`malformed TYPE, ${where}`)
      if (typed.has(m[1]!)) throw new ExpositionError(`second TYPE, ${where}`)
      typed.add(m[1]!)
      return
    }
    if (line.startsWith('#')) return
    const m = SAMPLE.exec(line)
    if (m == null) throw new ExpositionError(`not a sample, ${where}`)
    const key = `${m[1]!}${m[2] ?? ''}`
    if (samples.has(key)) throw new ExpositionError(`sample written twice, ${where}`)
    samples.set(key, parseValue(m[3]!))
  })
  return samples
}

/** The name and (unescaped) labels of a key of {@link parsePrometheus}'s map. */
export function parseKey (key: string): { name: string, labels: Record<string, string> } {
  const brace = key.indexOf('{')
  const name = brace < 0 ? key : key.slice(0, brace)
  const labels: Record<string, string> = {}
  if (brace >= 0) {
    for (const m of key.slice(brace).matchAll(ONE_LABEL)) labels[m[1]!] = unescapeLabelValue(m[2]!)
  }
  return { name, labels }
}

/**
 * The sum of every series of `name` whose labels include `labels` (values
 * compared unescaped); undefined when no series matches, so a test can tell
 * "absent" from 0.
 */
export function sample (map: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined
  for (const [key, value] of map) {
    const parsed = parseKey(key)
    if (parsed.name !== name) continue
    if (!Object.entries(labels).every(([k, v]) => parsed.labels[k] === v)) continue
    sum = (sum ?? 0) + value
  }
  return sum
}
