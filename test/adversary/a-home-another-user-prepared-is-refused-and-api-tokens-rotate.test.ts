/**
 * Two ways to get the API token without reading the owner's files.
 *
 * 1. Plant it: another local user creates the home first (e.g. a path a
 *    guide suggests under /tmp), writable by them, with an api.token they
 *    chose. A daemon that adopts that home answers to the planted token.
 *    Defence: a home must be owned by the daemon's user and writable by
 *    nobody else, or the daemon refuses and says what to do.
 * 2. Catch it: while the daemon is down, its daemon.json still names its
 *    port; another user binds that port, and the owner's next `concur`
 *    command sends the token there. Defence: every daemon start writes a new
 *    token, so a token caught while the daemon was down opens nothing later.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanupAll, startConcur, tempDir } from '../helpers/processes.ts'

const run = promisify(execFile)
const asOther = async (cmd: string[]): Promise<void> => { await run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', ...cmd]) }

async function status (api: string, token: string): Promise<number> {
  const res = await fetch(`http://${api}/v1/id`, { headers: { authorization: `Bearer ${token}` } })
  return res.status
}

describe('the API token cannot be planted or reused', () => {
  afterAll(async () => { await cleanupAll() })

  it.skipIf(process.getuid?.() !== 0)('a daemon refuses a home another user created, with a token they chose, and says what to do', async () => {
    const base = await mkdtemp(join(tmpdir(), 'concur-planted-'))
    try {
      await chmod(base, 0o1777)
      const home = join(base, 'another-peer')
      const planted = '0'.repeat(64)
      await asOther(['sh', '-c', `mkdir -m 0777 ${home} && printf '%s\\n' ${planted} > ${home}/api.token && chmod 0666 ${home}/api.token`])
      const daemon = startConcur(['daemon'], { home })
      const outcome = await Promise.race([
        daemon.ready.then(r => r, () => null),
        daemon.exited.then(() => null)
      ])
      if (outcome != null) {
        const api = String(outcome.api)
        expect(await status(api, planted), 'the daemon obeys the planted token').not.toBe(200)
      }
      expect(outcome, 'the daemon started in a home another user owns').toBe(null)
      expect(daemon.stderr()).toContain(home)
      expect(daemon.stderr()).toMatch(/owned by uid 65534|writable by/)
    } finally {
      await rm(base, { recursive: true, force: true })
    }
  })

  it('every daemon start writes a new token: one caught while the daemon was down is refused after', async () => {
    const home = await tempDir('concur-rotate-')
    const first = startConcur(['daemon'], { home })
    const api1 = String((await first.ready).api)
    const t1 = (await readFile(join(home, 'api.token'), 'utf8')).trim()
    expect(await status(api1, t1)).toBe(200)
    await first.kill('SIGKILL') // a crash: daemon.json stays behind
    const second = startConcur(['daemon'], { home })
    const api2 = String((await second.ready).api)
    const t2 = (await readFile(join(home, 'api.token'), 'utf8')).trim()
    expect(t2).not.toBe(t1)
    expect(await status(api2, t1)).toBe(401)
    expect(await status(api2, t2)).toBe(200)

    // a second daemon started on the same home fails (the store is locked)
    // before it touches the token: the running one stays usable
    const third = startConcur(['daemon'], { home })
    expect(await third.exited).not.toBe(0)
    expect((await readFile(join(home, 'api.token'), 'utf8')).trim()).toBe(t2)
    expect(await status(api2, t2)).toBe(200)
  })
})
