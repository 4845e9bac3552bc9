import { afterAll, describe, expect, it } from 'vitest'
import { cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'

interface Ready { api: string }

// A newcomer starting a second daemon on a home a running daemon holds got
// `concur daemon: Error: Database failed to open`. What is true: another
// daemon holds this home; which one it is, and the two ways out.
describe('a second daemon on a home another daemon holds', () => {
  afterAll(async () => { await cleanupAll() })

  it('exits with ERR_HOME_IN_USE naming the running daemon\'s pid and API, and the remedy', async () => {
    const home = await tempDir()
    const first = startConcur(['daemon'], { home })
    const r = await first.ready as unknown as Ready
    const pid = first.child.pid as number

    const second = await runConcur(['daemon'], { home, json: false })
    expect(second.code).toBe(75)
    expect(second.stderr).not.toMatch(/Database failed to open/)
    expect(second.stderr).toContain(`in use by another concur daemon (pid ${pid}, API http://${r.api})`)
    expect(second.stderr).toContain(`kill ${pid}`)
    expect(second.stderr).toContain('--home DIR')

    // --json: the same, with its stable code
    const asJson = await runConcur(['daemon'], { home })
    expect(asJson.code).toBe(75)
    expect(JSON.parse(asJson.stderr.trim().split('\n').at(-1) as string)).toMatchObject({ error: { code: 'ERR_HOME_IN_USE' } })

    // and the running daemon was not disturbed: it still answers, on the token it had
    const peers = await runConcur(['peers'], { home })
    expect(peers.code).toBe(0)
    await first.kill()
  })
})
