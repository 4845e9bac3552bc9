import { existsSync } from 'node:fs'
import { writeFile, readFile, readlink, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'
import { BUSYBOX, busyboxRootfs } from '../helpers/rootfs.ts'

describe('environments', () => {
  let buildDir = ''
  let outParent = ''
  beforeAll(async () => {
    buildDir = await makeBuildDir()
    await writeFile(join(buildDir, 'input.txt'), 'b\na\nc\n')
    outParent = await makeBuildDir()
  })
  afterAll(async () => {
    await removeDir(buildDir)
    await removeDir(outParent)
  })

  it('a host-environment build runs /bin/sh and coreutils and its /build is copied out', async () => {
    const mark = marker('hostenv')
    const outputDir = join(outParent, 'host-out')
    const script = 'sort input.txt > sorted.txt && sha256sum sorted.txt && mkdir -p sub && echo deep > sub/f && ln -s /etc/passwd escape && echo host-ok'
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, mark], buildDir, outputDir }))
    expect(res.reason).toBe('exited')
    expect(res.exitCode).toBe(0)
    expect(text(res)).toContain('host-ok')
    expect(await readFile(join(outputDir, 'sorted.txt'), 'utf8')).toBe('a\nb\nc\n')
    expect(await readFile(join(outputDir, 'sub', 'f'), 'utf8')).toBe('deep\n')
    // the link is recreated, not followed: the host's /etc/passwd was not copied
    expect(await readlink(join(outputDir, 'escape'))).toBe('/etc/passwd')
    expect((await readdir(outputDir)).sort()).toEqual(['escape', 'input.txt', 'sorted.txt', 'sub'])
    await expectNoLeftovers(mark, res)
  })

  it.skipIf(!existsSync(BUSYBOX))('a rootfs-environment build runs with a busybox-static directory as / (needs busybox-static)', async () => {
    const root = await makeBuildDir()
    try {
      await busyboxRootfs(root, ['sh', 'echo', 'cat', 'cp', 'ls', 'id', 'hostname', 'sort', 'mkdir', 'rm', 'sleep', 'test', 'uname'], 'ID=concur-busybox-test\n')
      const mark = marker('rootfs')
      const script = 'cat /etc/os-release; sort input.txt; echo "usr=$(ls /usr 2>&1 | head -1)"; busybox | head -1; echo rootfs-ok'
      const res = await runSandboxed(await spec({
        argv: ['/bin/sh', '-c', script, mark],
        buildDir,
        environment: { kind: 'rootfs', root }
      }))
      const log = text(res)
      expect(res.reason).toBe('exited')
      expect(res.exitCode).toBe(0)
      expect(log).toContain('ID=concur-busybox-test')
      expect(log).toContain('a\nb\nc\n')
      expect(log).toContain('BusyBox')
      // the host /usr is not there: only the rootfs is
      expect(log).toMatch(/usr=.*(No such file|can't access)/)
      expect(log).toContain('rootfs-ok')
      await expectNoLeftovers(mark, res)
    } finally {
      await removeDir(root)
    }
  })
})
