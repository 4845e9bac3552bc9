/** Reading a request's JSON body: each field checked, with a 400 that names it. */
import { isAbsolute } from 'node:path'
import { CID } from 'multiformats/cid'
import { JOB_VARIATIONS } from '../../../protocol/index.ts'
import type { JobVariation } from '../../../protocol/index.ts'
import { HttpError } from '../server.ts'

export function str (body: unknown, key: string, required = true): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null && !required) return undefined
  if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be a non-empty string`)
  return v
}

export function num (body: unknown, key: string, fallback: number): number {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be a non-negative number`)
  return v
}

export function optNum (body: unknown, key: string): number | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  return v == null ? undefined : num(body, key, 0)
}

export function record (body: unknown, key: string): Record<string, unknown> | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be an object`)
  return v as Record<string, unknown>
}

/** a list of known job variations (PROTOCOL.md §5.1), refused before the source is imported */
export function variations (body: unknown, key: string): JobVariation[] | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[key]
  if (v == null) return undefined
  if (!Array.isArray(v) || !v.every((x): x is JobVariation => typeof x === 'string' && (JOB_VARIATIONS as readonly string[]).includes(x))) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be a list of ${JOB_VARIATIONS.map(x => `"${x}"`).join(', ')}`)
  }
  return v
}

export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new HttpError(400, 'ERR_BAD_CID', `not a CID: ${text}`)
  }
}

export function absPath (p: string, key: string): string {
  if (!isAbsolute(p)) throw new HttpError(400, 'ERR_BAD_REQUEST', `"${key}" must be an absolute path (the CLI resolves it)`)
  return p
}
