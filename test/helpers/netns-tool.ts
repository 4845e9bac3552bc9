// Small TCP programs the namespace test network runs inside its hosts and
// routers (started with the tests' own Node: `process.execPath netns-tool.ts MODE key=value…`).
// Each prints one JSON document per line on stdout, so a test waits on a line
// (an event), never on a sleep.
//
//   forward  listen=IP:PORT delay=MS jitter=MS   the userspace link: a transparent TCP relay behind an nftables redirect;
//                                                a line {"set": N, "delay": MS, "jitter": MS} on stdin changes both for
//                                                every connection (open ones too) and is answered {"set": N, "link": {…}}
//   echo     port=PORT                            echo server; prints {"listening"} then {"accepted", "remote"} per connection
//   rtt      host=IP port=PORT count=N            round trips of 32 bytes; prints {"rtts": [ms…]}
//   connect  host=IP port=PORT timeout=MS         one dial; prints {"connected": true} or {"error": CODE}
//   sink     port=PORT                            counts and hashes bytes until the peer ends; answers {"bytes", "ms", "sha256"} and prints it
//   send     host=IP port=PORT bytes=N            sends N numbered bytes, ends, prints its timing and hash with the sink's answer
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, createServer, Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

const [mode = '', ...rest] = process.argv.slice(2)
const args = new Map(rest.map(a => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] as const))
const arg = (k: string): string => {
  const v = args.get(k)
  if (v == null) throw new Error(`netns-tool ${mode}: missing ${k}=`)
  return v
}
const num = (k: string): number => Number(arg(k))
const print = (doc: unknown): void => { process.stdout.write(JSON.stringify(doc) + '\n') }

/** The destination a redirected connection was addressed to. nftables' redirect
 * rewrote it to our port; the kernel keeps the original in the conntrack entry.
 * Node does not expose getsockopt(SO_ORIGINAL_DST), but /proc/net/nf_conntrack
 * lists the same tuple in this namespace: the entry whose original direction
 * starts at the client's address and port, and whose reply comes from our port. */
function originalDestination (client: Socket, ourPort: number): { host: string, port: number } | undefined {
  const src = client.remoteAddress?.replace(/^::ffff:/, '')
  const sport = client.remotePort
  for (const line of readFileSync('/proc/net/nf_conntrack', 'utf8').split('\n')) {
    if (!line.includes(' tcp ')) continue
    const srcs = [...line.matchAll(/ src=(\S+)/g)].map(m => m[1])
    const dsts = [...line.matchAll(/ dst=(\S+)/g)].map(m => m[1])
    const sports = [...line.matchAll(/ sport=(\d+)/g)].map(m => Number(m[1]))
    const dports = [...line.matchAll(/ dport=(\d+)/g)].map(m => Number(m[1]))
    if (srcs[0] === src && sports[0] === sport && sports[1] === ourPort && dsts[0] != null && dports[0] != null) {
      return { host: dsts[0], port: dports[0] }
    }
  }
  return undefined
}

/** Copy `from` to `to`, each chunk released at max(previous release, arrival +
 * delay ± jitter): order is kept, and every byte is held at least delay − jitter.
 * `link` is read per chunk, so a change applies to open connections at once.
 * Reading pauses while more than HIGH bytes are held (here or in `to`'s buffer),
 * so a fast sender meets backpressure instead of filling memory. */
const HIGH = 8 << 20
interface LinkDelay { delay: number, jitter: number }
function delayedPipe (from: Socket, to: Socket, link: LinkDelay, canWrite: () => boolean): { kick: () => void } {
  const queue: Array<{ at: number, chunk: Buffer | null }> = []
  let held = 0
  let last = 0
  let timer: NodeJS.Timeout | undefined
  const sample = (): number => Math.max(0, link.delay + (Math.random() * 2 - 1) * link.jitter)
  const enqueue = (chunk: Buffer | null): void => {
    const now = performance.now()
    last = Math.max(last, now + sample())
    // due already (no delay, nothing queued ahead): a timer would only add its own latency
    if (queue.length === 0 && last <= now && canWrite() && !to.destroyed) {
      if (chunk == null) to.end(); else to.write(chunk)
      if (to.writableLength > HIGH) from.pause()
      return
    }
    queue.push({ at: last, chunk })
    if (chunk != null) held += chunk.length
    if (held + to.writableLength > HIGH) from.pause()
    schedule()
  }
  const schedule = (): void => {
    const head = queue[0]
    if (timer != null || head == null || !canWrite()) return
    timer = setTimeout(release, Math.max(0, head.at - performance.now()))
  }
  const release = (): void => {
    timer = undefined
    const now = performance.now()
    // a timer may fire up to a millisecond early: release what is due within it
    for (let head = queue[0]; head != null && head.at <= now + 1; head = queue[0]) {
      queue.shift()
      if (to.destroyed) return
      if (head.chunk == null) { to.end(); continue }
      held -= head.chunk.length
      to.write(head.chunk)
    }
    if (held + to.writableLength <= HIGH / 2 && from.isPaused()) from.resume()
    schedule()
  }
  to.on('drain', () => { if (held + to.writableLength <= HIGH / 2 && from.isPaused()) from.resume() })
  from.on('data', (c: Buffer) => enqueue(c))
  from.on('end', () => enqueue(null))
  return { kick: schedule }
}

