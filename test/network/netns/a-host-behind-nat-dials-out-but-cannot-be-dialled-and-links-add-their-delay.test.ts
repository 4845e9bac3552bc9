// A worker at home sits behind its router's NAT: it can dial the public
// bootstrap node, which sees the router's address, but nobody outside can dial
// it. Its home's uplink adds 100 ms each way; a second home's uplink adds none,
// the baseline measured in the same run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetwork, jsonLines, NETNS_TOOL, netnsSkipReason } from '../../helpers/netns.ts'
import type { JsonLines, TestNetwork } from '../../helpers/netns.ts'

const skip = netnsSkipReason()
if (skip != null) console.warn(`netns tests ${skip}`)

const DELAY = 100
const JITTER = 10

describe.skipIf(skip != null)('a host behind NAT', () => {
  let net: TestNetwork
  let echo: JsonLines

  beforeAll(async () => {
    net = await createNetwork({
      segments: { public: {}, homeA: { nat: true }, homeB: { nat: true } },
      hosts: { boot: { segment: 'public' }, w1: { segment: 'homeA' }, w2: { segment: 'homeB' } },
      links: { homeA: { delayMs: DELAY, jitterMs: JITTER }, homeB: { delayMs: 0 } }
    })
    console.log(`netns link mode: ${net.mode}`)
    echo = jsonLines(net.spawnIn('boot', [process.execPath, NETNS_TOOL, 'echo', 'port=5000']))
    await echo.until('listening', 'the public echo server')
  })
  afterAll(async () => { await net?.teardown() })

  const tool = async (host: string, ...args: string[]): Promise<Record<string, unknown>> => {
    const r = await net.run(host, [process.execPath, NETNS_TOOL, ...args], { timeoutMs: 60_000 })
    const line = r.stdout.trim().split('\n').pop() ?? ''
    try { return JSON.parse(line) as Record<string, unknown> } catch { throw new Error(`${args[0]} in ${host} printed ${r.stdout} ${r.stderr}`) }
  }

  it('dials out, and the public server sees its router\'s public address, not its private one', async () => {
    expect(await tool('w1', 'connect', `host=${net.addressOf('boot')}`, 'port=5000', 'timeout=20000')).toEqual({ connected: true })
    // the server's first connection is this one
    const seen = await echo.until<{ remote: string }>('accepted', 'the echo server')
    const [addr] = seen.remote.split(':')
    expect(addr).toBe(net.routerOf('homeA').wan)
    expect(addr).not.toBe(net.addressOf('w1'))
  })

  it('cannot be dialled from outside: neither at its private address nor at its router\'s public one', async () => {
    const inside = jsonLines(net.spawnIn('w1', [process.execPath, NETNS_TOOL, 'echo', 'port=5001']))
    await inside.until('listening', 'the private echo server')
    // positive control: the server answers on its own segment (the router is on it)
    expect(await tool('router:homeA', 'connect', `host=${net.addressOf('w1')}`, 'port=5001', 'timeout=20000')).toEqual({ connected: true })
    // an attacker next to the router knows the private subnet and routes it there:
    // then it is the router's NAT that refuses, not a missing route
    const r = net.routerOf('homeA')
    const route = await net.run('boot', ['ip', 'route', 'add', r.subnet, 'via', r.wan])
    expect(route.code, route.stderr).toBe(0)
    // the router rejects unsolicited inbound at once (RST): a short explicit
    // timeout only bounds the wait if that rule were missing
    expect(await tool('boot', 'connect', `host=${net.addressOf('w1')}`, 'port=5001', 'timeout=5000')).toEqual({ error: 'ECONNREFUSED' })
    expect(await tool('boot', 'connect', `host=${r.wan}`, 'port=5001', 'timeout=5000')).toEqual({ error: 'ECONNREFUSED' })
    // only the control connection ever reached it
    expect(inside.docs.filter(d => 'accepted' in d)).toHaveLength(1)
  })

  it('its link adds the configured delay to each round trip, against an undelayed link in the same run', async () => {
    const count = '20'
    const delayed = (await tool('w1', 'rtt', `host=${net.addressOf('boot')}`, 'port=5000', `count=${count}`)).rtts as number[]
    const baseline = (await tool('w2', 'rtt', `host=${net.addressOf('boot')}`, 'port=5000', `count=${count}`)).rtts as number[]
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    console.log(`netns RTT (${net.mode}): ${DELAY}±${JITTER} ms each way: median ${median(delayed).toFixed(1)} ms, min ${Math.min(...delayed).toFixed(1)} ms; ` +
      `no delay: median ${median(baseline).toFixed(2)} ms; ratio ${(median(delayed) / median(baseline)).toFixed(1)}`)
    expect(delayed).toHaveLength(Number(count))
    // a lower bound the link guarantees (each direction holds every byte ≥ delay − jitter),
    // not an assumption about this machine's speed
    expect(Math.min(...delayed)).toBeGreaterThanOrEqual(2 * (DELAY - JITTER))
    expect(median(delayed)).toBeGreaterThan(median(baseline))
  })

  it('a link changed while the network runs adds its new delay (setLink, as the --netem bench does)', async () => {
    const delay = 60
    expect(await net.setLink('homeB', { delayMs: delay })).toEqual([])
    const rtts = (await tool('w2', 'rtt', `host=${net.addressOf('boot')}`, 'port=5000', 'count=10')).rtts as number[]
    // the link's guarantee: each direction holds every byte at least the delay
    // (the userspace relay releases up to 1 ms early: a timer may fire that early)
    expect(Math.min(...rtts)).toBeGreaterThanOrEqual(2 * delay - (net.mode === 'userspace' ? 2 : 0))
    // and back: nothing in the other tests' way
    await net.setLink('homeB', { delayMs: 0 })
  })
})
