// The test network removes every namespace it made: on teardown (afterAll),
// on process exit after an uncaught throw, and — for a run killed outright,
// which runs no code at all — through the next run's sweep(), which only takes
// namespaces whose creating pid is dead.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createNetwork, jsonLines, listOurNamespaces, NETNS_TOOL, netnsSkipReason, sweep } from '../../helpers/netns.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

const HELPER = fileURLToPath(new URL('../../helpers/netns.ts', import.meta.url))
const SPEC = { segments: { public: {}, home: { nat: true } }, hosts: { boot: { segment: 'public' }, w: { segment: 'home' } }, links: { home: { delayMs: 5 } } }

/** A separate test process: builds the network, prints its prefix, then does `then`. */
function child (then: string): { lines: ReturnType<typeof jsonLines>, exited: Promise<number | null>, kill: () => void } {
  const code = `const { createNetwork } = await import(process.env.NETNS_HELPER)
const net = await createNetwork(${JSON.stringify(SPEC)})
console.log(JSON.stringify({ prefix: net.prefix }))
${then}`
  const c = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, NETNS_HELPER: HELPER }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>(resolve => c.once('close', resolve))
  return { lines: jsonLines(c), exited, kill: () => c.kill('SIGKILL') }
}

const ours = (prefix: string): string[] => listOurNamespaces().filter(n => n.startsWith(`${prefix}-`))

describe.skipIf(skip != null)('teardown', () => {
  it('removes every namespace it made, and the processes started in them', async () => {
    const net = await createNetwork(SPEC)
    expect(ours(net.prefix)).toHaveLength(4)
    const server = net.spawnIn('w', [process.execPath, NETNS_TOOL, 'echo', 'port=5000'])
    await jsonLines(server).until('listening', 'the echo server')
    const gone = new Promise(resolve => server.once('exit', resolve))
    await net.teardown()
    expect(ours(net.prefix)).toEqual([])
    await gone
  })

  it('runs on exit when a test process dies of an uncaught throw', async () => {
    const c = child('throw new Error(\'a test failed\')')
    const { prefix } = await c.lines.until<{ prefix: string }>('prefix', 'the throwing child')
    expect(await c.exited).not.toBe(0)
    expect(ours(prefix)).toEqual([])
  })

  it('leaves a killed run\'s namespaces to sweep(), which removes them once their pid is dead', async () => {
    const c = child('setInterval(() => {}, 1000)')
    const { prefix } = await c.lines.until<{ prefix: string }>('prefix', 'the child to be killed')
    // a live run's namespaces are not stale
    expect(sweep().filter(n => n.startsWith(`${prefix}-`))).toEqual([])
    expect(ours(prefix)).toHaveLength(4)
    c.kill()
    await c.exited
    const left = ours(prefix)
    expect(left).toHaveLength(4)
    expect(sweep().filter(n => n.startsWith(`${prefix}-`)).sort()).toEqual(left.sort())
    expect(ours(prefix)).toEqual([])
  })
})
