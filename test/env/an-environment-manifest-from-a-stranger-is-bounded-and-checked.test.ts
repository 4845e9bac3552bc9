/**
 * What `concur env show` reads comes from a DAG anyone can make: the
 * manifest is found by path, read within MAX_MANIFEST_BYTES and checked field
 * by field (parseManifest); a tree without one, or with one that lies about
 * its size or fields, is refused with ERR_BAD_ENV_MANIFEST, never read
 * whole. And the pure parts of `env create`: dpkg's status parsed, the
 * canonical manifest bytes, a root normalised (/dev emptied, the host's
 * hostname and resolv.conf replaced, special files gone).
 */
import { execFileSync } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { describe, expect, it, afterAll } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
import { createEnvironment, installedPackages, normalizeRoot } from '../../src/env/create.ts'
import { ENV_MANIFEST_PATH, ENV_MANIFEST_TYPE, MAX_MANIFEST_BYTES, manifestBytes, parseManifest, toolchainOf } from '../../src/env/manifest.ts'
import type { EnvManifest } from '../../src/env/manifest.ts'
import { readEnvironment } from '../../src/env/show.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'

const manifest: EnvManifest = {
  _type: ENV_MANIFEST_TYPE,
  suite: 'bookworm',
  variant: 'buildd',
  include: ['texinfo', 'ed'],
  architecture: 'amd64',
  sourceDateEpoch: 315532800,
  installed: [{ package: 'make', version: '4.3-4.1', architecture: 'amd64' }, { package: 'gcc', version: '4:12.2.0-3', architecture: 'amd64' }, { package: 'libc6', version: '2.36-9+deb12u14', architecture: 'amd64' }]
}

async function treeWith (files: Record<string, string | Uint8Array>): Promise<{ bs: MemoryBlockstore, cid: string }> {
  const dir = await tempDir('concur-env-manifest-')
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  const bs = new MemoryBlockstore()
  return { bs, cid: (await addDirectory(bs, dir)).cid.toString() }
}

