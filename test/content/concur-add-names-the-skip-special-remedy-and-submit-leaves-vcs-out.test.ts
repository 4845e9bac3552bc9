/**
 * Through the CLI, as a person preparing a build environment or a project
 * would (issue 18): `concur add` of a root filesystem with special files in
 * /dev is refused with the remedy named, and `--skip-special` adds it,
 * saying what it left out; `concur submit` of a project with a `.git` and a
 * `.concurignore` says what it left out of the source.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'

describe('concur add and submit leave out what they must, and say so', () => {
  let home = ''

  beforeAll(async () => {
    home = await tempDir()
    const daemon = startConcur(['daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], { home })
    const ready = await daemon.ready
    // a policy, so that the daemon accepts a submit (no worker is needed to announce a job)
    expect((await runConcur(['trust', 'add', String(ready.did)], { home })).code).toBe(0)
    expect((await runConcur(['policy', 'set', '--threshold', '1'], { home })).code).toBe(0)
  })

  afterAll(async () => { await cleanupAll() })

  it('add: special files refused with the remedy, then skipped with --skip-special', async () => {
    const rootfs = join(await tempDir('concur-rootfs-'), 'root')
    await mkdir(join(rootfs, 'dev'), { recursive: true })
    await mkdir(join(rootfs, 'bin'), { recursive: true })
    await writeFile(join(rootfs, 'bin', 'true'), '')
    execFileSync('mkfifo', [join(rootfs, 'dev', 'initctl')])
    const refused = await runConcur(['add', rootfs], { home, json: false })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/Unsupported file type "fifo"/)
    expect(refused.stderr).toMatch(/concur add --skip-special/)
    const added = await runConcur(['add', rootfs, '--skip-special'], { home, json: false })
    expect(added.code).toBe(0)
    expect(added.stdout).toMatch(/^bafy/)
    expect(added.stdout).toMatch(/left out 1 special file\(s\): dev\/initctl/)
  })

  it('submit: the source leaves out .git and what .concurignore names, and says so', async () => {
    const dir = await tempDir('concur-project-')
    await mkdir(join(dir, '.git'), { recursive: true })
    await writeFile(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    await mkdir(join(dir, 'build'), { recursive: true })
    await writeFile(join(dir, 'build', 'cache'), 'local\n')
    await writeFile(join(dir, '.concurignore'), 'build/\n')
    await writeFile(join(dir, 'build.sh'), 'mkdir -p out; echo hi > out/x\n')
    const r = await runConcur(['submit', dir, '--out', 'out', '--', 'sh', 'build.sh'], { home, json: false })
    expect(r.code).toBe(0)
    expect(r.stderr + r.stdout).toMatch(/left out of the source: 2 entries \(version control directories, 1 rule\(s\) in \.concurignore\)/)
  })
})
