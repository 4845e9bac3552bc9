/**
 * Executable bits survive (issue 18): a project whose build command is its
 * own `./configure` (no `sh` in front) builds on real workers (before: status
 * 126, "Permission denied", since every source file was exported 0644), and
 * the program it outputs, fetched with `concur get`, runs (before: the
 * accepted `usr/bin/hello` could not be executed).
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'

const CONFIGURE = `#!/bin/sh
set -e
mkdir -p out/usr/bin
printf '#!/bin/sh\\necho hello from a built program\\n' > out/usr/bin/hello
chmod +x out/usr/bin/hello
echo 'a data file' > out/README
`

describe('executable bits, from the source to the fetched artifact', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 })
  })

  afterAll(async () => { await cleanupAll() })

  it('./configure runs as the build command, and the fetched usr/bin/hello runs', async () => {
    const dir = await tempDir('concur-exec-')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'configure'), CONFIGURE)
    await chmod(join(dir, 'configure'), 0o755)
    await writeFile(join(dir, 'label'), `exec-${process.pid}\n`)
    const r = await submit(net.requester, dir, ['--out', 'out', '--replicas', '2', '--timeout', '120'], ['./configure'])
    expect(r.view.record.status).toBe('accepted')
    expect(r.code).toBe(0)
    const artifact = r.view.record.artifact!
    const out = join(await tempDir('concur-get-'), 'artifact')
    const got = await runConcur(['get', artifact, '-o', out], { home: net.requester.home })
    expect(got.code).toBe(0)
    const run = await promisify(execFile)(join(out, 'usr', 'bin', 'hello'))
    expect(run.stdout).toBe('hello from a built program\n')
    await expect(promisify(execFile)(join(out, 'README'))).rejects.toMatchObject({ code: 'EACCES' })
  })
})
