/**
 * Sandbox self-test. Every mechanism is exercised, not inferred from a
 * binary being present: a real bwrap sandbox is started and asked what it
 * sees (uid, seccomp mode, network interfaces, a TCP connect back to a
 * listener this probe opens), and a real cgroup is created, joined and removed.
 */
import { sandboxScratchRoot } from './scratch.ts'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { access, constants, mkdtemp, rm, chmod, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findCgroupBackend } from './cgroup.ts'
import type { FindCgroupBackendOptions } from './cgroup.ts'
import { INSTALL_FAKETIME, INSTALL_TASKSET, detectHostTools } from './host-tools.ts'
import { runSandboxed } from './run.ts'
import { VARIED_TIMEZONES } from '../../protocol/index.ts'
import { seccompSupported } from './seccomp.ts'
import type { ProbeMechanism, SandboxResult, SandboxTier } from './types.ts'

export interface ProbeSandboxOptions extends FindCgroupBackendOptions {
  /** accept the rlimits-only 'namespaces' tier when cgroups are unusable */
  allowWeakTier?: boolean
  signal?: AbortSignal
}

export interface SandboxProbe {
  tier: SandboxTier | null
  mechanisms: {
    bwrap: ProbeMechanism
    userNamespaces: ProbeMechanism
    networkIsolation: ProbeMechanism
    uidDrop: ProbeMechanism
    seccomp: ProbeMechanism
    disableUserns: ProbeMechanism
    tmpfsSize: ProbeMechanism
    rlimits: ProbeMechanism
    priority: ProbeMechanism
    cgroups: ProbeMechanism
    /**
     * a build can run with its wall clock moved (SandboxSpec.clockOffsetSeconds,
     * libfaketime): what a worker needs to build jobs asking `vary: ['clock']`.
     * Not part of the tier: a worker without it declines those jobs only.
     */
    clockOffset: ProbeMechanism
    /**
     * a build can run with a hostname, a TZ zone and a CPU count of the
     * job's (SandboxSpec.hostname / timezone / cpus): what a worker needs to
     * build jobs asking `vary` 'hostname', 'timezone' and 'cpus'. timezone
     * also needs every zone of VARIED_TIMEZONES in the host's tzdata, cpus
     * util-linux taskset. Not part of the tier, like clockOffset.
     */
    hostname: ProbeMechanism
    timezone: ProbeMechanism
    cpuAffinity: ProbeMechanism
  }
  /** what to do when tier is null (or weaker than it could be) */
  remedy?: string
}

const PROBE_LIMITS = { memoryBytes: 256 * 1024 * 1024, cpus: 1, diskBytes: 16 * 1024 * 1024, wallSeconds: 30, processes: 64 }
/** the offset the clock probe asks for: a day, far beyond the seconds a sandbox takes to start */
const PROBE_CLOCK_OFFSET_SECONDS = 86_400

// $1 = the port of the probe's loopback listener
const PROBE_SCRIPT = [
  'echo "uid=$(id -u)"',
  'grep "^Seccomp:" /proc/self/status',
  'echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
  'if [ -x /bin/bash ]; then if /bin/bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then echo tcp=connected; else echo tcp=refused; fi; else echo tcp=untested; fi'
].join('\n')

const INSTALL_BWRAP = 'Install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora).'

function userNsRemedy (log: string, restrictSysctl: string | undefined): string {
  if (log.includes('setting up uid map: Permission denied') || restrictSysctl === '1') {
    return 'Unprivileged user namespaces are blocked by AppArmor (Ubuntu >= 23.10: "bwrap: setting up uid map: Permission denied"). ' +
      'Either run `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (persist it in /etc/sysctl.d/60-userns.conf), ' +
      'or install an AppArmor profile for bwrap: /etc/apparmor.d/bwrap containing ' +
      '`abi <abi/4.0>, include <tunables/global> profile bwrap /usr/bin/bwrap flags=(unconfined) { userns, }` then `sudo apparmor_parser -r /etc/apparmor.d/bwrap`.'
  }
  if (log.includes('No permissions to create new namespace') || log.includes('Operation not permitted')) {
    return 'User namespaces are disabled: run `sudo sysctl -w kernel.unprivileged_userns_clone=1` (older Debian) and/or `sudo sysctl -w user.max_user_namespaces=15000`.'
  }
  return `bwrap could not start a sandbox; its output was: ${log.trim().slice(-500)}`
}

