/**
 * The daemon's local HTTP API can read and write files as the daemon's user and
 * sign with its key. Binding 127.0.0.1 keeps other hosts out, but not:
 *  - a web page the owner visits: a cross-origin "simple" POST (text/plain, no
 *    preflight) or DNS rebinding (evil.example resolving to 127.0.0.1, so the
 *    page is "same origin" and its requests carry Host: evil.example:PORT);
 *  - another user of the same machine, who can connect to any loopback port.
 * Each attack here is made exactly as that attacker would, against a real
 * daemon process; the positive controls prove the same request does what the
 * attacker wanted when it comes from the owner, so the test can fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, chown, copyFile, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { cleanupAll, runConcur, startConcur, tempDir } from '../helpers/processes.ts'
import type { ConcurProcess } from '../helpers/processes.ts'
import { JOBS_TOPIC } from '../../src/net/topics.ts'

/** identity CID of an empty UnixFS directory: resolves with no network at all */
const EMPTY_DIR_CID = 'bafyaabakaieac'
const NOBODY = 65534

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, text: string, code?: string }

/** An HTTP request with exactly these headers (fetch would not let us set Host). */
async function raw (address: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  return await new Promise<Reply>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body == null ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let code: string | undefined
        try { code = (JSON.parse(text) as { error?: { code?: string } }).error?.code } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, code })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body != null) req.write(body)
    req.end()
  })
}

async function tokenOf (home: string): Promise<string> {
  return (await readFile(join(home, 'api.token'), 'utf8')).trim()
}

/** a directory with one file in it: what the attacks try to wipe */
async function target (): Promise<{ dir: string, intact: () => Promise<boolean> }> {
  const dir = join(await tempDir('concur-target-'), 'precious')
  await mkdir(dir)
  await writeFile(join(dir, 'thesis.txt'), 'four years of work\n')
  return {
    dir,
    intact: async () => existsSync(join(dir, 'thesis.txt')) && (await readFile(join(dir, 'thesis.txt'), 'utf8')) === 'four years of work\n'
  }
}

function noCors (r: Reply): void {
  expect(Object.keys(r.headers).filter(h => h.startsWith('access-control-'))).toEqual([])
}

