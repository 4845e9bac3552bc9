/**
 * The browser helper (test/helpers/browser.ts) drives a real headless
 * Chromium over the DevTools protocol: it loads a page served on loopback,
 * sees what the page's script adds after a fetch, clicks, reads text, lays the
 * page out at a phone's size and writes a PNG of it; page exceptions,
 * console.error calls and CSP violations reach consoleErrors. Skipped where no
 * chromium is installed, but never under CI (.ci/run installs it).
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findChromium, launchBrowser } from '../helpers/browser.ts'
import type { Browser } from '../helpers/browser.ts'

const CHROMIUM = findChromium()
const SKIP = CHROMIUM == null && process.env.CI !== 'true'

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>browser helper test</title>
<style>body { font-family: sans-serif; margin: 1em } button { font-size: 1.2em }</style></head>
<body><h1>Concur — a test page</h1>
<button id="add">Add a row</button>
<ul id="rows"></ul>
<script src="/app.js"></script>
</body></html>`

const APP = `
document.getElementById('add').addEventListener('click', () => {
  const li = document.createElement('li')
  li.className = 'row'
  li.textContent = 'row ' + (document.querySelectorAll('.row').length + 1)
  document.getElementById('rows').append(li)
})
fetch('/api/status').then(r => r.json()).then(s => {
  const p = document.createElement('p')
  p.id = 'status'
  p.textContent = 'state: ' + s.state
  document.body.append(p)
})
`

// a CSP that forbids inline script: the inline one is blocked (a violation),
// app-errors.js throws once loaded and logs an error on a click
const ERRORS_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"></head>
<body><button id="log">log</button>
<script>document.title = 'inline ran'</script>
<script src="/app-errors.js"></script></body></html>`

const APP_ERRORS = `
document.getElementById('log').addEventListener('click', () => { console.error('logged from a click', 42) })
throw new Error('boom from the page')
`

function serve (): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (type: string, body: string, headers: Record<string, string> = {}): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', ...headers })
      res.end(body)
    }
    switch (req.url) {
      case '/': send('text/html; charset=utf-8', PAGE); break
      case '/app.js': send('text/javascript', APP); break
      case '/api/status': send('application/json', JSON.stringify({ state: 'converged' })); break
      case '/errors': send('text/html; charset=utf-8', ERRORS_PAGE, { 'content-security-policy': `default-src 'self'` }); break
      case '/app-errors.js': send('text/javascript', APP_ERRORS); break
      default: res.writeHead(404).end()
    }
  })
  return new Promise((resolve) => { server.listen(0, '127.0.0.1', () => { resolve(server) }) })
}

describe.skipIf(SKIP)(`a headless Chromium driven over the DevTools protocol (${CHROMIUM ?? (SKIP ? 'no chromium on PATH nor $CONCUR_CHROMIUM: skipped outside CI' : 'no chromium found, and CI=true: a failure')})`, () => {
  let server: Server
  let base: string
  let browser: Browser
  let shots: string

  beforeAll(async () => {
    server = await serve()
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    shots = await mkdtemp(join(tmpdir(), 'concur-shots-'))
    // in CI a missing chromium throws here: the suite fails instead of skipping
    browser = await launchBrowser()
  })

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => { server?.close(resolve) })
    if (shots != null) await rm(shots, { recursive: true, force: true })
  })

  it('loads a page, waits for what its script adds after a fetch, clicks, reads text and writes a phone-sized PNG', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(`${base}/`)
      await page.waitFor('document.querySelector("#status") != null')
      expect(await page.evaluate<string>('document.querySelector("#status").textContent')).toBe('state: converged')

      await page.click('#add')
      await page.click('#add')
      await page.waitFor('document.querySelectorAll(".row").length === 2')
      expect(await page.evaluate<string[]>('[...document.querySelectorAll(".row")].map(li => li.textContent)')).toEqual(['row 1', 'row 2'])

      await page.setViewport(390, 844, true)
      expect(await page.evaluate<number>('window.innerWidth')).toBe(390)
      const file = join(shots, 'phone.png')
      await page.screenshot(file)
      const png = await readFile(file)
      expect((await stat(file)).size).toBeGreaterThan(0)
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
      // IHDR: the image is the emulated viewport (deviceScaleFactor 1)
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([390, 844])

      expect(page.consoleErrors).toEqual([])
    } finally {
      await page.close()
    }
  })

  it('collects a page exception, a console.error and a CSP violation in consoleErrors', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(`${base}/errors`)
      await page.click('#log')
      // the blocked inline script did not run
      expect(await page.evaluate<string>('document.title')).toBe('')
      const errors = page.consoleErrors.join('\n')
      expect(errors).toContain('boom from the page')
      expect(errors).toContain('logged from a click 42')
      expect(errors).toMatch(/Executing inline script violates the following Content Security Policy/)
    } finally {
      await page.close()
    }
  })

  it('evaluate throws with the exception text, and waitFor that never holds rejects quoting its expression', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(`${base}/`)
      await expect(page.evaluate('(() => { throw new Error("thrown in the page") })()')).rejects.toThrow(/thrown in the page/)
      await expect(page.waitFor('document.querySelector("#never") != null', { timeoutMs: 50 })).rejects.toThrow(/^waitFor: "document\.querySelector\(.*#never.*\) != null" was not truthy after 50 ms$/)
      await expect(page.click('#missing')).rejects.toThrow(/no element matches/)
    } finally {
      await page.close()
    }
  })

  it('a closed browser rejects new calls instead of hanging, and closing twice is harmless', async () => {
    const other = await launchBrowser()
    const page = await other.newPage()
    await other.close()
    await other.close()
    await expect(page.evaluate('1')).rejects.toThrow(/closed/)
  })
})
