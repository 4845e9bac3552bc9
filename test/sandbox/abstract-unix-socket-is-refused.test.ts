import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { acceptQueued, connectionsReach, expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

// Abstract unix sockets are scoped by network namespace, not by the
// filesystem: only --unshare-net keeps a build away from e.g. a D-Bus or X11
// abstract socket of the host. python3 is the connector (no tool in coreutils
// or dash can open an AF_UNIX socket).
const PY = '/usr/bin/python3'
const CONNECT = 'import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\ntry:\n s.connect("\\0"+sys.argv[1]); print("unix=connected")\nexcept OSError as e: print("unix=refused", e)'

describe.skipIf(!existsSync(PY))('abstract unix sockets (needs /usr/bin/python3)', () => {
  let server: Server
  let connections = 0
  const name = `concur-test-${randomBytes(6).toString('hex')}`
  let buildDir = ''

  beforeAll(async () => {
    server = createServer(sock => { connections++; sock.destroy() })
    await new Promise<void>(resolve => server.listen({ path: `\0${name}` }, resolve))
    buildDir = await makeBuildDir()
  })
  afterAll(async () => {
    server.close()
    await removeDir(buildDir)
  })

  it('the connector reaches the abstract socket from the host (control)', async () => {
    const out = spawnSync(PY, ['-c', CONNECT, name], { encoding: 'utf8' })
    expect(out.stdout).toContain('unix=connected')
    await connectionsReach(server, () => connections, 1)
    expect(connections).toBe(1)
  })

  it('a build cannot connect to the host abstract socket', async () => {
    const mark = marker('abstract')
    const before = connections
    const res = await runSandboxed(await spec({ argv: [PY, '-c', CONNECT, name, mark], buildDir }))
    expect(res.reason).toBe('exited')
    expect(text(res)).toContain('unix=refused')
    await acceptQueued()
    expect(connections).toBe(before)
    await expectNoLeftovers(mark, res)
  })
})