describe('the local API obeys only its owner: not web pages, not other local users', () => {
  let plain: ConcurProcess
  let plainApi: string
  let full: ConcurProcess
  let fullApi: string
  let fullHome: string

  beforeAll(async () => {
    plain = startConcur(['daemon'], { home: await tempDir() })
    // a home as a careless volunteer may have it: the home itself world-readable
    // (daemon.json is meant to be readable; the keys and the token are not)
    const base = await tempDir()
    await chmod(base, 0o755)
    fullHome = join(base, 'home')
    const init = await runConcur(['init'], { home: fullHome })
    expect(init.code).toBe(0)
    await chmod(fullHome, 0o755)
    // every route this build has: worker and requester routes and the test-only one
    full = startConcur(['daemon', '--worker', '--enable-test-routes'], { home: fullHome })
    plainApi = String((await plain.ready).api)
    fullApi = String((await full.ready).api)
  })

  afterAll(async () => { await cleanupAll() })

  describe('a web page the owner visits', () => {
    it('a cross-origin simple POST (text/plain, no-cors, no token) leaves the target directory intact', async () => {
      const t = await target()
      // what a browser sends for fetch(url, { method: 'POST', mode: 'no-cors',
      // headers: { 'content-type': 'text/plain' }, body: JSON.stringify(…) })
      // from a page on http://evil.example: no preflight, no way to add a token
      const r = await raw(plainApi, 'POST', '/v1/content/get', {
        host: plainApi,
        origin: 'http://evil.example',
        referer: 'http://evil.example/',
        'content-type': 'text/plain;charset=UTF-8',
        accept: '*/*',
        'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
        'sec-fetch-dest': 'empty',
        'sec-fetch-mode': 'no-cors',
        'sec-fetch-site': 'cross-site'
      }, JSON.stringify({ cid: EMPTY_DIR_CID, out: t.dir, overwrite: true }))
      expect(await t.intact()).toBe(true)
      expect(r.status).toBe(403)
      expect(r.code).toBe('ERR_BAD_ORIGIN')
      noCors(r)
    })

    it('DNS rebinding (Host: evil.example:PORT, with and without Origin, JSON body) leaves the target directory intact', async () => {
      const t = await target()
      const body = JSON.stringify({ cid: EMPTY_DIR_CID, out: t.dir, overwrite: true })
      const host = `evil.example:${plainApi.split(':')[1] ?? ''}`
      // after rebinding the page is same-origin to itself: it may send JSON
      const withOrigin = await raw(plainApi, 'POST', '/v1/content/get', { host, origin: `http://${host}`, 'content-type': 'application/json' }, body)
      const noOrigin = await raw(plainApi, 'POST', '/v1/content/get', { host, 'content-type': 'application/json' }, body)
      expect(await t.intact()).toBe(true)
      for (const r of [withOrigin, noOrigin]) {
        expect(r.status).toBe(403)
        expect(r.code).toBe('ERR_BAD_HOST')
        noCors(r)
      }
    })

    it('the Host, Origin and Content-Type checks hold even with the right token (each is its own defence)', async () => {
      const t = await target()
      const token = await tokenOf(plain.home)
      const body = JSON.stringify({ cid: EMPTY_DIR_CID, out: t.dir, overwrite: true })
      const auth = { authorization: `Bearer ${token}` }
      const port = plainApi.split(':')[1] ?? ''
      const badHost = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: `evil.example:${port}`, 'content-type': 'application/json' }, body)
      const otherPort = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: `127.0.0.1:${Number(port) === 1 ? 2 : 1}`, 'content-type': 'application/json' }, body)
      const badOrigin = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: plainApi, origin: 'http://evil.example', 'content-type': 'application/json' }, body)
      const nullOrigin = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: plainApi, origin: 'null', 'content-type': 'application/json' }, body)
      const textPlain = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: plainApi, 'content-type': 'text/plain;charset=UTF-8' }, body)
      const noType = await raw(plainApi, 'POST', '/v1/content/get', { ...auth, host: plainApi }, body)
      const preflight = await raw(plainApi, 'OPTIONS', '/v1/content/get', { host: plainApi, origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' })
      expect(await t.intact()).toBe(true)
      expect([badHost.status, badHost.code]).toEqual([403, 'ERR_BAD_HOST'])
      expect([otherPort.status, otherPort.code]).toEqual([403, 'ERR_BAD_HOST'])
      expect([badOrigin.status, badOrigin.code]).toEqual([403, 'ERR_BAD_ORIGIN'])
      expect([nullOrigin.status, nullOrigin.code]).toEqual([403, 'ERR_BAD_ORIGIN'])
      expect([textPlain.status, textPlain.code]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE'])
      expect([noType.status, noType.code]).toEqual([415, 'ERR_UNSUPPORTED_MEDIA_TYPE'])
      expect([preflight.status, preflight.code]).toEqual([403, 'ERR_BAD_ORIGIN'])
      for (const r of [badHost, otherPort, badOrigin, nullOrigin, textPlain, noType, preflight]) noCors(r)
    })

    it('positive control: the owner (token, own Host and Origin, JSON) making the same call does empty the directory', async () => {
      const t = await target()
      const token = await tokenOf(plain.home)
      for (const host of [plainApi, `localhost:${plainApi.split(':')[1] ?? ''}`]) {
        const r = await raw(plainApi, 'POST', '/v1/content/get', {
          host,
          origin: `http://${host}`,
          authorization: `Bearer ${token}`,
          'content-type': 'application/json; charset=utf-8'
        }, JSON.stringify({ cid: EMPTY_DIR_CID, out: t.dir, overwrite: true }))
        expect(r.status, r.text).toBe(200)
        noCors(r)
      }
      expect(await t.intact()).toBe(false)
      expect(await readdir(t.dir)).toEqual([])
    })
  })

  // switching to another uid takes root (CAP_SETUID), as CI runs the suite
  describe.skipIf(process.getuid?.() !== 0)('another user of the same machine (uid 65534, setpriv; needs root)', () => {
    const setpriv = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups']
    /** a Node binary uid 65534 can run: the tests' own (node_modules/node), or a world-readable copy of it */
    let nodeBin = process.execPath
    beforeAll(async () => {
      const runs = await new Promise<boolean>(resolve => { execFile('setpriv', [...setpriv, nodeBin, '-e', ''], err => { resolve(err == null) }) })
      if (runs) return
      // the checkout is not reachable by that uid (e.g. under a 0700 home)
      const dir = await tempDir('concur-nobody-node-')
      await chmod(dir, 0o755)
      nodeBin = join(dir, 'node')
      await copyFile(process.execPath, nodeBin)
      await chmod(nodeBin, 0o755)
    })

    /** Run a small Node client as nobody; the script is inline, so no file of ours needs to be readable by that uid. */
    const asNobody = async (script: string, args: string[]): Promise<Record<string, unknown>> => {
      return await new Promise((resolve, reject) => {
        execFile('setpriv', [...setpriv, nodeBin, '--input-type=module', '-e', script, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
          if (err != null) { reject(new Error(`client as uid ${NOBODY} failed: ${err.message}\n${stderr}`)); return }
          resolve(JSON.parse(stdout) as Record<string, unknown>)
        })
      })
    }

    /** what another user can do: read daemon.json, try the token file, call the API without it */
    const CLIENT = `
      import { readFileSync } from 'node:fs'
      const [home, mode, arg] = process.argv.slice(1)
      const out = { uid: process.getuid(), routes: [], exfil: [] }
      // daemon.json is meant to be readable: it tells the CLI where the API is
      const info = JSON.parse(readFileSync(home + '/daemon.json', 'utf8'))
      try { out.token = readFileSync(home + '/api.token', 'utf8') } catch (e) { out.tokenError = e.code }
      const call = async (method, path, body, extra = {}) => {
        const res = await fetch('http://' + info.api + path, {
          method,
          headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...extra },
          body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined
        })
        return { method, path, status: res.status, text: (await res.text()).slice(0, 400) }
      }
      if (mode === 'routes') {
        for (const r of JSON.parse(arg)) out.routes.push(await call(r.method, r.path, {}))
        out.routes.push(await call('GET', '/v1/no-such-route'))
        out.routes.push(await call('GET', '/v1/id', undefined, { authorization: 'Bearer ' + '0'.repeat(64) }))
        out.routes.push(await call('GET', '/v1/id', undefined, { authorization: 'Bearer ' }))
      }
      if (mode === 'exfil') {
        // import the daemon's keys, then export them into a directory this uid owns
        const add = await call('POST', '/v1/content/add', { path: home + '/keys' })
        out.exfil.push(add)
        let cid = 'bafyaabakaieac'
        try { cid = JSON.parse(add.text).cid ?? cid } catch {}
        out.exfil.push(await call('POST', '/v1/content/get', { cid, out: arg + '/keys' }))
      }
      console.log(JSON.stringify(out))
    `

    it('cannot read the token file (0600 from its first byte, owned by the daemon\'s user)', async () => {
      const s = await stat(join(fullHome, 'api.token'))
      expect(s.mode & 0o777).toBe(0o600)
      expect(s.uid).toBe(process.getuid?.())
      const token = await tokenOf(fullHome)
      expect(token).toMatch(/^[0-9a-f]{64}$/)
      // never in what the daemon shows: daemon.json, the ready document, its output
      expect(readFileSync(join(fullHome, 'daemon.json'), 'utf8')).not.toContain(token)
      expect(full.stdout()).not.toContain(token)
      expect(full.stderr()).not.toContain(token)
      const r = await asNobody(CLIENT, [fullHome, 'token'])
      expect(r.uid).toBe(NOBODY)
      expect(r.token).toBeUndefined()
      expect(r.tokenError).toBe('EACCES')
    })

    it('the key-exfiltration sequence (content/add of <home>/keys, content/get into a dir it owns) yields no key bytes', async () => {
      const loot = await tempDir('concur-loot-')
      await chown(loot, NOBODY, NOBODY)
      const r = await asNobody(CLIENT, [fullHome, 'exfil', loot]) as { exfil: Array<{ status: number, text: string }> }
      // no byte of the signing key anywhere the other user can see: its answers, its directory
      const seed = (JSON.parse(await readFile(join(fullHome, 'keys', 'signing.key'), 'utf8')) as { seed: string }).seed
      const seen: string[] = [JSON.stringify(r)]
      const walk = async (dir: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name)
          if (e.isDirectory()) await walk(p)
          else if (e.isFile()) seen.push(await readFile(p, 'utf8'))
        }
      }
      await walk(loot)
      expect(seen.join('\n')).not.toContain(seed)
      expect(await readdir(loot)).toEqual([])
      expect(r.exfil.map(x => x.status)).toEqual([401, 401])
    })

    it('gets 401 on every registered route, on unknown ones and with a wrong token', async () => {
      // the route table of this very daemon, asked with the owner's token: a new
      // route is covered without anyone editing this test
      const table = await raw(fullApi, 'GET', '/v1/routes', { host: fullApi, authorization: `Bearer ${await tokenOf(fullHome)}` })
      expect(table.status, table.text).toBe(200)
      const routes = (JSON.parse(table.text) as { routes: Array<{ method: string, path: string }> }).routes
      // the table is not vacuous: it has the routes the attacks need, the worker's and the test-only one
      const listed = routes.map(r => `${r.method} ${r.path}`)
      for (const known of ['GET /v1/id', 'POST /v1/content/add', 'POST /v1/content/get', 'POST /v1/jobs', 'GET /v1/requests/:id/logs', 'GET /v1/worker', 'POST /v1/gossip/publish-raw', 'GET /v1/routes']) {
        expect(listed).toContain(known)
      }
      const concrete = routes.map(r => ({ method: r.method, path: r.path.replace(/:[a-zA-Z]+/g, 'x') }))
      const r = await asNobody(CLIENT, [fullHome, 'routes', JSON.stringify(concrete)]) as { routes: Array<{ method: string, path: string, status: number, text: string }> }
      expect(r.routes.length).toBe(concrete.length + 3)
      for (const x of r.routes) {
        expect(`${x.method} ${x.path} ${x.status}`).toBe(`${x.method} ${x.path} 401`)
        expect(JSON.parse(x.text)).toMatchObject({ error: { code: 'ERR_UNAUTHORIZED' } })
      }
    })

    it('the 401 names the remedy: the token file, who can read it, --home', async () => {
      const r = await raw(fullApi, 'GET', '/v1/id', { host: fullApi })
      expect(r.status).toBe(401)
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/)
      const message = (JSON.parse(r.text) as { error: { message: string } }).error.message
      expect(message).toContain(join(fullHome, 'api.token'))
      expect(message).toMatch(/--home/)
    })
  })

  describe('malformed requests', () => {
    it('request targets the URL parser refuses ("//", "//[", "//@", bad %-escapes), with or without the token, never take the daemon down', async () => {
      const token = await tokenOf(plain.home)
      for (const path of ['//', '///', '//[', '//@', '/v1/jobs/%E0%A4%A']) {
        const withToken: Record<string, string> = { authorization: `Bearer ${token}` }
        for (const auth of [{}, withToken]) {
          const r = await raw(plainApi, 'GET', path, { host: plainApi, ...auth })
          expect(r.status, `${path}: ${r.text}`).toBeGreaterThanOrEqual(400)
          expect(r.status, `${path}: ${r.text}`).toBeLessThan(500)
        }
      }
      // still alive and still the owner's
      const id = await raw(plainApi, 'GET', '/v1/id', { host: plainApi, authorization: `Bearer ${token}` })
      expect(id.status).toBe(200)
      expect(plain.child.exitCode).toBe(null)
    })
  })

  describe('the dashboard\'s files (served without the token)', () => {
    it('hold no data, forbid framing, inline script and other origins, and are the only paths without the token', async () => {
      const token = await tokenOf(plain.home)
      const id = JSON.parse((await raw(plainApi, 'GET', '/v1/id', { host: plainApi, authorization: `Bearer ${token}` })).text) as { did: string, peerId: string }
      for (const path of ['/ui/', '/ui/app.js', '/ui/app.css']) {
        const r = await raw(plainApi, 'GET', path, { host: plainApi })
        expect(r.status, path).toBe(200)
        noCors(r)
        const csp = String(r.headers['content-security-policy'])
        for (const rule of ['frame-ancestors \'none\'', 'script-src \'self\'', 'default-src \'none\'', 'connect-src \'self\'', 'base-uri \'none\'']) expect(csp, path).toContain(rule)
        expect(r.headers['x-frame-options']).toBe('DENY')
        expect(r.headers['x-content-type-options']).toBe('nosniff')
        expect(r.headers['referrer-policy']).toBe('no-referrer')
        // the same bytes for anyone: nothing of this daemon's identity, and not its token
        for (const secret of [token, id.did, id.peerId]) expect(r.text).not.toContain(secret)
      }
      // anything else, however spelled, is behind the token
      for (const path of ['/ui/index.html', '/ui/app.js/', '/ui/../v1/id', '/ui/%2e%2e/v1/id', '/ui//app.js', '/v1/events/stream', '/debug/metrics/prometheus']) {
        expect((await raw(plainApi, 'GET', path, { host: plainApi })).status, path).toBe(401)
      }
      // and only to read: a POST to a page's path is an API call
      expect((await raw(plainApi, 'POST', '/ui/', { host: plainApi, 'content-type': 'application/json' }, '{}')).status).toBe(401)
    })

    it('are refused to a DNS-rebinding page (its Host), like every route', async () => {
      const port = plainApi.split(':')[1] ?? ''
      for (const path of ['/ui/', '/ui/app.js']) {
        const r = await raw(plainApi, 'GET', path, { host: `evil.example:${port}` })
        expect(r.status, path).toBe(403)
        expect(r.code).toBe('ERR_BAD_HOST')
      }
    })
  })

  describe('test-only routes', () => {
    it('POST /v1/gossip/publish-raw is 404 with a valid token on a daemon started without --enable-test-routes', async () => {
      const body = JSON.stringify({ topic: JOBS_TOPIC, data: Buffer.from('x').toString('base64') })
      const r = await raw(plainApi, 'POST', '/v1/gossip/publish-raw', { host: plainApi, authorization: `Bearer ${await tokenOf(plain.home)}`, 'content-type': 'application/json' }, body)
      expect([r.status, r.code]).toEqual([404, 'ERR_NOT_FOUND'])
      const routes = await raw(plainApi, 'GET', '/v1/routes', { host: plainApi, authorization: `Bearer ${await tokenOf(plain.home)}` })
      expect(routes.text).not.toContain('publish-raw')
    })

    it('positive control: with the flag it is served', async () => {
      const body = JSON.stringify({ topic: JOBS_TOPIC, data: Buffer.from('x').toString('base64') })
      const r = await raw(fullApi, 'POST', '/v1/gossip/publish-raw', { host: fullApi, authorization: `Bearer ${await tokenOf(fullHome)}`, 'content-type': 'application/json' }, body)
      expect(r.status, r.text).toBe(200)
    })
  })
})
