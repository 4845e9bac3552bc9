/**
 * A build that races the copy-out.
 *
 * After a build, the worker copies /build out of the sandbox and imports it
 * as the artifact it signs. The build's own code tries to make that copy
 * read host files: it leaves a helper running that swaps `out/d` (a
 * directory) with `x` (a symlink to a host directory the build cannot read
 * itself) in a tight loop with renameat2(RENAME_EXCHANGE), so that a copy
 * which checks `out/d` is a directory and then opens it reads the host's
 * directory instead. The helper is a static C program compiled here; in the
 * rootfs environment it is also the rootfs's /bin/sh, i.e. it replaces the
 * wrapper that runs first in the sandbox and may claim "exited 0" whenever
 * it likes.
 *
 * The defence: the tree is read only after every process of the build is
 * gone (pid namespace torn down, cgroup empty), from a handle on the /build
 * mount taken before any build code ran. So whatever state the helper left
 * is copied (a symlink stays a symlink), and no host byte can get in.
 *
 * Short mode: 200 attempts per tier; long mode (CONCUR_LONG=1): 1000.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findCgroupBackend, runSandboxed } from '../../src/sandbox/index.ts'
import type { CgroupBackend, SandboxTier } from '../../src/sandbox/index.ts'
import { limits, makeBuildDir, processesWithMarker, removeDir, sandboxTier } from '../sandbox/helpers.ts'
import { LONG } from './adversary.ts'

const run = promisify(execFile)
const ATTEMPTS = LONG ? 1000 : 200

// One program, two roles: the host-environment build command, and the
// rootfs's /bin/sh (which ignores the wrapper script it is handed).
const RACER_C = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int main (void) {
  const char *target = getenv("RACE_TARGET");
  const char *ms = getenv("RACE_MS");
  if (target == NULL) return 97;
  mkdir("/build/out", 0755);
  mkdir("/build/out/d", 0755);
  int fd = open("/build/out/d/secret", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, "decoy\n", 6) != 6) return 98;
  close(fd);
  unlink("/build/x");
  if (symlink(target, "/build/x") != 0) return 99;
  if (fork() == 0) {
    setsid();
    for (;;) syscall(SYS_renameat2, AT_FDCWD, "/build/out/d", AT_FDCWD, "/build/x", RENAME_EXCHANGE);
  }
  /* the wrapper's status line of old: "the build exited 0" (fd 5) */
  static const char msg[] = "started\nexited 0\n";
  if (write(5, msg, sizeof msg - 1) < 0) { /* no such channel: fine */ }
  struct timespec ts = { 0, (ms != NULL ? atol(ms) : 30) * 1000000L };
  nanosleep(&ts, NULL);
  return 0;
}
`

/** every regular file under `dir`, read without following any symlink */
async function filesUnder (dir: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  const st = await lstat(dir).catch(() => null)
  if (st == null || !st.isDirectory()) return out
  for (const name of await readdir(dir)) {
    const p = join(dir, name)
    const s = await lstat(p)
    if (s.isDirectory()) out.push(...await filesUnder(p))
    else if (s.isFile()) out.push(await readFile(p))
  }
  return out
}

describe('copy-out race: a helper swapping a directory for a symlink to the host', () => {
  let work = ''
  let secretDir = ''
  let secret = ''
  let racer = ''
  let buildDir = ''
  let rootfs = ''

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'concur-race-'))
    await chmod(work, 0o755)
    // the host directory the build wants in its artifact: root-only, so the
    // build (an unprivileged uid) cannot read it itself, only a copy by the worker could
    secretDir = join(work, 'host-secret')
    await mkdir(secretDir, { mode: 0o700 })
    secret = `HOST-SECRET-${randomBytes(8).toString('hex')}`
    await writeFile(join(secretDir, 'secret'), secret + '\n', { mode: 0o600 })
    // a real racing helper: compiled here, statically so that it runs as a rootfs's /bin/sh
    await writeFile(join(work, 'racer.c'), RACER_C)
    racer = join(work, 'racer')
    try {
      await run('cc', ['-static', '-O2', '-o', racer, join(work, 'racer.c')])
    } catch (err) {
      throw new Error(`this test needs a C compiler with static libc (apt-get install gcc libc6-dev): ${(err as Error).message}`)
    }
    buildDir = await makeBuildDir()
    await copyFile(racer, join(buildDir, 'racer'))
    await chmod(join(buildDir, 'racer'), 0o755)
    rootfs = await makeBuildDir()
    await mkdir(join(rootfs, 'bin'), { mode: 0o755 })
    await copyFile(racer, join(rootfs, 'bin', 'sh'))
    await chmod(join(rootfs, 'bin', 'sh'), 0o755)
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
    await removeDir(buildDir)
    await removeDir(rootfs)
  })

  const cases: Array<{ name: string, tier: SandboxTier, noFreezer?: boolean }> = [
    { name: 'namespaces', tier: 'namespaces' },
    { name: 'namespaces+cgroups', tier: 'namespaces+cgroups' },
    // cgroup v1 hosts need not mount the freezer: the copy must not rely on it
    { name: 'namespaces+cgroups without a cgroup freezer', tier: 'namespaces+cgroups', noFreezer: true }
  ]
  for (const { name, tier, noFreezer } of cases) {
    it(`${name}: ${ATTEMPTS} attempts, host and rootfs environments: no host byte reaches the output`, async () => {
      let cgroupBackend: CgroupBackend | undefined
      if (tier === 'namespaces+cgroups') {
        // the strong tier must be there: a containment test that silently does not run proves nothing
        expect(await sandboxTier()).toBe('namespaces+cgroups')
        const found = (await findCgroupBackend()).backend
        if (found == null) throw new Error('no cgroup backend')
        cgroupBackend = found
        if (noFreezer === true && found.kind === 'v1') {
          const { freezer: _, ...parents } = found.parents
          cgroupBackend = { kind: 'v1', parents }
        }
      }
      const mark = `concur-mark-race-${randomBytes(6).toString('hex')}`
      const outParent = await mkdtemp(join(work, 'out-'))
      let copied = 0
      let leaked = 0
      let swappedAtEnd = 0
      try {
        for (let i = 0; i < ATTEMPTS; i++) {
          const rootfsEnv = i % 4 !== 3 // three in four in the rootfs environment, where the wrapper is the attacker's
          const outputDir = join(outParent, String(i))
          const res = await runSandboxed({
            argv: rootfsEnv ? [mark] : ['./racer', mark],
            buildDir,
            outputDir,
            env: { RACE_TARGET: secretDir, RACE_MS: '30' },
            environment: rootfsEnv ? { kind: 'rootfs', root: rootfs } : { kind: 'host' },
            limits: limits({ wallSeconds: 20 }),
            tier
          }, cgroupBackend != null ? { cgroupBackend } : {}).catch((err: Error) => err)
          if (res instanceof Error) continue // a copy that refused (e.g. the tree changed under it) is not a leak
          const files = await filesUnder(join(outputDir, 'out'))
          if (files.length > 0) copied++
          if (files.some(f => f.includes(secret))) leaked++
          const d = await lstat(join(outputDir, 'out', 'd')).catch(() => null)
          if (d?.isSymbolicLink() === true) swappedAtEnd++
          await rm(outputDir, { recursive: true, force: true })
        }
      } finally {
        await rm(outParent, { recursive: true, force: true })
      }
      console.log(`${name}: ${ATTEMPTS} attempts, ${copied} outputs copied, ${swappedAtEnd} ended with out/d a symlink, ${leaked} leaked host bytes`)
      expect(leaked, 'attempts whose output held the host secret').toBe(0)
      // the attack ran: outputs were copied, and the helper was swapping
      expect(copied).toBeGreaterThan(0)
      expect(await processesWithMarker(mark)).toEqual([])
    })
  }
})
