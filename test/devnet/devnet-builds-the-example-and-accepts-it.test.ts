import { afterAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'

describe('concur devnet (the main job)', () => {
  afterAll(async () => { await cleanupAll() })

  it('runs bootstrap, 3 trusted workers, a dissenter and a requester; exits 0 with an accepted CID and a verified bundle', async () => {
    const r = await runConcur(['devnet'], { home: await tempDir(), timeoutMs: 300_000 })
    expect(r.stderr).toMatch(/offline check\s+concur verify: OK/)
    expect(r.code).toBe(0)
    const out = r.json() as { ok: boolean, verdict: string, artifact: string, bundle: string, attestations: Array<{ trusted: boolean, result: { artifact?: string } }> }
    expect(out).toMatchObject({ ok: true, verdict: 'accepted' })
    expect(out.artifact).toMatch(/^bafy/)
    // the dissenter is shown, with another CID, and not counted
    const untrusted = out.attestations.filter(a => !a.trusted)
    expect(untrusted.length).toBeGreaterThanOrEqual(1)
    expect(untrusted.every(a => a.result.artifact !== out.artifact)).toBe(true)
    expect(out.attestations.filter(a => a.trusted && a.result.artifact === out.artifact).length).toBeGreaterThanOrEqual(2)
    expect(existsSync(out.bundle)).toBe(true)
    await rm(out.bundle, { force: true })
    // nothing of the devnet is left running
    expect(r.stderr).toMatch(/stopping the devnet/)
  })

  it('with --keep, prints the requester\'s dashboard address, which opens the dashboard and its API, and stops on Ctrl-C', async () => {
    const devnet = startConcur(['devnet', '--keep'], { home: await tempDir() })
    const out = await devnet.ready as { verdict: string, dashboard?: string }
    expect(out.verdict).toBe('accepted')
    // on stderr before the job was submitted (to watch it), and in the document
    const line = /dashboard\s+(http:\/\/127\.0\.0\.1:\d+\/ui\/#token=[0-9a-f]{64})/.exec(devnet.stderr())
    expect(line?.[1]).toBe(out.dashboard)
    expect(devnet.stderr().indexOf('dashboard ')).toBeLessThan(devnet.stderr().indexOf('submitting'))
    const url = new URL(out.dashboard!)
    const page = await fetch(new URL(url.pathname, url))
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<script src="/ui/app.js"')
    const token = url.hash.replace('#token=', '')
    const requests = await fetch(new URL('/v1/requests', url), { headers: { authorization: `Bearer ${token}` } })
    expect(((await requests.json()) as { requests: Array<{ status: string }> }).requests.map(r => r.status)).toEqual(['accepted'])
    devnet.child.kill('SIGINT')
    expect(await devnet.exited).toBe(0)
    expect(devnet.stderr()).toMatch(/stopping the devnet/)
  })
})