function field (log: string, key: string): string | undefined {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(log)
  return m?.[1]?.trim()
}

/**
 * Runs `date +%s` in a sandbox with a clock offset and checks it is the real
 * time, read before and after the run, moved by the offset.
 */
async function probeClockOffset (buildDir: string, library: string, signal?: AbortSignal): Promise<ProbeMechanism> {
  const before = Math.floor(Date.now() / 1000)
  try {
    const res = await runSandboxed({
      argv: ['date', '+%s'],
      buildDir,
      env: {},
      environment: { kind: 'host' },
      limits: PROBE_LIMITS,
      tier: 'namespaces',
      clockOffsetSeconds: PROBE_CLOCK_OFFSET_SECONDS
    }, signal != null ? { signal } : {})
    const after = Math.ceil(Date.now() / 1000)
    const log = res.log.toString('utf8').trim()
    const seen = Number(/^\d+$/m.exec(log)?.[0]) - PROBE_CLOCK_OFFSET_SECONDS
    if (res.reason === 'exited' && res.exitCode === 0 && seen >= before && seen <= after) {
      return { ok: true, detail: `${library}: a build's \`date\` read the clock ${PROBE_CLOCK_OFFSET_SECONDS} s ahead (dynamically linked programs only)` }
    }
    return { ok: false, detail: `${library} did not move the build's clock (${res.reason} ${String(res.exitCode)}): ${log.slice(-300)}` }
  } catch (caught) {
    return { ok: false, detail: `${library}: ${String((caught as Error)?.message ?? caught)}` }
  }
}

/** what the variations probe asks for: a hostname of the varied shape, a zone 5:45 off UTC, one CPU */
const PROBE_HOSTNAME = 'concur-0123abcd'
const PROBE_ZONE = 'Asia/Kathmandu'

/**
 * Runs `uname -n; date +%z; nproc` in a sandbox with a hostname, a zone and
 * (with taskset) one CPU, and checks each is what the build saw. The zone
 * counts only when the host's tzdata holds every zone a job may be owed:
 * a host-environment build reads the host's /usr/share/zoneinfo.
 */
async function probeVariations (buildDir: string, taskset: boolean, signal?: AbortSignal): Promise<Pick<SandboxProbe['mechanisms'], 'hostname' | 'timezone' | 'cpuAffinity'>> {
  const missing: string[] = []
  for (const zone of VARIED_TIMEZONES) await access(join('/usr/share/zoneinfo', zone), constants.R_OK).catch(() => missing.push(zone))
  try {
    const res = await runSandboxed({
      argv: ['/bin/sh', '-c', 'echo "host=$(uname -n)"; echo "zone=$(date +%z)"; echo "cpus=$(nproc)"'],
      buildDir,
      env: {},
      environment: { kind: 'host' },
      limits: PROBE_LIMITS,
      tier: 'namespaces',
      hostname: PROBE_HOSTNAME,
      timezone: PROBE_ZONE,
      ...(taskset ? { cpus: 1 } : {})
    }, signal != null ? { signal } : {})
    const log = res.log.toString('utf8')
    const ran = res.reason === 'exited' && res.exitCode === 0
    const tail = `(${res.reason} ${String(res.exitCode)}): ${log.trim().slice(-300)}`
    const host = field(log, 'host')
    const zone = field(log, 'zone')
    const cpus = field(log, 'cpus')
    return {
      hostname: ran && host === PROBE_HOSTNAME ? { ok: true, detail: `bwrap --hostname: a build's uname -n read ${host}` } : { ok: false, detail: `the build's hostname was ${host ?? '?'} ${tail}` },
      timezone: missing.length > 0
        ? { ok: false, detail: `the host's tzdata lacks ${missing.join(', ')}: builds cannot be given those zones. Install tzdata (apt-get install tzdata)` }
        : ran && zone === '+0545' ? { ok: true, detail: `TZ=${PROBE_ZONE}: a build's date +%z read ${zone}` } : { ok: false, detail: `TZ=${PROBE_ZONE} read ${zone ?? '?'} ${tail}` },
      cpuAffinity: !taskset
        ? { ok: false, detail: `taskset not found: builds cannot run on fewer CPUs. ${INSTALL_TASKSET}` }
        : ran && cpus === '1' ? { ok: true, detail: 'taskset: a build\'s nproc read 1' } : { ok: false, detail: `taskset -c: nproc read ${cpus ?? '?'} ${tail}` }
    }
  } catch (caught) {
    const detail = String((caught as Error)?.message ?? caught)
    return { hostname: { ok: false, detail }, timezone: { ok: false, detail }, cpuAffinity: { ok: false, detail } }
  }
}

