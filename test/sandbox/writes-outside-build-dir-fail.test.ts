import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

describe('filesystem', () => {
  let buildDir = ''
  beforeAll(async () => {
    buildDir = await makeBuildDir()
    writeFileSync(join(buildDir, 'source.txt'), 'source\n')
  })
  afterAll(async () => { await removeDir(buildDir) })

  it('writes outside /build fail, and nothing the build writes reaches the host', async () => {
    const mark = marker('writes')
    const name = `${mark}.txt`
    // read-only or absent inside: each must fail
    const mustFail = ['/usr', '/usr/bin', '/etc', '/', '/bin', '/.concur/in', homedir(), '/var', '/root']
    // private tmpfs inside: the write may succeed but must not reach the host
    const hostPaths = [...mustFail, '/tmp', '/var/tmp', '/dev/shm']
    const script = [
      ...mustFail.map(d => `if echo x > "${d}/$0" 2>/dev/null; then echo "wrote ${d}"; else echo "denied ${d}"; fi`),
      'echo x > /tmp/"$0" && echo "tmp-private-ok"',
      // control: the same write pattern succeeds where writing is allowed
      'if echo x > "/build/$0" 2>/dev/null; then echo "wrote /build"; else echo "denied /build"; fi',
      'echo built > /build/out.txt && echo "build-ok"',
      // the input bind is read-only even for renames/deletes
      'rm -f /.concur/in/source.txt 2>/dev/null; echo "input-still:$(cat /.concur/in/source.txt)"'
    ].join('\n')
    const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', script, name], buildDir }))
    const log = text(res)
    expect(res.reason).toBe('exited')
    for (const d of mustFail) {
      expect(log).toContain(`denied ${d}`)
      expect(log).not.toContain(`wrote ${d}\n`)
    }
    expect(log).toContain('wrote /build\n')
    expect(log).toContain('tmp-private-ok')
    expect(log).toContain('build-ok')
    expect(log).toContain('input-still:source')
    for (const d of hostPaths) expect(existsSync(join(d, name)), join(d, name)).toBe(false)
    // the host input dir is untouched: no out.txt, source.txt still there
    expect(readdirSync(buildDir)).toEqual(['source.txt'])
    await expectNoLeftovers(mark, res)
  })
})
