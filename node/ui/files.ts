/**
 * The dashboard's files, read once when the daemon starts and served without
 * the token (they hold no data: see PublicFile in node/api/server.ts). No
 * build step and nothing fetched at run time: the page, its script and its
 * style are these three files as they are in the repository.
 */
import { readFile } from 'node:fs/promises'
import type { PublicFile } from '../api/server.ts'

/** where `concur ui` points: the page; the token follows in the fragment */
export const UI_PATH = '/ui/'

const FILES: Array<[path: string, file: string, type: string]> = [
  [UI_PATH, 'index.html', 'text/html; charset=utf-8'],
  ['/ui/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/ui/app.css', 'app.css', 'text/css; charset=utf-8']
]

export async function dashboardFiles (): Promise<Map<string, PublicFile>> {
  const out = new Map<string, PublicFile>()
  for (const [path, file, type] of FILES) {
    out.set(path, { type, body: await readFile(new URL(file, import.meta.url)) })
  }
  out.set('/ui', out.get(UI_PATH) as PublicFile)
  return out
}

/** the address that opens the dashboard of the daemon at `api` (127.0.0.1:PORT) with its token */
export function dashboardUrl (api: string, token: string): string {
  return `http://${api}${UI_PATH}#token=${token}`
}
