/**
 * Issue 19: a job may ask replicas to vary the hostname, the timezone and the
 * number of CPUs the build sees (SandboxSpec.hostname / timezone / cpus).
 * This proves each reaches what a build reads (`uname -n`, /etc/hostname,
 * `date +%Z` / `+%z`, `nproc`), that a build run without them sees the
 * normalised values (`concur`, UTC, every CPU the worker may use), and that
 * an environment without the zone's file fails the build instead of quietly
 * running it in UTC.
 */
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VARIED_TIMEZONES, hostnameFor, timezoneFor } from '../../protocol/index.ts'
import { allowedCpus, commandChain, parseCpuList, probeSandbox, runSandboxed, SandboxSpecError, SandboxUnavailableError, SANDBOX_HOSTNAME } from '../../src/sandbox/index.ts'
import { ZONE_MISSING } from '../../src/sandbox/command-chain.ts'
import { detectHostTools } from '../../src/sandbox/host-tools.ts'
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/index.ts'
import { expectNoLeftovers, limits, makeBuildDir, marker, removeDir, spec, text } from './helpers.ts'

const tools = await detectHostTools()
const CPUS = (await allowedCpus()).length
const BUSYBOX = '/bin/busybox'

const SCRIPT = [
  'echo "uname=$(uname -n)"',
  'echo "etc=$(cat /etc/hostname)"',
  'echo "hosts=$(grep -c "$(uname -n)" /etc/hosts)"',
  'echo "tz=$TZ"',
  'echo "zone=$(date +%Z)"',
  'echo "offset=$(date +%z)"',
  'echo "nproc=$(nproc)"'
].join('\n')

/** `key=value` lines of the log */
function reads (res: SandboxResult): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of text(res).matchAll(/^(\w+)=(.*)$/gm)) out[m[1]!] = m[2]!
  return out
}

async function run (buildDir: string, extra: Partial<SandboxSpec>): Promise<Record<string, string>> {
  const mark = marker('vary')
  const res = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', SCRIPT, mark], buildDir, ...extra }))
  expect(res.reason, text(res)).toBe('exited')
  expect(res.exitCode, text(res)).toBe(0)
  await expectNoLeftovers(mark, res)
  return reads(res)
}

/** the UTC offset `zone` has now, as `date +%z` prints it, from Node's ICU (not from the tzdata the sandbox reads) */
function offsetOf (zone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' }).formatToParts(new Date())
  const m = /^GMT(?:([+-])(\d\d):(\d\d))?$/.exec(parts.find(p => p.type === 'timeZoneName')!.value)!
  return m[1] == null ? '+0000' : `${m[1]}${m[2]}${m[3]}`
}

