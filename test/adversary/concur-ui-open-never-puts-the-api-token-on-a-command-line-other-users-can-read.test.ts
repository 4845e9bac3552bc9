/**
 * `concur ui --open` starts the desktop's browser. Whatever it hands the
 * browser is on a command line, and every local user can read command lines
 * (/proc/PID/cmdline, `ps`), for as long as the browser runs. The address
 * with the token must not be there (review found it was: another user read
 * `…/ui/#token=…` from the browser's command line and had the whole API).
 * The browser gets a file in the home, 0600, that sends it on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'

describe('concur ui --open', () => {
  let home: string
  let token: string
  let argvFile: string
  let browser: string

  beforeAll(async () => {
    home = await tempDir()
    await startConcur(['daemon'], { home }).ready
    token = (await readFile(join(home, 'api.token'), 'utf8')).trim()
    const dir = await tempDir()
    argvFile = join(dir, 'argv')
    // a "browser" that records the command line it was given
    browser = join(dir, 'browser')
    await writeFile(browser, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}'\n`)
    await chmod(browser, 0o755)
  })

  afterAll(async () => { await cleanupAll() })

  it('hands the browser a private file, not the address with the token', async () => {
    const r = await runConcur(['ui', '--open'], { home, env: { BROWSER: browser } })
    expect(r.code, r.stderr).toBe(0)
    const argv = await waitFor(async () => existsSync(argvFile) ? (await readFile(argvFile, 'utf8')).trim() : undefined, 'the browser started')
    expect(argv).not.toContain(token)
    expect(argv).toMatch(/^file:\/\//)
    const page = fileURLToPath(argv)
    // only the daemon's user can read it, and it leads to the dashboard with the token
    expect((await stat(page)).mode & 0o777).toBe(0o600)
    const html = await readFile(page, 'utf8')
    expect(html).toContain(`/ui/#token=${token}`)
    expect(html).toMatch(/http-equiv="refresh"/)
    // and the printed address is still there for the person at the terminal
    expect((r.json() as { url: string }).url).toContain(token)
  })
})
