// A small headless-Chromium driver for tests, over the DevTools protocol
// (CDP) on Node's built-in WebSocket: no puppeteer, no download of a browser.
// It launches the machine's chromium (Debian: `apt-get install chromium`) with
// a fresh profile, attaches to one tab per page in flattened-session mode and
// sends the few page commands the UI tests need.
//
// Nothing here waits on the clock: the browser's port is read when its
// DevToolsActivePort file appears, navigation waits for the page's load
// event, and waitFor resolves on the page's own DOM mutations. The timeouts
// below are hang guards only (a wedged browser fails the test with a message
// instead of hanging it); every pending call also rejects when the socket
// closes or the browser process exits.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, rmSync, watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

export interface Browser {
  newPage (): Promise<Page>
  close (): Promise<void>
  /** the browser's version string, e.g. 'Chrome/150.0.7871.100' */
  version: string
}

export interface Page {
  /** navigate and wait for the load event of that navigation */
  goto (url: string): Promise<void>
  /** Runtime.evaluate by value, awaiting a promise; a JS exception throws with its text */
  evaluate<T> (expression: string): Promise<T>
  /** resolves when the page-side expression is truthy, re-checked on every DOM mutation */
  waitFor (expression: string, options?: { timeoutMs?: number }): Promise<void>
  /** el.click() on the first element matching selector (throws if none) */
  click (selector: string): Promise<void>
  /** a PNG of the viewport */
  screenshot (path: string): Promise<void>
  setViewport (width: number, height: number, mobile?: boolean): Promise<void>
  /** uncaught exceptions, console.error calls and error log entries (CSP violations, failed loads) */
  consoleErrors: string[]
  close (): Promise<void>
}

/** the hang guard of one protocol call, and waitFor's default */
const DEFAULT_TIMEOUT_MS = 60_000
/** how much of chromium's stderr (mostly dbus noise) is kept for errors */
const STDERR_TAIL = 8 * 1024
/** re-reads of the profile dir while waiting for DevToolsActivePort, besides fs.watch events (a guard if an event is missed) */
const PORT_FILE_CHECKS = 300
const PORT_FILE_CHECK_MS = 100
/** after SIGTERM, how long close() lets chromium exit before SIGKILL */
const TERM_GRACE_MS = 5_000

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']

/** $CONCUR_CHROMIUM if set, else the first of chromium / chromium-browser / google-chrome on PATH. */
export function findChromium (): string | undefined {
  const configured = process.env.CONCUR_CHROMIUM
  if (configured != null && configured !== '') return configured
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    for (const name of CANDIDATES) {
      const file = join(dir, name)
      try { accessSync(file, constants.X_OK); return file } catch {}
    }
  }
  return undefined
}

// ---- the protocol client ------------------------------------------------

type Params = Record<string, unknown>
type Listener = (method: string, params: any, sessionId: string | undefined) => void

interface Pending { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }

class CdpClient {
  readonly #ws: WebSocket
  #nextId = 1
  readonly #pending = new Map<number, Pending>()
  readonly #listeners = new Set<Listener>()
  readonly #closers = new Set<(e: Error) => void>()
  #failure: Error | undefined