describe('a varied hostname, timezone and CPU count reach the build; an unvaried build sees the normalised ones', () => {
  let buildDir = ''
  beforeAll(async () => { buildDir = await makeBuildDir() })
  afterAll(async () => { await removeDir(buildDir) })

  it('without a variation: hostname concur, TZ=UTC (UTC, +0000), nproc = every CPU the worker may use', async () => {
    const seen = await run(buildDir, {})
    expect(seen).toMatchObject({ uname: SANDBOX_HOSTNAME, etc: SANDBOX_HOSTNAME, hosts: '1', tz: 'UTC', zone: 'UTC', offset: '+0000', nproc: String(CPUS) })
    expect(CPUS).toBe(availableParallelism())
  })

  it('a derived hostname is what uname -n, /etc/hostname and /etc/hosts say', async () => {
    const hostname = hostnameFor('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy')
    const seen = await run(buildDir, { hostname })
    expect(seen).toMatchObject({ uname: hostname, etc: hostname, hosts: '1', tz: 'UTC', zone: 'UTC' })
  })

  it('a zone a half hour off UTC: TZ=Asia/Kolkata, date +%Z says IST and +%z +0530', async () => {
    const seen = await run(buildDir, { timezone: 'Asia/Kolkata' })
    expect(seen).toMatchObject({ uname: SANDBOX_HOSTNAME, tz: 'Asia/Kolkata', zone: 'IST', offset: '+0530' })
  })

  it('every zone a worker may owe is in this host\'s tzdata and gives the build its offset, never +0000', async () => {
    const zone = timezoneFor('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 'bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy')
    for (const z of VARIED_TIMEZONES) {
      expect(existsSync(join('/usr/share/zoneinfo', z)), z).toBe(true)
      expect(offsetOf(z), z).not.toBe('+0000')
    }
    const seen = await run(buildDir, { timezone: zone })
    expect(seen.tz).toBe(zone)
    expect(seen.offset).toBe(offsetOf(zone))
  })

  it.skipIf(tools.taskset == null)('cpus: 1 → nproc says 1; cpus: every allowed CPU → nproc says all of them', async () => {
    expect((await run(buildDir, { cpus: 1 })).nproc).toBe('1')
    expect((await run(buildDir, { cpus: CPUS })).nproc).toBe(String(CPUS))
  })

  it('all three together, and the build still runs in its limits', async () => {
    const seen = await run(buildDir, { hostname: 'concur-0123abcd', timezone: 'Pacific/Chatham', ...(tools.taskset != null ? { cpus: 1 } : {}) })
    expect(seen).toMatchObject({ uname: 'concur-0123abcd', tz: 'Pacific/Chatham', offset: offsetOf('Pacific/Chatham') })
    if (tools.taskset != null) expect(seen.nproc).toBe('1')
  })

  it('more CPUs than the worker may use is refused before anything runs, naming why', async () => {
    await expect(runSandboxed(await spec({ argv: ['true'], buildDir, cpus: CPUS + 1 }))).rejects.toThrow(SandboxUnavailableError)
  })

  it('a hostname or zone that is not a plain name is refused as a spec error', async () => {
    for (const bad of [{ hostname: 'a b' }, { hostname: '-x' }, { hostname: 'x'.repeat(64) }, { timezone: '../../etc/passwd' }, { timezone: '/etc/localtime' }, { timezone: 'UTC;id' }, { cpus: 0 }, { cpus: 1.5 }]) {
      await expect(runSandboxed(await spec({ argv: ['true'], buildDir, ...bad })), JSON.stringify(bad)).rejects.toThrow(SandboxSpecError)
    }
  })

  it.skipIf(!existsSync(BUSYBOX))(`a rootfs without the zone's file fails the build (status ${ZONE_MISSING}, saying so) instead of running it in UTC; unvaried it runs`, async () => {
    const root = await makeBuildDir()
    try {
      await mkdir(join(root, 'bin'))
      await copyFile(BUSYBOX, join(root, 'bin', 'busybox'))
      await chmod(join(root, 'bin', 'busybox'), 0o755)
      for (const tool of ['sh', 'cat', 'cp', 'date', 'echo', 'uname', 'nproc', 'grep', 'mkdir', 'test', '[']) await symlink('busybox', join(root, 'bin', tool))
      const varied = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'date +%z'], buildDir, environment: { kind: 'rootfs', root }, timezone: 'Asia/Kolkata' }))
      expect(varied.reason).toBe('exited')
      expect(varied.exitCode).toBe(ZONE_MISSING)
      expect(text(varied)).toContain('concur-sandbox: this environment has no /usr/share/zoneinfo/Asia/Kolkata')
      const plain = await runSandboxed(await spec({ argv: ['/bin/sh', '-c', 'date +%z'], buildDir, environment: { kind: 'rootfs', root } }))
      expect(plain.exitCode, text(plain)).toBe(0)
      expect(text(plain)).toContain('+0000')
    } finally {
      await removeDir(root)
    }
  })

  it('the probe exercises each and reports it usable', async () => {
    const probe = await probeSandbox()
    expect(probe.mechanisms.hostname.ok, probe.mechanisms.hostname.detail).toBe(true)
    expect(probe.mechanisms.timezone.ok, probe.mechanisms.timezone.detail).toBe(true)
    expect(probe.mechanisms.cpuAffinity.ok, probe.mechanisms.cpuAffinity.detail).toBe(tools.taskset != null)
  })

  it('a host without taskset refuses a build asked to see fewer CPUs, naming the remedy; the chain pins with taskset -c before bwrap', () => {
    const input = {
      tools: { ...tools, bwrap: '/usr/bin/bwrap', prlimit: '/usr/bin/prlimit', taskset: undefined },
      spec: { argv: ['nproc'], buildDir, env: {}, environment: { kind: 'host' as const }, limits: limits(), cpus: 2 },
      cpuList: [0, 1],
      cgroupProcsFiles: null,
      dropTo: null,
      rootEntries: [],
      seccomp: false
    }
    let caught: unknown
    try { commandChain(input) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(SandboxUnavailableError)
    expect((caught as SandboxUnavailableError).remedy).toContain('util-linux')
    const chain = commandChain({ ...input, tools: { ...input.tools, taskset: '/usr/bin/taskset' } }).args
    const at = chain.indexOf('/usr/bin/taskset')
    expect(chain.slice(at, at + 3)).toEqual(['/usr/bin/taskset', '-c', '0,1'])
    expect(at).toBeLessThan(chain.indexOf('/usr/bin/bwrap'))
    // a CPU list of the wrong length is refused, never silently used
    expect(() => commandChain({ ...input, tools: { ...input.tools, taskset: '/usr/bin/taskset' }, cpuList: [0] })).toThrow(SandboxUnavailableError)
    // without a CPU count no taskset
    expect(commandChain({ ...input, spec: { ...input.spec, cpus: undefined } }).args).not.toContain('/usr/bin/taskset')
  })

  it('parseCpuList reads the kernel\'s list syntax', () => {
    expect(parseCpuList('0-1\n')).toEqual([0, 1])
    expect(parseCpuList('0,2-4,7')).toEqual([0, 2, 3, 4, 7])
    expect(() => parseCpuList('0-x')).toThrow(SandboxUnavailableError)
  })
})