describe('an environment manifest', () => {
  afterAll(async () => { await cleanupAll() })

  it('round-trips canonically: sorted lists, fixed key order, so the same inputs give the same bytes', () => {
    const a = manifestBytes(manifest)
    const b = manifestBytes({ ...manifest, include: ['ed', 'texinfo'], installed: [...manifest.installed].reverse() })
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true)
    const back = parseManifest(a)
    expect(back.include).toEqual(['ed', 'texinfo'])
    expect(toolchainOf(back).map(p => p.package)).toEqual(['gcc', 'libc6', 'make'])
  })

  it('is read by path from a DAG, and shown with its toolchain', async () => {
    const { bs, cid } = await treeWith({ [ENV_MANIFEST_PATH]: manifestBytes(manifest), 'bin/sh': 'x' })
    const v = await readEnvironment(bs, cid)
    expect(v.manifest.suite).toBe('bookworm')
    expect(v.toolchain.find(p => p.package === 'libc6')?.version).toBe('2.36-9+deb12u14')
  })

  it('refuses a tree without one, an oversized one, and one whose fields are not what they say', async () => {
    const cases: Array<[string, Record<string, string | Uint8Array>, RegExp]> = [
      ['no manifest', { 'bin/sh': 'x' }, /has no etc\/concur-environment.json/],
      ['a directory where the manifest goes', { [`${ENV_MANIFEST_PATH}/x`]: 'x' }, /is a directory, not a file/],
      ['over the size bound', { [ENV_MANIFEST_PATH]: new Uint8Array(MAX_MANIFEST_BYTES + 1) }, /over \d+/],
      ['not JSON', { [ENV_MANIFEST_PATH]: 'not json' }, /not UTF-8 JSON/],
      ['another type', { [ENV_MANIFEST_PATH]: JSON.stringify({ ...manifest, _type: 'x' }) }, /"_type"/],
      ['a version with a newline (would forge a line)', { [ENV_MANIFEST_PATH]: JSON.stringify({ ...manifest, installed: [{ package: 'gcc', version: '1\nenvironment bafy', architecture: 'amd64' }] }) }, /"version"/],
      ['a package name with escapes', { [ENV_MANIFEST_PATH]: JSON.stringify({ ...manifest, include: ['\u001b[31mred'] }) }, /"include"/]
    ]
    for (const [what, files, message] of cases) {
      const { bs, cid } = await treeWith(files)
      const err = await readEnvironment(bs, cid).then(() => null, (e: Error & { code?: string }) => e)
      expect(err?.code, what).toBe('ERR_BAD_ENV_MANIFEST')
      expect(err?.message, what).toMatch(message)
    }
  })

  it('lists installed packages from dpkg\'s status, not those removed or half-installed', () => {
    const status = [
      'Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1',
      'Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0',
      'Package: bash\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: 5.2.15-2+b7\nDescription: GNU Bourne Again SHell\n multi-line'
    ].join('\n\n') + '\n'
    expect(installedPackages(status)).toEqual([{ package: 'bash', version: '5.2.15-2+b7', architecture: 'amd64' }, { package: 'zlib1g', version: '1:1.2.13.dfsg-1', architecture: 'amd64' }])
  })

  it('normalises a root: /dev emptied, hostname and resolv.conf replaced, special files gone', async () => {
    const root = await tempDir('concur-env-root-')
    await mkdir(join(root, 'dev'))
    await mkdir(join(root, 'etc'))
    await mkdir(join(root, 'run'))
    await symlink('/proc/self/fd', join(root, 'dev', 'fd'))
    execFileSync('mkfifo', [join(root, 'dev', 'initctl')])
    execFileSync('mkfifo', [join(root, 'run', 'pipe')])
    // mode too: 0755 on some hosts (the executable bit is in the CID)
    await writeFile(join(root, 'etc', 'hostname'), 'the-volunteers-laptop\n', { mode: 0o755 })
    await writeFile(join(root, 'etc', 'resolv.conf'), 'nameserver 10.1.2.3\n')
    expect(await normalizeRoot(root)).toBe(1)
    expect(await readdir(join(root, 'dev'))).toEqual([])
    expect(await readdir(join(root, 'run'))).toEqual([])
    expect(await readFile(join(root, 'etc', 'hostname'), 'utf8')).toBe('localhost\n')
    expect(await readFile(join(root, 'etc', 'resolv.conf'), 'utf8')).toBe('')
    expect((await stat(join(root, 'etc', 'hostname'))).mode & 0o777).toBe(0o644)
  })

  it('env create refuses, before running anything, arguments that would reach mmdebstrap\'s command line unchecked', async () => {
    const out = join(await tempDir('concur-env-args-'), 'root')
    const never = '/nonexistent/mmdebstrap'
    const cases: Array<[string, Parameters<typeof createEnvironment>[0], string]> = [
      ['a suite with an option in it', { suite: '--variant=extract', out, mmdebstrap: never }, 'ERR_ENV_ARGS'],
      ['a package list with a shell word', { suite: 'bookworm', include: ['ed;rm'], out, mmdebstrap: never }, 'ERR_ENV_ARGS'],
      ['a mirror that is not a URL', { suite: 'bookworm', mirror: '-o APT::X=1', out, mmdebstrap: never }, 'ERR_ENV_ARGS'],
      ['a .deb cache path with a quote (it goes between quotes in a hook line)', { suite: 'bookworm', debCache: join(out, '..', 'it\'s'), out, mmdebstrap: never }, 'ERR_ENV_ARGS'],
      ['an output directory that is not empty', { suite: 'bookworm', out: join(out, '..'), mmdebstrap: never }, 'ERR_ENV_TARGET']
    ]
    await writeFile(join(out, '..', 'something'), 'x')
    for (const [what, args, code] of cases) {
      const err = await createEnvironment(args).then(() => null, (e: Error & { code?: string }) => e)
      expect(err?.code, what).toBe(code)
    }
  })
})