  constructor (ws: WebSocket) {
    this.#ws = ws
    ws.addEventListener('message', (ev) => { this.#receive(ev.data) })
    ws.addEventListener('close', (ev) => { this.fail(new Error(`DevTools socket closed (code ${ev.code}${ev.reason !== '' ? `, ${ev.reason}` : ''})`)) })
    ws.addEventListener('error', () => { this.fail(new Error('DevTools socket error')) })
  }

  send (method: string, params: Params = {}, sessionId?: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<any> {
    if (this.#failure != null) return Promise.reject(new Error(`${method}: ${this.#failure.message}`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${method}: no answer from chromium in ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject: (e) => { reject(new Error(`${method}: ${e.message}`)) }, timer })
      this.#ws.send(JSON.stringify(sessionId == null ? { id, method, params } : { id, method, params, sessionId }))
    })
  }

  /** listen to every event; returns the unsubscriber */
  on (listener: Listener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** called (once) with the failure when the connection ends; returns the unsubscriber */
  onFailure (closer: (e: Error) => void): () => void {
    if (this.#failure != null) { closer(this.#failure); return () => {} }
    this.#closers.add(closer)
    return () => { this.#closers.delete(closer) }
  }

  /** rejects every pending call and every waiter; later calls reject at once */
  fail (error: Error): void {
    if (this.#failure != null) return
    this.#failure = error
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(error) }
    this.#pending.clear()
    for (const c of this.#closers) c(error)
    this.#closers.clear()
    try { this.#ws.close() } catch {}
  }

  #receive (data: unknown): void {
    let msg: any
    try { msg = JSON.parse(String(data)) } catch { return }
    if (typeof msg.id === 'number') {
      const p = this.#pending.get(msg.id)
      if (p == null) return
      this.#pending.delete(msg.id)
      clearTimeout(p.timer)
      if (msg.error != null) p.reject(new Error(`${msg.error.message ?? 'error'}${msg.error.data != null ? ` (${msg.error.data})` : ''}`))
      else p.resolve(msg.result ?? {})
    } else if (typeof msg.method === 'string') {
      for (const l of [...this.#listeners]) {
        try { l(msg.method, msg.params ?? {}, msg.sessionId) } catch {}
      }
    }
  }
}

// ---- launching ------------------------------------------------------------

interface Live { child: ChildProcess, profile: string }
const live = new Set<Live>()
let exitHookInstalled = false

/** a test process that ends without closing its browser (a failing test, a crash) still takes chromium with it */
function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const l of live) {
      try { l.child.kill('SIGKILL') } catch {}
      try { rmSync(l.profile, { recursive: true, force: true }) } catch {}
    }
  })
}

function exited (child: ChildProcess): boolean {
  return child.exitCode != null || child.signalCode != null
}

/** wait for the profile's DevToolsActivePort file (port, then browser path), watching the dir */
async function readPortFile (profile: string, child: ChildProcess, stderr: () => string): Promise<{ port: number, path: string }> {
  const file = join(profile, 'DevToolsActivePort')
  let watcher: FSWatcher | undefined
  let wake: () => void = () => {}
  try { watcher = watch(profile, () => { wake() }) } catch {}
  const onExit = (): void => { wake() }
  child.on('exit', onExit)
  child.on('error', onExit)
  try {
    for (let i = 0; i < PORT_FILE_CHECKS; i++) {
      if (exited(child)) throw new Error(`chromium exited before it opened its DevTools port (code ${child.exitCode}, signal ${child.signalCode})\n${stderr()}`)
      try {
        const [port, path] = (await readFile(file, 'utf8')).split('\n')
        if (port != null && /^\d+$/.test(port) && path != null && path.startsWith('/devtools/browser/')) return { port: Number(port), path }
      } catch {}
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, PORT_FILE_CHECK_MS)
        wake = () => { clearTimeout(timer); resolve() }
      })
    }
    throw new Error(`chromium wrote no DevToolsActivePort in ${profile} after ${PORT_FILE_CHECKS} checks\n${stderr()}`)
  } finally {
    watcher?.close()
    child.off('exit', onExit)
    child.off('error', onExit)
  }
}

function connect (url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const onOpen = (): void => { cleanup(); resolve(ws) }
    const onError = (): void => { cleanup(); reject(new Error(`could not connect to ${url}`)) }
    const cleanup = (): void => { ws.removeEventListener('open', onOpen); ws.removeEventListener('error', onError); ws.removeEventListener('close', onError) }
    ws.addEventListener('open', onOpen)
    ws.addEventListener('error', onError)
    ws.addEventListener('close', onError)
  })
}

