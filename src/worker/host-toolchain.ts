/**
 * The toolchain of the host a `host`-environment build runs on, as a worker
 * records it in its attestation (PROTOCOL.md §5.2, buildType v2): the
 * distribution (PRETTY_NAME of /etc/os-release) and the versions of the
 * toolchain packages dpkg knows (gcc, libc6, binutils, make, …). Read once
 * when the worker starts: a volunteer who upgrades gcc restarts the worker.
 *
 * Everything is reduced to what the record allows (printable ASCII, bounded
 * lengths, package names and versions of Debian's shapes): a host whose
 * os-release says something else still builds, with that field cut or
 * dropped, never with an attestation its own decoder refuses.
 */
import { readFile } from 'node:fs/promises'
import { release } from 'node:os'
import type { HostToolchain } from '../../protocol/index.ts'
import { HOST_PACKAGE_PATTERN, HOST_VERSION_PATTERN, MAX_HOST_PACKAGES } from '../../protocol/index.ts'
import { installedPackages } from '../env/dpkg.ts'
import { TOOLCHAIN_PACKAGES } from '../env/manifest.ts'

/** PRETTY_NAME (or NAME VERSION_ID) of an os-release text, printable ASCII, at most 128 characters */
export function osName (osRelease: string, fallback: string): string {
  const field = (k: string): string | undefined => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(osRelease)
    return m?.[1]?.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1')
  }
  const raw = field('PRETTY_NAME') ?? [field('NAME'), field('VERSION_ID')].filter(Boolean).join(' ')
  const printable = (raw === '' ? fallback : raw).replace(/[^\x20-\x7e]/g, '?').slice(0, 128).trim()
  return printable === '' ? 'unknown' : printable
}

/** the toolchain record of a host: its os-release and dpkg status texts (either may be missing) */
export function hostToolchainOf (osRelease: string | null, dpkgStatus: string | null, fallbackOs: string): HostToolchain {
  const byName = new Map((dpkgStatus == null ? [] : installedPackages(dpkgStatus)).map(p => [p.package, p.version]))
  const packages = TOOLCHAIN_PACKAGES
    .flatMap(name => {
      const version = byName.get(name)
      return version != null && HOST_PACKAGE_PATTERN.test(name) && HOST_VERSION_PATTERN.test(version) ? [{ name, version }] : []
    })
    .sort((a, b) => a.name < b.name ? -1 : 1)
    .slice(0, MAX_HOST_PACKAGES)
  return { os: osName(osRelease ?? '', fallbackOs), packages }
}

/** this machine's toolchain record */
export async function readHostToolchain (root = '/'): Promise<HostToolchain> {
  const read = async (path: string): Promise<string | null> => await readFile(`${root.replace(/\/$/, '')}${path}`, 'utf8').catch(() => null)
  return hostToolchainOf(await read('/etc/os-release') ?? await read('/usr/lib/os-release'), await read('/var/lib/dpkg/status'), `${process.platform} ${release()}`)
}