export async function probeSandbox (opts: ProbeSandboxOptions = {}): Promise<SandboxProbe> {
  const no = (detail: string): ProbeMechanism => ({ ok: false, detail })
  const tools = await detectHostTools({ refresh: true })
  const mechanisms: SandboxProbe['mechanisms'] = {
    bwrap: tools.bwrap != null ? { ok: true, detail: `${tools.bwrap} (${tools.bwrapVersion ?? '?'})` } : no('bwrap not found in /usr/bin, /bin, /usr/local/bin'),
    userNamespaces: no('not tested'),
    networkIsolation: no('not tested'),
    uidDrop: no('not tested'),
    seccomp: no('not tested'),
    disableUserns: tools.bwrapFeatures.disableUserns ? { ok: true, detail: 'bwrap --disable-userns' } : no('bwrap lacks --disable-userns (< 0.8): nested user namespaces stay possible (seccomp still blocks unshare/setns)'),
    tmpfsSize: tools.bwrapFeatures.tmpfsSize ? { ok: true, detail: 'bwrap --size for the /build tmpfs' } : no('bwrap lacks --size (< 0.6): no disk limit possible'),
    rlimits: tools.prlimit != null ? { ok: true, detail: `${tools.prlimit}: FSIZE, NOFILE, CORE=0` } : no('prlimit (util-linux) not found'),
    priority: { ok: tools.nice != null, detail: `${tools.nice != null ? 'nice -n 19' : 'no nice'}; ${tools.ionice != null ? 'ionice -c 3' : 'no ionice (I/O priority not lowered)'}` },
    cgroups: no('not tested'),
    clockOffset: tools.libfaketime != null ? no('not tested') : no(`libfaketime not found: builds cannot run with a clock offset. ${INSTALL_FAKETIME}`),
    hostname: no('not tested'),
    timezone: no('not tested'),
    cpuAffinity: tools.taskset != null ? no('not tested') : no(`taskset not found: builds cannot run on fewer CPUs. ${INSTALL_TASKSET}`)
  }
  if (tools.bwrap == null) {
    return { tier: null, mechanisms, remedy: INSTALL_BWRAP }
  }

  const restrictSysctl = (await readFile('/proc/sys/kernel/apparmor_restrict_unprivileged_userns', 'utf8').catch(() => undefined))?.trim()
  // before the listener: an unsafe scratch directory ends the probe with its remedy
  const scratch = await sandboxScratchRoot()
  const server = createServer(sock => { connections++; sock.destroy() })
  let connections = 0
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as AddressInfo).port
  const buildDir = await mkdtemp(join(scratch, 'probe-'))
  await chmod(buildDir, 0o755)
  const remedies: string[] = []
  let nsOk = false
  try {
    let res: SandboxResult | undefined
    try {
      res = await runSandboxed({
        argv: ['/bin/sh', '-c', PROBE_SCRIPT, 'probe', String(port)],
        buildDir,
        env: {},
        environment: { kind: 'host' },
        limits: PROBE_LIMITS,
        tier: 'namespaces'
      }, opts.signal != null ? { signal: opts.signal } : {})
    } catch (caught) {
      const err = caught as Error & { remedy?: string }
      mechanisms.userNamespaces = no(String(err?.message ?? err))
      remedies.push(err?.remedy ?? String(err?.message ?? err))
    }
    if (res != null) {
      const log = res.log.toString('utf8')
      if (res.reason !== 'exited' || res.exitCode !== 0) {
        mechanisms.userNamespaces = no(`sandbox did not start (${res.reason}): ${log.trim().slice(-300)}`)
        remedies.push(userNsRemedy(log, restrictSysctl))
      } else {
        mechanisms.userNamespaces = { ok: true, detail: `bwrap --unshare-all --unshare-user ran a command${restrictSysctl != null ? ` (apparmor_restrict_unprivileged_userns=${restrictSysctl})` : ''}` }
        const uid = field(log, 'uid')
        mechanisms.uidDrop = uid != null && uid !== '0'
          ? { ok: true, detail: `uid ${uid} inside${process.getuid?.() === 0 ? ', bwrap run as a fresh unprivileged host uid via setpriv' : ''}` }
          : no(`uid inside is ${uid ?? 'unknown'}`)
        const seccompMode = /^Seccomp:\s*(\d)/m.exec(log)?.[1]
        mechanisms.seccomp = seccompMode === '2'
          ? { ok: true, detail: 'BPF filter active (Seccomp: 2)' }
          : no(seccompSupported() ? `filter not active (Seccomp: ${seccompMode ?? '?'})` : `no filter for architecture ${process.arch}`)
        const ifaces = (field(log, 'ifaces') ?? '').split(/\s+/).filter(s => s !== '')
        const tcp = field(log, 'tcp')
        const isolated = ifaces.length > 0 && ifaces.every(i => i === 'lo') && tcp !== 'connected' && connections === 0
        mechanisms.networkIsolation = isolated
          ? { ok: true, detail: `interfaces inside: ${ifaces.join(',')}; TCP to a host loopback listener: ${tcp ?? '?'}, listener saw ${connections} connections` }
          : no(`interfaces inside: ${ifaces.join(',') || '?'}; tcp=${tcp ?? '?'}; listener saw ${connections} connections`)
        nsOk = isolated && mechanisms.uidDrop.ok && mechanisms.tmpfsSize.ok && mechanisms.rlimits.ok
        if (!isolated) remedies.push('The network namespace did not isolate the build; check that bwrap runs with --unshare-net.')
      }
    }

    if (nsOk && tools.libfaketime != null) mechanisms.clockOffset = await probeClockOffset(buildDir, tools.libfaketime, opts.signal)
    if (nsOk) Object.assign(mechanisms, await probeVariations(buildDir, tools.taskset != null, opts.signal))

    if (nsOk) {
      const found = await findCgroupBackend(opts)
      if (found.backend == null) {
        mechanisms.cgroups = no(found.detail)
      } else {
        try {
          const res2 = await runSandboxed({
            argv: ['true'],
            buildDir,
            env: {},
            environment: { kind: 'host' },
            limits: PROBE_LIMITS,
            tier: 'namespaces+cgroups'
          }, { cgroupBackend: found.backend, ...(opts.signal != null ? { signal: opts.signal } : {}) })
          mechanisms.cgroups = res2.reason === 'exited' && res2.exitCode === 0
            ? { ok: true, detail: `${found.detail}; a build joined, ran and was removed` }
            : no(`${found.detail}; test build: ${res2.reason} ${res2.log.toString('utf8').trim().slice(-300)}`)
        } catch (caught) {
          const err = caught as NodeJS.ErrnoException
          mechanisms.cgroups = no(`${found.detail}; ${String(err?.message ?? err)}`)
        }
      }
      if (!mechanisms.cgroups.ok) {
        remedies.push('cgroups unusable: run the worker as root (cgroup v1/v2), or inside a delegated cgroup v2, e.g. `systemd-run --user --scope -p Delegate=yes concur ...`' +
          (opts.allowWeakTier === true ? '' : ', or opt in to the weaker rlimits-only "namespaces" tier.'))
      }
    }
  } finally {
    server.close()
    await rm(buildDir, { recursive: true, force: true })
  }

  let tier: SandboxTier | null = null
  if (nsOk && mechanisms.cgroups.ok) tier = 'namespaces+cgroups'
  else if (nsOk && opts.allowWeakTier === true) tier = 'namespaces'
  const out: SandboxProbe = { tier, mechanisms }
  if (remedies.length > 0) out.remedy = remedies.join('\n')
  return out
}
