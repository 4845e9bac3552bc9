import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed, seccompSupported } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

// ptrace(PTRACE_TRACEME) succeeds for any process unless something forbids it,
// so the only difference between the two runs below is the filter.
const PY = '/usr/bin/python3'
const PROBE = 'import ctypes,os\nl=ctypes.CDLL(None, use_errno=True)\nr=l.syscall(101, 0, 0, 0, 0)\nprint("ptrace", r, os.strerror(ctypes.get_errno()) if r < 0 else "ok")\nr=l.syscall(272, 0x10000000)\nprint("unshare", r, os.strerror(ctypes.get_errno()) if r < 0 else "ok")'

describe.skipIf(!seccompSupported() || !existsSync(PY))('seccomp (x86_64, needs /usr/bin/python3)', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('ptrace and unshare are refused with EPERM under the filter, and allowed without it', async () => {
    const mark = marker('seccomp')
    const s = await spec({ argv: [PY, '-c', PROBE, mark], buildDir })
    const filtered = await runSandboxed(s)
    const unfiltered = await runSandboxed(s, { seccomp: false })
    expect(text(filtered)).toContain('ptrace -1 Operation not permitted')
    expect(text(filtered)).toContain('unshare -1 Operation not permitted')
    expect(text(unfiltered)).toContain('ptrace 0 ok')
    await expectNoLeftovers(mark, filtered)
    await expectNoLeftovers(mark, unfiltered)
  })

  it('reports Seccomp: 2 inside', async () => {
    const mark = marker('seccomp-mode')
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'grep ^Seccomp: /proc/self/status', mark], buildDir }))
    expect(text(res)).toMatch(/Seccomp:\s+2/)
    await expectNoLeftovers(mark, res)
  })
})
