import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir, cleanupAll } from '../helpers/processes.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

/**
 * The machine's own Node and npm (what a newcomer types `npx` and `npm ci`
 * with), not the Node 24 that npm scripts put first on PATH: the first Node
 * on PATH outside node_modules, with the npm beside it.
 */
function machineNpm (): { node: string, npmCli: string, npxCli: string } | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir.includes('node_modules') || !existsSync(join(dir, 'node'))) continue
    const node = realpathSync(join(dir, 'node'))
    for (const npmDir of [join(dirname(node), '..', 'lib', 'node_modules', 'npm'), '/usr/lib/node_modules/npm', '/usr/share/nodejs/npm']) {
      if (existsSync(join(npmDir, 'bin', 'npm-cli.js'))) {
        return { node, npmCli: join(npmDir, 'bin', 'npm-cli.js'), npxCli: join(npmDir, 'bin', 'npx-cli.js') }
      }
    }
  }
  return null
}

const npm = machineNpm()

// On a machine with Node 20 (the case the README promises), the first
// `npx concur …` printed ten `npm warn EBADENGINE` lines before concur's own
// output: npx runs on the machine's Node and checked our `engines` against it,
// while concur itself runs on the Node 24 that `npm ci` installs. concur now
// declares no engines (the bin checks its runtime and says what to do), and
// the README shows exactly what `npm ci` still prints.
describe.skipIf(npm == null)('on the machine\'s Node and npm', () => {
  afterAll(async () => { await cleanupAll() })
  // a newcomer's shell: none of the npm_* settings `npm test` passes its
  // children, no node_modules/.bin on PATH, an empty npm cache and npx directory
  const env = async (): Promise<NodeJS.ProcessEnv> => ({
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_'))),
    HOME: await tempDir('concur-newcomer-'),
    PATH: (process.env.PATH ?? '').split(delimiter).filter(d => !d.includes('node_modules')).join(delimiter),
    // npm's "new version available" notice is not a warning, and varies with the registry
    npm_config_update_notifier: 'false'
  })

  it('the first `npx concur` under a new $HOME prints nothing before concur\'s own output', async () => {
    const { node, npxCli } = npm as NonNullable<typeof npm>
    const r = await run(node, [npxCli, 'concur', '--help'], { cwd: ROOT, env: await env(), maxBuffer: 8 * 1024 * 1024 })
    expect(r.stderr).toBe('')
    expect(r.stdout.startsWith('concur — a peer-to-peer CI network')).toBe(true)
  })

  it('`npm ci` warns of exactly the packages the README lists, and of nothing else', async () => {
    const { node, npmCli } = npm as NonNullable<typeof npm>
    // --dry-run: the same checks of the same lockfile, nothing installed
    const r = await run(node, [npmCli, 'ci', '--dry-run', '--no-audit', '--no-fund'], { cwd: ROOT, env: await env(), maxBuffer: 8 * 1024 * 1024 })
    const out = `${r.stdout}\n${r.stderr}`
    const warned = [...out.matchAll(/EBADENGINE {3}package: '([^']+)'/g)].map(m => m[1]).sort()
    // every other warning npm prints is a real one and must not be there
    const others = out.split('\n').filter(l => l.startsWith('npm warn') && !l.startsWith('npm warn EBADENGINE'))
    expect(others).toEqual([])
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('### What you see first'), readme.indexOf('### Runtime'))
    const listed = [...section.matchAll(/EBADENGINE Unsupported engine \{ package: '([^']+)'/g)].map(m => m[1]).sort()
    // the README's list is what Node 20 (the machine's Node in CI) sees; Node 22 and later see none
    const { stdout: version } = await run(node, ['--version'])
    expect(warned).toEqual(Number(version.trim().slice(1).split('.')[0]) < 22 ? listed : [])
    // and concur itself is not among them
    expect(warned.filter(p => p?.startsWith('concur@') === true)).toEqual([])
  })
})
