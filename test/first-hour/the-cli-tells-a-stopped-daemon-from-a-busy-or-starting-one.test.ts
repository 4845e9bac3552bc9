import { afterAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'
import { homeLockHolder } from '../../node/home.ts'

interface Ready { api: string }

// The CLI used to say "no daemon is running" whenever its 5-second probe got
// no answer: for a daemon that is merely busy (its event loop held by a burst
// of verification) that sends the user to start a second one, which fails.
// Each case has its own message and remedy. A busy daemon is made here with
// SIGSTOP: its process is alive and the kernel still accepts connections on
// its API port, but nothing answers them, as with an event loop that is held.
describe('the CLI tells a daemon that is gone from one that is busy or starting', () => {
  afterAll(async () => { await cleanupAll() })

  it('busy: the process is alive, the API does not answer in time (ERR_DAEMON_NOT_ANSWERING, not "no daemon")', async () => {
    const home = await tempDir()
    const d = startConcur(['daemon'], { home })
    const r = await d.ready as unknown as Ready
    const pid = d.child.pid as number
    d.child.kill('SIGSTOP')
    try {
      const res = await runConcur(['peers'], { home, json: false, env: { CONCUR_API_TIMEOUT: '1' } })
      expect(res.stderr).not.toMatch(/no daemon is running/)
      expect(res.stderr).toContain(`the daemon for ${home} (pid ${pid}, API http://${r.api}) is running but did not answer within 1 s`)
      expect(res.stderr).toContain('CONCUR_API_TIMEOUT')
      expect(res.code).toBe(75)
    } finally {
      d.child.kill('SIGCONT')
    }
    // once it is no longer held, the same command works
    expect((await runConcur(['peers'], { home })).code).toBe(0)
    await d.kill()
  })

  it('gone: after SIGKILL, daemon.json is left behind; the CLI says its pid has exited (ERR_NO_DAEMON)', async () => {
    const home = await tempDir()
    const d = startConcur(['daemon'], { home })
    await d.ready
    const pid = d.child.pid as number
    d.child.kill('SIGKILL')
    await d.exited
    expect(existsSync(join(home, 'daemon.json'))).toBe(true)
    const res = await runConcur(['peers'], { home, json: false })
    expect(res.code).toBe(69)
    expect(res.stderr).toContain(`no daemon is running for ${home} (its daemon.json names pid ${pid}, which has exited`)
    expect(res.stderr).toContain(`concur daemon --home ${home}`)
    // and a new daemon starts on that home without complaint
    const again = startConcur(['daemon'], { home })
    await again.ready
    expect((await runConcur(['peers'], { home })).code).toBe(0)
    await again.kill()
  })

  it('starting: the home\'s lock is held but daemon.json is not written yet (ERR_DAEMON_NOT_ANSWERING, "still starting")', async () => {
    const home = await tempDir()
    const d = startConcur(['daemon'], { home })
    // stop it between taking the home's lock and writing daemon.json
    // (libp2p's start lies between the two): /proc/locks is read back to back,
    // bounded in count, not every 200 ms as waitFor would
    let holder: number | null = null
    for (let i = 0; i < 200_000 && holder == null && d.child.exitCode == null; i++) holder = await homeLockHolder(home)
    d.child.kill('SIGSTOP')
    try {
      expect(holder).toBe(d.child.pid)
      expect(existsSync(join(home, 'daemon.json'))).toBe(false)
      const res = await runConcur(['peers'], { home, json: false })
      expect(res.stderr).toContain(`the daemon for ${home} (pid ${holder}) is still starting`)
      expect(res.code).toBe(75)
    } finally {
      d.child.kill('SIGCONT')
    }
    await d.ready
    await d.kill()
  })
})