function forward (): void {
  const [lhost = '', lport = ''] = arg('listen').split(':')
  const port = Number(lport)
  const link: LinkDelay = { delay: num('delay'), jitter: num('jitter') }
  // the bench changes a running network's links without dropping its connections
  let pending = ''
  process.stdin.on('data', (c: Buffer) => {
    pending += c.toString()
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      let doc: Partial<LinkDelay> & { set?: number }
      try { doc = JSON.parse(line) as Partial<LinkDelay> & { set?: number } } catch { print({ error: `not JSON: ${line}` }); continue }
      if (typeof doc.delay === 'number' && doc.delay >= 0) link.delay = doc.delay
      if (typeof doc.jitter === 'number' && doc.jitter >= 0) link.jitter = doc.jitter
      print({ set: doc.set, link })
    }
  })
  // a parent that goes away closes stdin: the relay goes on (teardown kills it)
  process.stdin.on('error', () => {})
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const dst = originalDestination(client, port)
    if (dst == null) { client.resetAndDestroy(); return }
    const up = new Socket({ allowHalfOpen: true })
    let upOpen = false
    // the SYN crosses the link too: the server sees the connection one delay later
    // (data sent before then waits in the pipe, its release time already counted)
    const toUp = delayedPipe(client, up, link, () => upOpen)
    const syn = setTimeout(() => up.setNoDelay(true).connect({ host: dst.host, port: dst.port }), Math.max(0, link.delay + (Math.random() * 2 - 1) * link.jitter))
    up.once('connect', () => { upOpen = true; toUp.kick() })
    client.once('close', () => clearTimeout(syn))
    delayedPipe(up, client, link, () => true)
    // a refused or reset upstream becomes a reset towards the client, as the real peer's RST would
    up.on('error', () => { if (!client.destroyed) client.resetAndDestroy() })
    client.on('error', () => { if (!up.destroyed) up.resetAndDestroy() })
    up.on('close', () => { if (!client.destroyed && client.writableFinished) client.destroy() })
    client.on('close', () => { if (!up.destroyed && up.writableFinished) up.destroy() })
  })
  server.listen(port, lhost, () => print({ listening: port }))
}

function echo (): void {
  const server = createServer((s) => {
    print({ accepted: true, remote: `${s.remoteAddress?.replace(/^::ffff:/, '') ?? ''}:${s.remotePort ?? 0}` })
    s.on('error', () => {})
    s.pipe(s)
  })
  server.listen(num('port'), () => print({ listening: num('port') }))
}

function rtt (): void {
  const count = num('count')
  const s = connect({ host: arg('host'), port: num('port'), noDelay: true })
  const rtts: number[] = []
  const ping = Buffer.alloc(32, 1)
  let got = 0
  let sent = 0
  s.on('error', (e: NodeJS.ErrnoException) => { print({ error: e.code ?? e.message }); process.exit(1) })
  s.on('connect', () => { sent = performance.now(); s.write(ping) })
  s.on('data', (c: Buffer) => {
    got += c.length
    // the echo may come back in pieces: a round trip ends with its last byte
    while (got >= ping.length) {
      got -= ping.length
      const now = performance.now()
      rtts.push(now - sent)
      if (rtts.length >= count) { print({ rtts }); s.destroy(); return }
      sent = now
      s.write(ping)
    }
  })
}

function dial (): void {
  const s = connect({ host: arg('host'), port: num('port'), timeout: num('timeout') })
  s.on('connect', () => { print({ connected: true }); s.destroy() })
  s.on('timeout', () => { print({ error: 'TIMEOUT' }); s.destroy() })
  s.on('error', (e: NodeJS.ErrnoException) => { print({ error: e.code ?? e.message }) })
}

function sink (): void {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let bytes = 0
    let first = 0
    const hash = createHash('sha256')
    s.on('data', (c: Buffer) => { if (bytes === 0) first = performance.now(); bytes += c.length; hash.update(c) })
    s.on('end', () => {
      const doc = { bytes, ms: performance.now() - first, sha256: hash.digest('hex') }
      print(doc)
      s.end(JSON.stringify(doc))
    })
    s.on('error', () => {})
  })
  server.listen(num('port'), () => print({ listening: num('port') }))
}

function send (): void {
  const total = num('bytes')
  const base = Buffer.alloc(64 * 1024)
  for (let i = 0; i < base.length; i++) base[i] = i % 251
  const hash = createHash('sha256')
  const start = performance.now()
  const s = connect({ host: arg('host'), port: num('port') })
  let sent = 0
  let answer = ''
  const pump = (): void => {
    // bounded by the byte count; write() returning false waits for 'drain'.
    // Every block carries its index, so a reordered or lost block changes the hash.
    while (sent < total) {
      const block = Buffer.from(base.subarray(0, Math.min(base.length, total - sent)))
      if (block.length >= 4) block.writeUInt32BE(sent / base.length)
      sent += block.length
      hash.update(block)
      if (!s.write(block)) { s.once('drain', pump); return }
    }
    s.end()
  }
  s.on('connect', pump)
  s.on('data', (c: Buffer) => { answer += c.toString() })
  s.on('end', () => {
    const ms = performance.now() - start
    print({ sent, ms, sha256: hash.digest('hex'), sink: JSON.parse(answer) as unknown })
  })
  s.on('error', (e: NodeJS.ErrnoException) => { print({ error: e.code ?? e.message }); process.exit(1) })
}

const modes: Record<string, () => void> = { forward, echo, rtt, connect: dial, sink, send }
const run = modes[mode]
if (run == null) throw new Error(`netns-tool: unknown mode ${mode}`)
run()