export async function launchBrowser (options: { executable?: string } = {}): Promise<Browser> {
  const executable = options.executable ?? findChromium()
  if (executable == null) throw new Error('no chromium found: install it (Debian: apt-get install chromium), put chromium, chromium-browser or google-chrome on PATH, or set CONCUR_CHROMIUM')
  installExitHook()
  const profile = await mkdtemp(join(tmpdir(), 'concur-chromium-'))
  const args = [
    '--headless=new',
    // root in CI (and in most containers): chromium refuses to start sandboxed as root
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--no-default-browser-check',
    `--user-data-dir=${profile}`,
    '--remote-debugging-port=0',
    'about:blank'
  ]
  const child = spawn(executable, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const entry: Live = { child, profile }
  live.add(entry)

  let tail = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    tail += chunk
    if (tail.length > STDERR_TAIL * 2) tail = tail.slice(-STDERR_TAIL)
  })
  const stderr = (): string => {
    const t = tail.slice(-STDERR_TAIL)
    return t === '' ? '(chromium printed nothing on stderr)' : `chromium's stderr (last ${t.length} chars):\n${t}`
  }
  let spawnError: Error | undefined
  child.on('error', (e) => { spawnError = e })
  const exitedPromise = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })

  let cdp: CdpClient | undefined
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      cdp?.fail(new Error('the browser was closed'))
      if (!exited(child) && child.pid != null) {
        child.kill('SIGTERM')
        let timer: NodeJS.Timeout | undefined
        const graceOver = new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false) }, TERM_GRACE_MS) })
        const done = await Promise.race([exitedPromise.then(() => true), graceOver])
        clearTimeout(timer)
        if (!done) { child.kill('SIGKILL'); await exitedPromise }
      }
      live.delete(entry)
      await rm(profile, { recursive: true, force: true, maxRetries: 5 })
    })()
    return closing
  }

  try {
    const { port, path } = await readPortFile(profile, child, () => spawnError != null ? `${spawnError.message}\n${stderr()}` : stderr())
    cdp = new CdpClient(await connect(`ws://127.0.0.1:${port}${path}`))
    const client = cdp
    child.once('exit', (code, signal) => { client.fail(new Error(`chromium exited (code ${code}, signal ${signal})\n${stderr()}`)) })
    if (exited(child)) client.fail(new Error(`chromium exited (code ${child.exitCode}, signal ${child.signalCode})\n${stderr()}`))
    const { product } = await client.send('Browser.getVersion') as { product: string }
    return {
      version: product,
      newPage: () => openPage(client),
      close
    }
  } catch (e) {
    await close()
    throw e
  }
}

// ---- pages ------------------------------------------------------------------

function describeException (details: any): string {
  const ex = details?.exception
  return String(ex?.description ?? ex?.value ?? details?.text ?? 'unknown exception')
}

function describeArg (arg: any): string {
  if (arg == null) return ''
  if ('value' in arg) return typeof arg.value === 'string' ? arg.value : JSON.stringify(arg.value)
  return String(arg.description ?? arg.unserializableValue ?? arg.type)
}

