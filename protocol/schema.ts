/**
 * Small hand-written validators. Every one caps lengths: a decoder must never
 * spend unbounded work or memory on attacker-chosen input, and a field that is
 * absurdly long is a protocol violation, not data.
 */
import { SchemaError } from './errors.ts'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export function isRecord (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** An object with exactly the allowed keys (`required` must be present); unknown keys are refused. */
export function expectObject (x: unknown, path: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (!isRecord(x)) throw new SchemaError(path, 'expected an object')
  for (const k of Object.keys(x)) {
    if (!required.includes(k) && !optional.includes(k)) throw new SchemaError(join(path, k), 'unknown field')
  }
  for (const k of required) {
    if (!Object.hasOwn(x, k)) throw new SchemaError(join(path, k), 'missing field')
  }
  return x
}

export interface StringRule { min?: number; max: number; pattern?: RegExp }

export function expectString (x: unknown, path: string, rule: StringRule): string {
  if (typeof x !== 'string') throw new SchemaError(path, 'expected a string')
  if (x.length > rule.max) throw new SchemaError(path, `longer than ${rule.max} characters`)
  if (x.length < (rule.min ?? 0)) throw new SchemaError(path, `shorter than ${rule.min ?? 0} characters`)
  // Lone surrogates cannot be encoded as UTF-8 (they become U+FFFD), so two different
  // strings would hash (dag-cbor, JSON) to the same bytes: refuse them.
  if (!x.isWellFormed()) throw new SchemaError(path, 'not well-formed Unicode')
  if (x.includes('\u0000')) throw new SchemaError(path, 'contains NUL')
  if (rule.pattern != null && !rule.pattern.test(x)) throw new SchemaError(path, `does not match ${String(rule.pattern)}`)
  return x
}

export function expectInteger (x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw new SchemaError(path, 'expected an integer')
  if (x < min || x > max) throw new SchemaError(path, `out of range [${min}, ${max}]`)
  // -0 is an integer to JS but not a distinct JSON/CBOR integer: normalise.
  return x === 0 ? 0 : x
}

export function expectNumber (x: unknown, path: string, minExclusive: number, max: number): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new SchemaError(path, 'expected a finite number')
  if (!(x > minExclusive) || x > max) throw new SchemaError(path, `out of range (${minExclusive}, ${max}]`)
  return x
}

export function expectArray (x: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(x)) throw new SchemaError(path, 'expected an array')
  if (x.length < min || x.length > max) throw new SchemaError(path, `expected ${min}..${max} items, got ${x.length}`)
  return x
}

export function expectLiteral<T extends string | number> (x: unknown, path: string, value: T): T {
  if (x !== value) throw new SchemaError(path, `expected ${JSON.stringify(value)}`)
  return value
}

export function join (path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return path === '' ? key : `${path}.${key}`
}

/**
 * Structural equality of two JSON values ignoring object key order; returns
 * the path of the first difference or null. Used to require that a decoded
 * document is exactly what we would have produced from its meaning.
 */
export function firstDifference (a: unknown, b: unknown, path = ''): string | null {
  if (a === b) return null
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return path || '(root)'
    if (a.length !== b.length) return path || '(root)'
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], join(path, i))
      if (d != null) return d
    }
    return null
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    for (const k of ka) if (!Object.hasOwn(b, k)) return join(path, k)
    for (const k of kb) if (!Object.hasOwn(a, k)) return join(path, k)
    for (const k of ka) {
      const d = firstDifference(a[k], b[k], join(path, k))
      if (d != null) return d
    }
    return null
  }
  return path || '(root)'
}
