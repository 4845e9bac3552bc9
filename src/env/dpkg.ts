/** dpkg's view of a root filesystem: what is installed, at which version. */
import type { InstalledPackage } from './manifest.ts'

/**
 * Parse dpkg's status file: every package whose status is "install ok
 * installed", with its version and architecture, sorted by name. Pure: the
 * text is the environment's own /var/lib/dpkg/status.
 */
export function installedPackages (status: string): InstalledPackage[] {
  const out: InstalledPackage[] = []
  for (const para of status.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}: *(.*)$`, 'm').exec(para)?.[1]?.trim()
    const pkg = field('Package')
    const version = field('Version')
    const arch = field('Architecture')
    if (pkg == null || version == null || arch == null) continue
    if (field('Status') !== 'install ok installed') continue
    out.push({ package: pkg, version, architecture: arch })
  }
  return out.sort((a, b) => a.package < b.package ? -1 : a.package > b.package ? 1 : 0)
}
