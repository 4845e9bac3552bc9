import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { acceptQueued, connectionsReach, expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

// bash's /dev/tcp is the connector: bash is on every Debian host (and the
// sandbox binds the host /usr). python3 is tried as well when present.
const CONNECT = 'if /bin/bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then echo bash=connected; else echo bash=refused; fi\n' +
  'if [ -x /usr/bin/python3 ]; then /usr/bin/python3 -c "import socket,sys\ntry:\n socket.create_connection((\'127.0.0.1\', int(sys.argv[1])), timeout=3); print(\'python=connected\')\nexcept OSError as e: print(\'python=refused\', e)" "$1"; fi'

describe('network', () => {
  let server: Server
  let connections = 0
  let port = 0
  let buildDir = ''

  beforeAll(async () => {
    server = createServer(sock => { connections++; sock.destroy() })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
    buildDir = await makeBuildDir()
  })
  afterAll(async () => {
    server.close()
    await removeDir(buildDir)
  })

  it('the connect command reaches the listener when run on the host (control)', async () => {
    expect(existsSync('/bin/bash')).toBe(true)
    const before = connections
    const out = spawnSync('/bin/sh', ['-c', CONNECT, 'control', String(port)], { encoding: 'utf8' })
    expect(out.stdout).toContain('bash=connected')
    await connectionsReach(server, () => connections, before + (existsSync('/usr/bin/python3') ? 2 : 1))
    expect(connections).toBe(before + (existsSync('/usr/bin/python3') ? 2 : 1))
  })

  it('a build cannot connect to a TCP listener on the host loopback', async () => {
    const mark = marker('tcp')
    const before = connections
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', CONNECT, mark, String(port)], buildDir }))
    const log = text(res)
    expect(res.reason).toBe('exited')
    expect(log).toContain('bash=refused')
    expect(log).not.toContain('connected')
    if (existsSync('/usr/bin/python3')) expect(log).toContain('python=refused')
    await acceptQueued()
    expect(connections).toBe(before)
    await expectNoLeftovers(mark, res)
  })
})
