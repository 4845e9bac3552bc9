/** A tiny root filesystem for rootfs-environment tests: Debian's busybox-static and a few of its applets. */
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export const BUSYBOX = '/bin/busybox'

/** `root`/bin/busybox with `tools` linked to it, and `root`/etc/os-release holding `osRelease` */
export async function busyboxRootfs (root: string, tools: string[], osRelease: string): Promise<string> {
  await mkdir(join(root, 'bin'), { recursive: true })
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'))
  await chmod(join(root, 'bin', 'busybox'), 0o755)
  for (const tool of tools) await symlink('busybox', join(root, 'bin', tool))
  await mkdir(join(root, 'etc'), { recursive: true })
  await writeFile(join(root, 'etc', 'os-release'), osRelease)
  return root
}
