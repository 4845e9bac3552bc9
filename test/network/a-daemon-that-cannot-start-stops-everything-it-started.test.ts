/**
 * A daemon that fails to start (here: its API port is taken, the last thing
 * it opens) stops everything it had started, through the one lifecycle: no
 * timer, listener or socket is left behind, and the home's store lock is
 * released, so the same home starts at once on another port.
 */
import { createHook } from 'node:async_hooks'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initHome } from '../../node/home.ts'
import { startDaemon } from '../../node/daemon.ts'
import { PortInUseError } from '../../node/errors.ts'

/** what keeps the event loop busy, by kind (servers, sockets, watchers); timers are counted apart, below */
function resources (): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) if (r !== 'Timeout') out[r] = (out[r] ?? 0) + 1
  return out
}

const OURS = /\/(?:src|node|protocol|bootstrap)\/[^/]+.*\.ts/
const NOT_OURS = /node_modules/

/**
 * Timers created by this repository's code that are still set: a service
 * left running keeps its interval. (libp2p's own short debounce timers, which
 * end by themselves, are not ours and not counted.)
 */
function trackOurTimers (): { live: () => string[], stop: () => void } {
  const live = new Map<number, string>()
  const hook = createHook({
    init (id, type) {
      if (type !== 'Timeout') return
      const frames = (new Error().stack ?? '').split('\n').slice(2)
      const first = frames.find(f => !f.includes('node:'))
      if (first != null && OURS.test(first) && !NOT_OURS.test(first)) live.set(id, first.trim())
    },
    destroy (id) { live.delete(id) }
  }).enable()
  return { live: () => [...live.values()], stop: () => { hook.disable() } }
}

describe('a daemon that cannot start', () => {
  let home = ''
  let blocker: Server
  let port = 0

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'concur-failstart-'))
    await initHome(home)
    blocker = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    port = (blocker.address() as AddressInfo).port
  })

  afterAll(async () => {
    blocker.close()
    await rm(home, { recursive: true, force: true })
  })

  it('stops every service it started when the API port is taken, and the home starts again', async () => {
    const opts = { home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [] }
    // one start and stop first: modules loaded, lazy singletons made, so the
    // comparison below sees only what a start leaves behind
    await (await startDaemon({ ...opts, api: '127.0.0.1:0' })).stop()
    const before = resources()
    const timers = trackOurTimers()
    await expect(startDaemon({ ...opts, api: `127.0.0.1:${port}` })).rejects.toBeInstanceOf(PortInUseError)
    timers.stop()
    expect(timers.live(), 'timers of services left running').toEqual([])
    expect(resources()).toEqual(before)
    const again = await startDaemon({ ...opts, api: '127.0.0.1:0' })
    expect(again.api.address).toMatch(/^127\.0\.0\.1:\d+$/)
    await again.stop()
    expect(resources()).toEqual(before)
  })
})
