import { afterAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'

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
})
