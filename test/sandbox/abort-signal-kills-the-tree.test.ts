import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, processesWithMarker, removeDir, spec } from './helpers.ts'

describe('abort', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('aborting the signal kills the whole tree (including setsid children) and cleans up', async () => {
    const mark = marker('abort')
    const controller = new AbortController()
    let seen = -1
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', 'trap "" TERM; setsid sh -c \'trap "" TERM; while :; do sleep 1; done\' "$0" & echo running; while :; do sleep 1; done', mark],
      buildDir,
      limits: limits({ wallSeconds: 120 })
    }), {
      signal: controller.signal,
      onLog: chunk => {
        if (chunk.toString().includes('running')) {
          void processesWithMarker(mark).then(p => { seen = p.length; controller.abort() })
        }
      }
    })
    expect(seen).toBeGreaterThanOrEqual(2)
    expect(res.reason).toBe('aborted')
    await expectNoLeftovers(mark, res)
  })
})
