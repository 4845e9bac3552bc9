/**
 * The one rule for printing untrusted text (src/text/terminal-safe.ts): no
 * byte that a terminal or a bidi-aware viewer acts on gets through; each shows
 * as a visible escape instead, so it is seen, not obeyed. Clean text is left
 * exactly as it is, applying the rule twice changes nothing (renderers may
 * escape a field and then the whole output), and as long as the input holds no
 * backslash the escapes can be read back into exactly the input.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { terminalSafe, terminalSafeJson } from '../../src/text/terminal-safe.ts'

/** what must never reach a terminal raw (multi-line text keeps \n and \t) */
// matching control characters is the point of these patterns
/* eslint-disable no-control-regex */
const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u
const FORBIDDEN_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u
/* eslint-enable no-control-regex */

const SPECIAL = [
  ...Array.from({ length: 0xa0 }, (_, i) => String.fromCharCode(i)),
  '\u061c', '\u200e', '\u200f', '\u2028', '\u2029', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069',
  '\ud800', '\udfff', '\ud83d\ude00', '\\', '\\x1b', '\\u202e', 'é', '✓'
]
/** strings mixing every special character (lone surrogates included) with arbitrary text */
const hostile = fc.string({ unit: fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 64 })

/** reads the escapes back: only meaningful for inputs without a backslash */
function unescape (s: string): string {
  return s.replace(/\\x([0-9a-f]{2})|\\u([0-9a-f]{4})/g, (_, x?: string, u?: string) => String.fromCharCode(parseInt(x ?? u ?? '', 16)))
}

describe('terminalSafe', () => {
  it('the screen-repainting verdict spoof and a bidi override come out as visible escapes', () => {
    expect(terminalSafe('\u001b[2J\u001b[H accepted')).toBe('\\x1b[2J\\x1b[H accepted')
    expect(terminalSafe('build \u202egnp.exe\u202c ok')).toBe('build \\u202egnp.exe\\u202c ok')
    expect(terminalSafe('\u009b31m C1 CSI, DEL \u007f, BEL \u0007, CR \r')).toBe('\\x9b31m C1 CSI, DEL \\x7f, BEL \\x07, CR \\x0d')
    expect(terminalSafe('two\nlines\twith a tab')).toBe('two\nlines\twith a tab')
    expect(terminalSafe('two\nlines\twith a tab', { singleLine: true })).toBe('two\\x0alines\twith a tab')
  })

  it('no forbidden character ever gets through (multi-line and single-line)', () => {
    fc.assert(fc.property(hostile, (s) => {
      expect(terminalSafe(s)).not.toMatch(FORBIDDEN)
      expect(terminalSafe(s, { singleLine: true })).not.toMatch(FORBIDDEN_LINE)
    }), { numRuns: 2000 })
  })

  it('clean text is unchanged and applying it twice changes nothing', () => {
    fc.assert(fc.property(hostile, (s) => {
      const once = terminalSafe(s)
      expect(terminalSafe(once)).toBe(once)
      expect(terminalSafe(once, { singleLine: true })).toBe(terminalSafe(s, { singleLine: true }))
      if (!FORBIDDEN.test(s)) expect(once).toBe(s)
    }), { numRuns: 2000 })
  })

  it('without backslashes in the input, distinct inputs stay distinct: the escapes read back exactly', () => {
    fc.assert(fc.property(hostile.map(s => s.replaceAll('\\', '/')), (s) => {
      expect(unescape(terminalSafe(s))).toBe(s)
      expect(unescape(terminalSafe(s, { singleLine: true }))).toBe(s)
    }), { numRuns: 2000 })
  })
})

describe('terminalSafeJson', () => {
  it('JSON with no character a terminal acts on beyond its own newlines, and the same value once parsed', () => {
    fc.assert(fc.property(hostile, hostile, (k, v) => {
      const value = { [k]: v, list: [v, { nested: k }] }
      const text = terminalSafeJson(value)
      expect(text).not.toMatch(FORBIDDEN)
      expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)))
    }), { numRuns: 2000 })
  })
})