async function openPage (cdp: CdpClient): Promise<Page> {
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' }) as { targetId: string }
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string }
  const consoleErrors: string[] = []
  /** loaderIds whose document reached its load event */
  const loaded = new Set<string>()
  const loadWaiters = new Set<() => void>()

  const off = cdp.on((method, params, from) => {
    if (from !== sessionId) return
    switch (method) {
      case 'Runtime.exceptionThrown':
        consoleErrors.push(describeException(params.exceptionDetails))
        break
      case 'Runtime.consoleAPICalled':
        if (params.type === 'error' || params.type === 'assert') consoleErrors.push((params.args as unknown[] ?? []).map(describeArg).join(' '))
        break
      case 'Log.entryAdded':
        if (params.entry?.level === 'error') consoleErrors.push(`${params.entry.source}: ${params.entry.text}${params.entry.url != null ? ` (${params.entry.url})` : ''}`)
        break
      case 'Page.lifecycleEvent':
        if (params.name === 'load') { loaded.add(params.loaderId); for (const w of [...loadWaiters]) w() }
        break
    }
  })

  const send = (method: string, params: Params = {}, timeoutMs?: number): Promise<any> => cdp.send(method, params, sessionId, timeoutMs)
  await Promise.all([
    send('Page.enable'),
    send('Page.setLifecycleEventsEnabled', { enabled: true }),
    send('Runtime.enable'),
    send('Log.enable')
  ])

  /** label: the helper call to name in an error instead of the script (whose thrown message is then enough) */
  const evaluate = async <T>(expression: string, timeoutMs?: number, label?: string): Promise<T> => {
    const r = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true, userGesture: true }, timeoutMs)
    if (r.exceptionDetails != null) {
      if (label != null) throw new Error(`${label}: ${describeException(r.exceptionDetails).split('\n')[0]!.replace(/^Error: /, '')}`)
      throw new Error(`${describeException(r.exceptionDetails)}\n  (evaluating: ${expression.length > 300 ? `${expression.slice(0, 300)}…` : expression})`)
    }
    return r.result?.value as T
  }

  let closed = false
  return {
    consoleErrors,

    async goto (url) {
      const r = await send('Page.navigate', { url })
      if (r.errorText != null && r.errorText !== '') throw new Error(`goto ${url}: ${r.errorText}`)
      // a same-document navigation (only the fragment changes) has no loader and no load event
      if (r.loaderId == null) return
      const loaderId = r.loaderId as string
      // `loaded` keeps every loader that reached its load event, so one that came before navigate's answer counts too
      await new Promise<void>((resolve, reject) => {
        const check = (): void => { if (loaded.has(loaderId)) { done(); resolve() } }
        const timer = setTimeout(() => { done(); reject(new Error(`goto ${url}: no load event in ${DEFAULT_TIMEOUT_MS} ms`)) }, DEFAULT_TIMEOUT_MS)
        const offFailure = cdp.onFailure((e) => { done(); reject(new Error(`goto ${url}: ${e.message}`)) })
        const done = (): void => { clearTimeout(timer); offFailure(); loadWaiters.delete(check) }
        loadWaiters.add(check)
        check()
      })
    },

    evaluate: (expression) => evaluate(expression),

    async waitFor (expression, options = {}) {
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
      const quoted = JSON.stringify(expression)
      // resolves on the first DOM mutation after which the expression is
      // truthy; a throw counts as not yet (an element not there yet)
      const script = `new Promise((resolve, reject) => {
        const test = () => (${expression})
        let lastError = ''
        const ok = () => { try { return Boolean(test()) } catch (e) { lastError = String(e); return false } }
        if (ok()) { resolve(true); return }
        const observer = new MutationObserver(() => { if (ok()) { finish(); resolve(true) } })
        const timer = setTimeout(() => {
          finish()
          reject(new Error(${JSON.stringify(`${quoted} was not truthy after ${timeoutMs} ms`)} + (lastError !== '' ? ' (last error: ' + lastError + ')' : '')))
        }, ${timeoutMs})
        const finish = () => { observer.disconnect(); clearTimeout(timer) }
        observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true })
      })`
      await evaluate(script, timeoutMs + 10_000, 'waitFor')
    },

    async click (selector) {
      const sel = JSON.stringify(selector)
      await evaluate(`(() => {
        const el = document.querySelector(${sel})
        if (el == null) throw new Error(${JSON.stringify(`no element matches ${sel}`)})
        el.click()
      })()`, undefined, 'click')
    },

    async screenshot (path) {
      const { data } = await send('Page.captureScreenshot', { format: 'png' }) as { data: string }
      await writeFile(path, Buffer.from(data, 'base64'))
    },

    async setViewport (width, height, mobile = false) {
      await send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile })
    },

    async close () {
      if (closed) return
      closed = true
      off()
      try { await cdp.send('Target.closeTarget', { targetId }) } catch {}
    }
  }
}
