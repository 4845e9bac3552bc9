import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSandboxed } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

describe('normalization', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('env, hostname, uid, umask and cwd are the same on every worker', async () => {
    const mark = marker('norm')
    const script = [
      'echo "TZ=$TZ"', 'echo "LC_ALL=$LC_ALL"', 'echo "HOME=$HOME"', 'echo "USER=$USER"', 'echo "LOGNAME=$LOGNAME"',
      'echo "PYTHONHASHSEED=$PYTHONHASHSEED"', 'echo "PATH=$PATH"', 'echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"',
      'echo "HOST_SECRET=${HOST_SECRET-unset}"',
      'echo "hostname=$(hostname)"', 'echo "uid=$(id -u)"', 'echo "gid=$(id -g)"', 'echo "whoami=$(id -un)"',
      'echo "umask=$(umask)"', 'echo "cwd=$(pwd)"',
      'touch f; echo "mode=$(stat -c %a f)"',
      'echo "home-writable=$(touch "$HOME/x" && echo yes)"'
    ].join('\n')
    process.env.HOST_SECRET = 'must-not-leak'
    const res = await runSandboxed(await spec({
      argv: ['/bin/sh', '-c', script, mark],
      buildDir,
      // the caller may add variables but not override the normalized ones
      env: { SOURCE_DATE_EPOCH: '1700000000', TZ: 'Europe/Paris', PATH: '/evil' }
    }))
    delete process.env.HOST_SECRET
    const log = text(res)
    expect(res.reason).toBe('exited')
    expect(res.exitCode).toBe(0)
    const want = {
      TZ: 'UTC',
      LC_ALL: 'C.UTF-8',
      HOME: '/tmp/home',
      USER: 'builder',
      LOGNAME: 'builder',
      PYTHONHASHSEED: '0',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      SOURCE_DATE_EPOCH: '1700000000',
      HOST_SECRET: 'unset',
      hostname: 'concur',
      uid: '1000',
      gid: '1000',
      whoami: 'builder',
      umask: '0022',
      cwd: '/build',
      mode: '644',
      'home-writable': 'yes'
    }
    for (const [k, v] of Object.entries(want)) expect(log).toContain(`${k}=${v}\n`)
    await expectNoLeftovers(mark, res)
  })
})
