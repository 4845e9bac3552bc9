/**
 * The short form of the convergence corpus (issue 18; `npm run bench --
 * --corpus` runs all six projects): GNU hello from Debian's source package,
 * built by three workers that differ in home, umask, TZ, locale, TMPDIR and
 * CPU limit, in one environment named by CID (bookworm buildd, made by
 * `concur env create`), k = 3: accepted 3/3. Its control is run too (plain
 * builds with the environment's toolchain under bwrap, in two directories,
 * then twice in one), so a failure would say whether the software or concur
 * is at fault.
 *
 * Needs mmdebstrap and dpkg-source, root, and Debian's archive (sources and
 * packages); skipped where mmdebstrap is missing, but never under CI.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { homedir } from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { CORPUS, buildInConcur, control, corpusEnvironment, corpusNetwork, corpusSources } from './corpus.ts'

const has = (cmd: string): boolean => { try { execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true } catch { return false } }
const ready = has('mmdebstrap') && has('dpkg-source') && process.getuid?.() === 0

describe('the convergence corpus, short form', () => {
  afterAll(async () => { await cleanupAll() })

  it.skipIf(!ready && process.env.CI !== 'true')('GNU hello: 3 differing workers in one shared environment agree 3/3, and its control is run', async () => {
    const hello = CORPUS.find(p => p.name === 'hello')!
    const cacheDir = process.env.CONCUR_CORPUS_CACHE ?? join(homedir(), '.cache', 'concur', 'corpus')
    const sources = await corpusSources(cacheDir, ['hello'])
    const envDir = await corpusEnvironment(cacheDir, await tempDir('concur-corpus-home-'))
    const c = await corpusNetwork(envDir, await tempDir('concur-corpus-scratch-'))
    const row = await buildInConcur(c, hello, sources.get('hello') as string, 900)
    expect(row.verdict, JSON.stringify(row.reasons)).toBe('accepted')
    expect(row.agreement).toBe('3/3 (1 CID)')
    const ctl = await control(hello, sources.get('hello') as string, envDir)
    // built twice in one directory, hello is reproducible: whatever differed would be concur's
    expect(ctl.sameDirectory).toBe(true)
  }, 1_200_000)
})
