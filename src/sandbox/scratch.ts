import { chmod, mkdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A directory for what the sandbox must read after it dropped its uid (the
 * generated /etc, prepared inputs). `os.tmpdir()` follows $TMPDIR, which a
 * volunteer may point at a private 0700 directory that the unprivileged
 * sandbox uid cannot enter; then /tmp (world-searchable by convention) is
 * used instead. Each caller still makes its own mkdtemp dir (0700 → chmod'ed
 * as it needs) inside this one.
 */
export async function sandboxScratchRoot (): Promise<string> {
  let base = tmpdir()
  const st = await stat(base).catch(() => null)
  if (st == null || (st.mode & 0o001) === 0) base = '/tmp'
  const root = join(base, 'concur-sandbox')
  await mkdir(root, { recursive: true })
  // searchable but not listable: other users cannot enumerate build dirs
  await chmod(root, 0o711).catch(() => {})
  return root
}
