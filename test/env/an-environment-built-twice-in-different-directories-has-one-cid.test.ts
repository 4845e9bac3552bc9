/**
 * `concur env create` is deterministic (issue 18): built twice, in different
 * directories and on "hosts" with a different /etc/hostname and
 * /etc/resolv.conf (which mmdebstrap copies from the host: seen making two
 * builds differ), from the same package versions, a Debian root gives one CID,
 * and `concur env show CID` reads its manifest back through a daemon. Short
 * mode: mmdebstrap's `essential` variant (~145 MB, ~11 s a build with the
 * .deb cache warm); long mode (CONCUR_LONG=1): `buildd` with texinfo and ed,
 * the build root a project's C and autotools builds use (~370 MB, ~18 s).
 *
 * Needs mmdebstrap (apt-get install mmdebstrap), root (for the second host's
 * mount namespace), and Debian's archive. Skipped where mmdebstrap is missing, but
 * never under CI (.ci/run installs it): a CI run without it fails here.
 */
import { execFileSync } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, describe, expect, it } from 'vitest'
import { addDirectory } from '../../src/content/index.ts'
import { ENV_MANIFEST_PATH, parseManifest } from '../../src/env/manifest.ts'
import { api, cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'

const LONG = process.env.CONCUR_LONG === '1'
const hasMmdebstrap = ((): boolean => { try { execFileSync('mmdebstrap', ['--version'], { stdio: 'ignore' }); return true } catch { return false } })()

describe('concur env create', () => {
  afterAll(async () => { await cleanupAll() })

  it.skipIf((!hasMmdebstrap || process.getuid?.() !== 0) && process.env.CI !== 'true')(`built twice in different directories and hosts (${LONG ? 'buildd + texinfo,ed' : 'essential'}), one CID; env show reads its manifest`, async () => {
    const home = await tempDir('concur-env-home-')
    const cache = await tempDir('concur-env-debs-')
    const variant = LONG ? ['--variant', 'buildd', '--packages', 'texinfo,ed'] : ['--variant', 'essential']
    const dirs = [join(await tempDir('concur-env-a-'), 'root'), join(await tempDir('concur-env-b-'), 'nested', 'root')]
    // the second build on "another machine": its own /etc/hostname and
    // /etc/resolv.conf (which mmdebstrap copies into the root), in a mount namespace
    const other = await tempDir('concur-env-machine-')
    await writeFile(join(other, 'hostname'), 'another-volunteers-laptop\n')
    // (the same name servers, or the archive could not be reached: only the file differs)
    await writeFile(join(other, 'resolv.conf'), `# another host's resolver configuration\n${await readFile('/etc/resolv.conf', 'utf8').catch(() => '')}options ndots:1\n`)
    const machines = [undefined, `mount --bind ${other}/hostname /etc/hostname && mount --bind ${other}/resolv.conf /etc/resolv.conf`]
    const cids: string[] = []
    for (const [i, dir] of dirs.entries()) {
      const mountNs = machines[i]
      const r = await runConcur(['env', 'create', '--suite', 'bookworm', ...variant, '-o', dir, '--deb-cache', cache], { home, timeoutMs: 600_000, ...(mountNs != null ? { mountNs } : {}) })
      expect(r.code, r.stderr).toBe(0)
      const out = r.json() as { dir: string, manifest: { installed: unknown[] } }
      expect(out.dir).toBe(dir)
      expect(out.manifest.installed.length).toBeGreaterThan(10)
      expect(await readdir(join(dir, 'dev'))).toEqual([])
      expect(await readFile(join(dir, 'etc', 'hostname'), 'utf8')).toBe('localhost\n')
      cids.push((await addDirectory(new MemoryBlockstore(), dir)).cid.toString())
    }
    // on a mismatch, say what differs
    const listing = (dir: string): string => execFileSync('find', ['.', '-printf', '%m %y %s %p\\n'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n').sort().join('\n')
    const differs = cids[1] === cids[0]
      ? ''
      : (() => {
          const [a, b] = [listing(dirs[0]!).split('\n'), new Set(listing(dirs[1]!).split('\n'))]
          const modes = a.filter(l => !b.has(l)).slice(0, 20).join('; ')
          try { execFileSync('diff', ['-rq', '--no-dereference', dirs[0]!, dirs[1]!], { encoding: 'utf8' }); return `modes or sizes: ${modes}` } catch (err) { return `${modes}\n${String((err as { stdout?: string }).stdout ?? err).slice(0, 4000)}` }
        })()
    expect(cids[1], differs).toBe(cids[0])
    const manifest = parseManifest(await readFile(join(dirs[0]!, ENV_MANIFEST_PATH)))
    expect(manifest.suite).toBe('bookworm')
    expect(manifest.installed.some(p => p.package === 'libc6')).toBe(true)
    if (LONG) expect(manifest.include).toEqual(['ed', 'texinfo'])

    // added to a node, and described from its CID alone
    const daemon = startConcur(['daemon'], { home })
    const ready = await daemon.ready as { api: string }
    const added = await api<{ cid: string }>(ready.api, 'POST', '/v1/content/add', { path: dirs[1], skipSpecial: true })
    expect(added.cid).toBe(cids[0])
    const shown = await runConcur(['env', 'show', added.cid], { home, json: false })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`^environment ${added.cid}\\nsuite +bookworm \\(${LONG ? 'buildd' : 'essential'}, `))
    expect(shown.stdout).toMatch(/\n {2}libc6 +2\.\d+/)
    // two mmdebstrap runs: ~1 minute each on an idle machine, over the suite's
    // 120 s default on a loaded one (seen: a run with other suites beside it)
  }, 1_260_000)
})
