/**
 * A process of another local user reaching into a running build.
 *
 * A root worker runs each build as an unprivileged host uid. If that uid is
 * one other processes on the host also run as (65534, "nobody", is the usual
 * choice), those processes own the build's user namespace: they can open
 * /proc/<pid>/root/build of the running build, keep the handle past the
 * build's end and change its output while the worker copies it (or read a
 * job's inputs). The defence: every build runs as its own host uid and gid,
 * drawn at random from a range no account uses.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { access } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { makeBuildDir, marker, processesWithMarker, removeDir, spec } from '../sandbox/helpers.ts'

const run = promisify(execFile)

describe('a host process of the nobody user and a running build', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it.skipIf(process.getuid?.() !== 0)('cannot open the build\'s /build (root worker)', async () => {
    const mark = marker('reach')
    const ac = new AbortController()
    const running = runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'mkdir out && echo mine > out/f && sleep 30', mark], buildDir }), { signal: ac.signal })
    try {
      // the build's processes: those whose root has our /build in it
      const inside: number[] = []
      for (let i = 0; i < 500 && inside.length === 0; i++) {
        for (const pid of await processesWithMarker(mark)) {
          if (await access(`/proc/${pid}/root/build/out/f`).then(() => true, () => false)) inside.push(pid)
        }
        if (inside.length === 0) await new Promise(resolve => setTimeout(resolve, 20))
      }
      expect(inside.length, 'found the running build (as root)').toBeGreaterThan(0)
      const reached: string[] = []
      for (const pid of inside) {
        const r = await run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'cat', `/proc/${pid}/root/build/out/f`])
          .then(x => x.stdout, () => null)
        if (r != null) reached.push(`pid ${pid}: ${r.trim()}`)
      }
      expect(reached, 'a nobody process read the running build\'s files').toEqual([])
    } finally {
      ac.abort()
      await running.catch(() => {})
    }
    expect(await processesWithMarker(mark)).toEqual([])
  })
})
