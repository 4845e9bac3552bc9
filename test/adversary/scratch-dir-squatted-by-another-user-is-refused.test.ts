/**
 * Another local user squats the sandbox's scratch directory.
 *
 * The worker keeps the generated /etc, the job's inputs and a build's output
 * in a scratch directory under $TMPDIR (or /tmp). If another user created
 * that directory first, they own it: with inotify and
 * renameat2(RENAME_EXCHANGE) they can swap entries under the worker, making a
 * root worker write where they choose or feeding it other inputs than the
 * job's. The defence: a per-user scratch directory, created 0700, used only
 * if this user owns it, it is no symlink and nobody else can write to it;
 * otherwise the worker refuses to start and says how to fix it.
 *
 * The squatter here is uid 65534 (`setpriv --reuid 65534`), working in a
 * sticky world-writable directory the test uses as TMPDIR (a stand-in for
 * /tmp, so other tests' workers are not affected).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sandboxScratchRoot, SandboxScratchError } from '../../src/sandbox/index.ts'
import { cleanupAll, startConcur, tempDir } from '../helpers/processes.ts'

const run = promisify(execFile)
const OTHER = '65534'
const uid = process.getuid?.() ?? 0

/** run a command as the other user */
async function asOther (cmd: string[]): Promise<void> {
  await run('setpriv', ['--reuid', OTHER, '--regid', OTHER, '--clear-groups', ...cmd])
}

describe('a scratch directory squatted by another user', () => {
  let base = ''
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'concur-squat-'))
    await chmod(base, 0o1777) // like /tmp: anyone may create, only owners may rename or delete
  })
  afterAll(async () => {
    await cleanupAll()
    await rm(base, { recursive: true, force: true })
  })

  it('is refused when another user created it, when it is a symlink, and when others can write to it; the message names the remedy', async () => {
    // 1. created by the other user, open to them (as a squatter would leave it)
    const own = join(base, `concur-sandbox-${uid}`)
    await asOther(['mkdir', '-m', '0777', own])
    let err = await sandboxScratchRoot({ base }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(SandboxScratchError)
    expect((err as Error).message).toContain(`belongs to uid ${OTHER}`)
    expect((err as Error).message).toContain(`rm -rf ${own}`)
    // still theirs: the worker neither adopted nor chmod'ed it
    expect((await lstat(own)).uid).toBe(Number(OTHER))
    expect((await lstat(own)).mode & 0o777).toBe(0o777)
    await rm(own, { recursive: true })

    // 2. a symlink planted at the name (to a directory this user owns)
    const decoy = await mkdtemp(join(tmpdir(), 'concur-decoy-'))
    await asOther(['ln', '-s', decoy, own])
    err = await sandboxScratchRoot({ base }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(SandboxScratchError)
    expect((err as Error).message).toContain('is a symlink')
    await rm(own)
    await rm(decoy, { recursive: true })

    // 3. this user's own directory, but writable by everyone
    await mkdir(own)
    await chmod(own, 0o777)
    err = await sandboxScratchRoot({ base }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(SandboxScratchError)
    expect((err as Error).message).toContain('writable by other users')
    await rm(own, { recursive: true })

    // 4. control: a fresh one is created private
    const root = await sandboxScratchRoot({ base })
    expect(root).toBe(own)
    const st = await lstat(root)
    expect(st.uid).toBe(uid)
    // 0700; 0711 for a root worker, whose builds (a fresh uid each) must pass through
    expect(st.mode & 0o777).toBe(uid === 0 ? 0o711 : 0o700)
    await rm(root, { recursive: true })
  })

  it('work directories of workers that died (a crash loop would fill the disk) are removed at start; a live worker\'s are kept', async () => {
    const tmp = await mkdtemp(join(base, 'tmp-'))
    await chmod(tmp, 0o755)
    const scratch = await sandboxScratchRoot({ base: tmp })
    // pid 2^22+1 is above the kernel's pid_max: certainly no process
    const dead = join(scratch, 'work-4194305-abcdef')
    const live = join(scratch, `work-${process.pid}-abcdef`)
    for (const d of [dead, live]) {
      await mkdir(join(d, 'job', 'src'), { recursive: true })
      await writeFile(join(d, 'job', 'src', 'input'), 'left behind')
    }
    const home = await tempDir('concur-sweep-home-')
    const worker = startConcur(['daemon', '--worker', '--allow-weak-sandbox'], { home, env: { TMPDIR: tmp } })
    await worker.ready
    expect(existsSync(dead)).toBe(false)
    expect(existsSync(live)).toBe(true)
    await worker.kill()
  })

  it('a worker daemon refuses to start on a squatted scratch directory and says what to do', async () => {
    const tmp = await mkdtemp(join(base, 'tmp-'))
    await chmod(tmp, 0o1777)
    // the squatter takes every name a worker could use for its scratch directory
    for (const name of ['concur-sandbox', `concur-sandbox-${uid}`]) await asOther(['mkdir', '-m', '0777', join(tmp, name)])
    const home = await tempDir('concur-squat-home-')
    const worker = startConcur(['daemon', '--worker', '--allow-weak-sandbox'], { home, env: { TMPDIR: tmp } })
    const outcome = await Promise.race([
      worker.ready.then(() => 'started' as const, () => 'refused' as const),
      worker.exited.then(() => 'refused' as const)
    ])
    expect(outcome, 'the worker started on a scratch directory another user owns').toBe('refused')
    expect(await worker.exited).not.toBe(0)
    expect(worker.stderr()).toContain(`concur-sandbox-${uid}`)
    expect(worker.stderr()).toContain('rm -rf')
  })
})
