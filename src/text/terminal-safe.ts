/**
 * The one rule for showing text that came from the network (failure reasons,
 * build logs, entry names, anything from an attestation, a job or a DAG) to a
 * person: in a terminal, or in a text file they will `cat`.
 *
 * Such text is written by whoever signed it, and a terminal obeys some of its
 * characters: ESC and the C1 controls (U+0080–U+009F, e.g. CSI U+009B) start
 * sequences that clear the screen, move the cursor or set the window title,
 * so a worker's failure reason could repaint `concur status` with a verdict of
 * its choosing; CR and BS overwrite what is already on the line; the Unicode
 * bidi overrides and isolates reorder what the eye reads (a `Trojan source`
 * name). Each of those is replaced by a visible escape (`\x1b`, `\u202e`), so
 * it is seen, not obeyed. Everything else is left exactly as it is: clean text
 * is unchanged, and the rule can be applied twice (a field, then the whole
 * output) without changing anything more.
 *
 * Escaped: C0 controls except \t and (unless `singleLine`) \n; DEL; C1;
 * ALM, LRM, RLM (U+061C, U+200E, U+200F); LRE, RLE, PDF, LRO, RLO
 * (U+202A–U+202E); LRI, RLI, FSI, PDI (U+2066–U+2069); the line and paragraph
 * separators U+2028/U+2029; lone surrogates.
 *
 * Backslashes are not escaped (a log full of `C:\path` stays readable): a
 * literal `\x1b` in the input looks like an escaped ESC, which is harmless,
 * and inputs without a backslash can be read back exactly.
 */

export interface TerminalSafeOptions {
  /**
   * For a field shown on one line (a reason, a name): newlines are escaped
   * too, so the field cannot forge lines of the output around it.
   */
  singleLine?: boolean
}

const CONTROLS = '\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069'
/** \p{Cs} under the u flag matches only surrogates that are not part of a pair */
const MULTI_LINE = new RegExp(`[${CONTROLS}]|\\p{Cs}`, 'gu')
const SINGLE_LINE = new RegExp(`[${CONTROLS}\\u000a]|\\p{Cs}`, 'gu')

function visible (c: string): string {
  const code = c.charCodeAt(0)
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** `text` with every character a terminal would act on shown as a visible escape. */
export function terminalSafe (text: string, options: TerminalSafeOptions = {}): string {
  return text.replace(options.singleLine === true ? SINGLE_LINE : MULTI_LINE, visible)
}

const IN_JSON = new RegExp(`[${CONTROLS}]`, 'g')

/**
 * `value` as JSON that is as safe to show as terminalSafe's text, and the same
 * JSON value: JSON.stringify escapes C0 controls and lone surrogates but
 * leaves DEL, C1 (CSI is U+009B) and the bidi characters raw; they become
 * \u escapes here.
 */
export function terminalSafeJson (value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(IN_JSON, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
