/**
 * An event stream (GET /v1/events/stream, the dashboard's live view) holds a
 * connection for as long as its reader likes, and the local API serves at
 * most 256 connections. Review found 256 open streams made every CLI command
 * fail ("that daemon has exited"). At most MAX_EVENT_STREAMS are served at
 * once; more are refused with 503 and a remedy, and the CLI still answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiHeaders, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { MAX_EVENT_STREAMS } from '../../node/api/routes/node.ts'

describe('event streams', () => {
  let api: string
  let home: string
  const open: AbortController[] = []

  beforeAll(async () => {
    home = await tempDir()
    api = String((await startConcur(['daemon'], { home }).ready).api)
  })

  afterAll(async () => {
    for (const ac of open) ac.abort()
    await cleanupAll()
  })

  async function stream (): Promise<Response> {
    const ac = new AbortController()
    open.push(ac)
    const res = await fetch(`http://${api}/v1/events/stream`, { headers: apiHeaders(api), signal: ac.signal })
    if (res.status === 200) {
      // the first bytes (a comment line): the stream is open and counted
      const reader = res.body!.getReader()
      await reader.read()
    }
    return res
  }

  it('are served up to the cap, refused past it with a remedy, and the CLI still answers', async () => {
    // a tenth of the API's connections at most: 256 streams would leave none
    expect(MAX_EVENT_STREAMS).toBeLessThanOrEqual(25)
    for (let i = 0; i < MAX_EVENT_STREAMS; i++) expect((await stream()).status).toBe(200)
    // 40 more attempts, as a script looping on reconnect would make
    for (let i = 0; i < 40; i++) {
      const extra = await stream()
      expect(extra.status).toBe(503)
      expect(((await extra.json()) as { error: { code: string, message: string } }).error.code).toBe('ERR_TOO_MANY_STREAMS')
    }
    const id = await runConcur(['id'], { home })
    expect(id.code, id.stderr).toBe(0)
    // one closes: its place is free again
    open[0]!.abort()
    const again = await waitFor(async () => { const r = await stream(); return r.status === 200 ? r : undefined }, 'a stream after one closed')
    expect(again.status).toBe(200)
  })
})
