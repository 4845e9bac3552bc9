/**
 * The dashboard in a real headless Chromium, on a running network (a
 * bootstrap node, two trusted workers, a requester), opened with the address
 * `concur ui` prints:
 *  - the credential leaves the address bar at once;
 *  - a job submitted while the page is open appears and goes from pending to
 *    accepted on the page by itself (the event stream: no reload);
 *  - a disputed job's page lists the differing path and the report;
 *  - a file name chosen by the build (markup, in a dispute report) is shown
 *    as text: no element is made of it and no script of it runs (the attack);
 *  - it lays out in a phone-sized window without sideways scrolling, and has
 *    the basic landmarks, labels and keyboard focus.
 * Screenshots go to $CONCUR_SCREENSHOTS (default: a temporary directory);
 * README's picture is one of them.
 */
import { mkdir, mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findChromium, launchBrowser } from '../helpers/browser.ts'
import type { Browser, Page } from '../helpers/browser.ts'
import { cleanupAll, runConcur } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { submitJob, viewUntil } from '../adversary/adversary.ts'

const CHROMIUM = findChromium()
const SKIP = CHROMIUM == null && process.env.CI !== 'true'

/** a file name that is markup: if the page ever parsed it, an <img> would exist and its handler would set a global */
const HOSTILE_NAME = '<img src=x onerror=window.__pwned=1>'

describe.skipIf(SKIP)('the dashboard, live in a real browser', () => {
  let net: Devnet
  let browser: Browser
  let page: Page
  let shots: string

  beforeAll(async () => {
    shots = process.env.CONCUR_SCREENSHOTS ?? await mkdtemp(join(tmpdir(), 'concur-ui-shots-'))
    await mkdir(shots, { recursive: true })
    ;[net, browser] = await Promise.all([
      startNetwork({ workers: [{}, {}], trust: [0, 1], threshold: 2 }),
      launchBrowser(CHROMIUM != null ? { executable: CHROMIUM } : {})
    ])
    page = await browser.newPage()
    await page.setViewport(1200, 900)
  })

  afterAll(async () => {
    await browser?.close()
    await cleanupAll()
  })

  it('opens with the address `concur ui` prints and takes the credential out of the address bar', async () => {
    const ui = await runConcur(['ui'], { home: net.requester.home })
    expect(ui.code, ui.stderr).toBe(0)
    const { url } = ui.json() as { url: string }
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/#token=[0-9a-f]{64}$/)
    await page.goto(url)
    await page.waitFor('document.querySelector(\'main[data-page="node"] dl\') != null')
    expect(await page.evaluate<string>('location.href')).not.toContain('token=')
    const text = await page.evaluate<string>('document.querySelector("main").innerText')
    expect(text).toContain(net.requester.peerId.slice(0, 12))
    expect(await page.evaluate<string>('document.getElementById("live").textContent')).toContain('live')
    await page.screenshot(join(shots, 'dashboard-node.png'))
  })

  it('shows a job submitted while it is open go from pending to accepted, with no reload', async () => {
    await page.evaluate('window.__sameDocument = true; location.hash = "#/requests"')
    await page.waitFor('document.querySelector(\'main[data-page="requests"]\') != null')
    // every status the job's row shows, in order, as the page changes it
    await page.evaluate(`window.__statuses = {}; new MutationObserver(() => {
      for (const row of document.querySelectorAll('tr[data-job]')) {
        const seen = window.__statuses[row.dataset.job] ??= []
        const s = row.querySelector('.badge')?.textContent
        if (s != null && seen.at(-1) !== s) seen.push(s)
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true })`)
    const { jobId } = await submitJob(net.requester, { label: `ui-ok-${process.pid}`, replicas: 2, script: 'mkdir out; sleep 1; echo reproducible > out/hello.txt' })
    await page.waitFor(`window.__statuses[${JSON.stringify(jobId)}]?.at(-1) === 'accepted'`, { timeoutMs: 120_000 })
    const seen = await page.evaluate<string[]>(`window.__statuses[${JSON.stringify(jobId)}]`)
    expect(['pending', 'provisional']).toContain(seen[0])
    expect(seen.at(-1)).toBe('accepted')
    // the same document throughout: the page updated itself
    expect(await page.evaluate<boolean>('window.__sameDocument === true')).toBe(true)

    await page.evaluate(`location.hash = '#/requests/' + encodeURIComponent(${JSON.stringify(jobId)})`)
    await page.waitFor('document.querySelectorAll(\'ol.timeline li\').length >= 4 && document.querySelector(\'button[data-key="bundle"]\') != null', { timeoutMs: 60_000 })
    const story = await page.evaluate<string>('document.querySelector("ol.timeline").innerText')
    expect(story).toMatch(/announced/)
    expect(story.match(/attested by/g)?.length).toBe(2)
    expect(story).toMatch(/accepted/)
    await page.screenshot(join(shots, 'dashboard-accepted-job.png'))

    // the bundle downloads from the page: the bytes the requester wrote
    const view = await viewUntil(net.requester, jobId, v => v.record.bundle != null, 'the bundle')
    await page.evaluate(`window.__blobs = []; const make = URL.createObjectURL; URL.createObjectURL = (b) => { window.__blobs.push(b); return make.call(URL, b) }`)
    await page.click('button[data-key="bundle"]')
    await page.waitFor('window.__blobs.length === 1 || document.getElementById("banner").hidden === false', { timeoutMs: 60_000 })
    const downloaded = await page.evaluate<number[]>('window.__blobs[0].arrayBuffer().then(b => [...new Uint8Array(b)])')
    expect(Buffer.from(downloaded).equals(await readFile(view.record.bundle!))).toBe(true)
  })

  it('a worker\'s dashboard lists what it built, for whom, and how each build ended', async () => {
    const worker = net.workers[0]!
    const ui = await runConcur(['ui'], { home: worker.home })
    const workerPage = await browser.newPage()
    try {
      await workerPage.goto((ui.json() as { url: string }).url)
      await workerPage.waitFor('document.querySelector(\'main[data-page="node"] dl\') != null')
      expect(await workerPage.evaluate<string>('document.querySelector("main").innerText')).toMatch(/sandbox tier/)
      await workerPage.evaluate('location.hash = "#/worker"')
      await workerPage.waitFor('document.querySelectorAll(\'main[data-page="worker"] tbody tr\').length >= 1')
      const rows = await workerPage.evaluate<string[]>('[...document.querySelectorAll("main tbody tr")].map(tr => tr.innerText)')
      const requester = net.requester.did
      // for whom (the requester's key, shortened), the sandbox, and the outcome with its CID
      expect(rows.some(r => r.includes(requester.slice(0, 12)) && /success/.test(r) && /namespaces/.test(r))).toBe(true)
      await workerPage.evaluate('location.hash = "#/network"')
      await workerPage.waitFor('document.querySelectorAll(\'main[data-page="network"] tbody tr\').length >= 2')
      const roles = await workerPage.evaluate<string>('document.querySelector("main tbody").innerText')
      // the bootstrap node is a relay without concur's records; the requester is a concur node
      expect(roles).toMatch(/bootstrap, relay/)
      expect(roles).toMatch(/concur/)
      expect(workerPage.consoleErrors).toEqual([])
    } finally {
      await workerPage.close()
    }
  })

  it('opens a disputed job and lists the differing path and the report; a file name that is markup stays text', async () => {
    const { jobId } = await submitJob(net.requester, { label: `ui-dispute-${process.pid}`, replicas: 2, script: `mkdir out; head -c 64 /dev/urandom > 'out/${HOSTILE_NAME}'` })
    await viewUntil(net.requester, jobId, v => v.record.dispute?.report != null, 'the dispute report', 120_000)
    await page.evaluate(`location.hash = '#/requests/' + encodeURIComponent(${JSON.stringify(jobId)})`)
    await page.waitFor('document.querySelector(\'tr.difference td.path\') != null && document.querySelector(\'pre.report\') != null', { timeoutMs: 60_000 })
    const paths = await page.evaluate<string[]>('[...document.querySelectorAll("tr.difference td.path")].map(td => td.textContent)')
    expect(paths.some(p => p.includes(HOSTILE_NAME))).toBe(true)
    expect(await page.evaluate<string>('document.querySelector("main").innerText')).toMatch(/disputed/)
    expect(await page.evaluate<string>('document.querySelector("pre.report").textContent')).toContain(HOSTILE_NAME)
    // shown, never parsed: no element was made of it and its handler never ran
    expect(await page.evaluate<number>('document.querySelectorAll("main img").length')).toBe(0)
    expect(await page.evaluate<unknown>('window.__pwned')).toBeUndefined()
    await page.evaluate('document.querySelector("main h3:nth-of-type(3)")?.scrollIntoView()')
    await page.screenshot(join(shots, 'dashboard-disputed-job.png'))
  })

  it('fits a phone-sized window, and has landmarks, labels and keyboard focus', async () => {
    await page.setViewport(390, 844, true)
    await page.evaluate('location.hash = "#/worker"')
    await page.waitFor('document.querySelector(\'main[data-page="worker"]\') != null')
    await page.evaluate('location.hash = "#/requests"')
    await page.waitFor('document.querySelector(\'main[data-page="requests"] table\') != null')
    // no sideways scrolling of the page: wide tables scroll inside their own box
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390)
    await page.screenshot(join(shots, 'dashboard-phone.png'))
    expect(await page.evaluate<string>('document.documentElement.lang')).toBe('en')
    expect(await page.evaluate<number>('document.querySelectorAll("nav[aria-label] a").length')).toBe(4)
    expect(await page.evaluate<number>('document.querySelectorAll("th:not([scope])").length')).toBe(0)
    expect(await page.evaluate<number>('[...document.querySelectorAll("button, a")].filter(e => e.textContent.trim() === "" && !e.getAttribute("aria-label")).length')).toBe(0)
    // the current page is marked for screen readers, and a link takes the keyboard focus
    expect(await page.evaluate<string>('document.querySelector("nav a[aria-current=page]").textContent')).toBe('Requests')
    expect(await page.evaluate<boolean>('(() => { const a = document.querySelector("nav a"); a.focus(); return document.activeElement === a })()')).toBe(true)
    for (const name of ['dashboard-node.png', 'dashboard-accepted-job.png', 'dashboard-disputed-job.png', 'dashboard-phone.png']) {
      expect((await readFile(join(shots, name))).subarray(1, 4).toString()).toBe('PNG')
    }
    // nothing went wrong in the page: no exception, no CSP violation
    expect(page.consoleErrors).toEqual([])
  })
})
