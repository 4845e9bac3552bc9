// The dashboard: one script, no build step, no dependency, served by the
// daemon itself (node/ui/files.ts). Everything it shows comes from the
// token-guarded local API, and much of it is text from strangers on the
// network (reasons, names, logs, dispute reports): it is only ever put into
// the page as text (textContent, text nodes), never as markup, and the
// daemon's CSP allows no inline script. Never use innerHTML here.
'use strict'

const TOKEN_KEY = 'concur-api-token'
/** the events the page keeps (the daemon's ring keeps 10 000) */
const MAX_EVENTS = 5000
/** a stream that sends more than this without an event boundary is dropped (a broken or hostile answer) */
const MAX_PENDING_TEXT = 8 * 1024 * 1024

const state = {
  token: null,
  routes: null,
  events: [],
  lastSeq: 0,
  rendering: false,
  again: false,
  timer: null
}

// ---- the credential ----------------------------------------------------

/**
 * `concur ui` opens /ui/#token=…: the fragment never leaves the browser (not
 * sent to the server, not in a Referer). It is moved to this tab's
 * sessionStorage and taken out of the address bar and history at once.
 */
function takeToken () {
  const m = /(?:^#|&)token=([0-9a-f]{64})(?:&|$)/.exec(location.hash)
  if (m != null) {
    sessionStorage.setItem(TOKEN_KEY, m[1])
    history.replaceState(null, '', location.pathname + '#/node')
  }
  return sessionStorage.getItem(TOKEN_KEY)
}

class ApiFailure extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

async function api (path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${state.token}` }, cache: 'no-store' })
  if (res.status === 401) noCredential()
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new ApiFailure(res.status, body?.error?.code ?? 'ERR_API', body?.error?.message ?? `HTTP ${res.status}`)
  return body
}

/**
 * The value, or null where this daemon does not serve the route (a bootstrap
 * node has no store or requests, a plain node no worker): asked of the route
 * table, not found out by a 404, which a browser reports as an error.
 */
async function optional (path) {
  if (state.routes == null) state.routes = new Set((await api('/v1/routes')).routes.filter(r => r.method === 'GET').map(r => r.path))
  return state.routes.has(path) ? await api(path) : null
}

function noCredential () {
  sessionStorage.removeItem(TOKEN_KEY)
  banner('This page has no valid credential: the daemon gives a new one each time it starts. Run `concur ui` again and open the address it prints.')
  throw new ApiFailure(401, 'ERR_UNAUTHORIZED', 'no credential')
}

// ---- building the page (text only) -------------------------------------

function h (tag, props, ...kids) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'text') el.textContent = String(v)
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, String(v))
  }
  for (const c of kids.flat(Infinity)) {
    if (c == null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

/** a long id shown short, in full on hover and to screen readers */
function short (id, keep = 12) {
  const s = String(id ?? '')
  if (s.length <= keep + 8) return h('span', { class: 'mono' }, s)
  return h('span', { class: 'mono', title: s, 'aria-label': s }, `${s.slice(0, keep)}…${s.slice(-6)}`)
}

function badge (word) {
  const w = String(word)
  return h('span', { class: `badge ${/^[a-z-]+$/.test(w) ? w : ''}` }, w)
}

function time (iso) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return h('time', {}, String(iso ?? ''))
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleTimeString())
}

function facts (pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(p => p != null).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

function table (caption, head, rows) {
  if (rows.length === 0) return h('p', { class: 'muted' }, `${caption}: none yet.`)
  return h('div', { class: 'scroll' }, h('table', {},
    h('caption', { class: 'muted' }, caption),
    h('thead', {}, h('tr', {}, head.map(c => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)))
}

function bytes (n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

function seconds (ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–'
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`
}

function jobLink (jobId) {
  return h('a', { href: `#/requests/${encodeURIComponent(jobId)}` }, short(jobId))
}

function banner (text) {
  const b = document.getElementById('banner')
  b.textContent = text
  b.hidden = false
}

// ---- one line per event (the activity list) -----------------------------

function describe (e) {
  switch (e.type) {
    case 'job': return ['job announced ', short(e.jobId), ' by ', short(e.requester)]
    case 'attestation': return ['attestation for ', short(e.jobId), ' by ', short(e.worker), ': ', e.result?.status === 'success' ? short(e.result.artifact) : `failure (${e.result?.reason ?? ''})`]
    case 'claim': return ['claim on ', short(e.jobId), ' by ', short(e.worker), e.release != null ? ` (released: ${e.release.kind})` : '']
    case 'request:verdict': return ['request ', short(e.jobId), ': ', badge(e.status), ` (${e.counted?.length ?? 0}/${e.threshold})`]
    case 'request:release': return ['request ', short(e.jobId), ': ', short(e.worker), ` released it (${e.kind}): ${e.reason}`]
    case 'request:bundle': return ['request ', short(e.jobId), ': bundle written']
    case 'request:bundle-failed': return ['request ', short(e.jobId), `: bundle failed: ${e.error}`]
    case 'request:dispute': return ['request ', short(e.jobId), e.error != null ? `: dispute report failed: ${e.error}` : ': dispute report written']
    case 'request:non-reproducible': return ['request ', short(e.jobId), ': not reproducible, diff written']
    case 'policy:changed': return [`trust policy: ${e.threshold ?? 'no'} of ${e.trusted} keys`]
    case 'content:add': return ['added ', short(e.cid), ` (${bytes(e.bytes)})`]
    case 'content:progress': return e.done ? ['fetched ', short(e.cid), ` (${bytes(e.bytes)})`] : null
    case 'job:claimed': return ['worker claimed ', short(e.jobId)]
    case 'job:declined': return ['worker declined ', short(e.jobId), `: ${e.reason}`]
    case 'job:inputs-unavailable': return ['inputs of ', short(e.jobId), ` did not come: ${e.reason}`]
    case 'job:spot-check': return ['rebuilder checks ', short(e.jobId)]
    case 'build:progress': return e.progress?.stage === 'fetching' && e.progress.progress != null ? null : ['build ', short(e.jobId), `: ${e.progress?.stage}`]
    case 'build:attested': return ['build ', short(e.jobId), ': attested ', e.result?.status === 'success' ? short(e.result.artifact) : `failure (${e.result?.reason ?? ''})`]
    case 'build:abandoned': return ['build ', short(e.jobId), `: abandoned: ${e.reason}`]
    case 'build:error': return ['build ', short(e.jobId), `: error: ${e.message}`]
    case 'job:released': return ['worker released ', short(e.jobId), `: ${e.release?.kind}`]
    default: return null
  }
}

function activity (limit) {
  const items = []
  for (let i = state.events.length - 1; i >= 0 && items.length < limit; i--) {
    const s = state.events[i]
    const text = describe(s.event)
    if (text != null) items.push(h('li', {}, time(s.at), text))
  }
  return items.length === 0 ? h('p', { class: 'muted' }, 'Nothing has happened since the daemon started.') : h('ul', { class: 'activity', 'aria-label': 'Live activity, newest first' }, items)
}

// ---- pages -------------------------------------------------------------

async function nodePage () {
  const [id, stats, store, worker, peers] = await Promise.all([api('/v1/id'), api('/v1/stats'), optional('/v1/store'), optional('/v1/worker'), api('/v1/peers')])
  const g = stats.gossip
  return [
    h('h2', {}, 'This node'),
    facts([
      ['key (did)', short(id.did, 24)],
      ['peer id', short(id.peerId, 16)],
      ['listening on', h('span', { class: 'mono' }, id.multiaddrs.join('\n'))],
      ['connected peers', String(peers.peers.length)],
      ['role', worker != null ? 'worker' : store != null ? 'node (requester)' : 'bootstrap / relay']
    ]),
    h('h2', {}, 'Sandbox and limits'),
    worker == null
      ? h('p', { class: 'muted' }, 'This node does not build (start it with `concur daemon --worker`).')
      : facts([
          ['sandbox tier', badge(worker.tier)],
          ['builds at once', String(worker.policy.maxConcurrent)],
          ['per build', `${worker.policy.cpus} CPU, ${bytes(worker.policy.memoryBytes)} memory, ${bytes(worker.policy.diskBytes)} disk, ${worker.policy.wallSeconds} s`],
          ['running now', String(worker.running.length)]
        ]),
    h('h2', {}, 'Store'),
    store == null
      ? h('p', { class: 'muted' }, 'This node keeps no blocks.')
      : facts([
          ['blocks', String(store.blocks)],
          ['held', h('span', {}, `${bytes(store.liveBytes)} of ${bytes(store.quotaBytes)} `, h('meter', { min: 0, max: store.quotaBytes, value: store.liveBytes, 'aria-label': 'store use against its quota' }))],
          ['on disk', bytes(store.diskBytes)],
          ['pinned roots', String(store.pins)]
        ]),
    h('h2', {}, 'Gossip'),
    facts([
      ['messages accepted', String(g.accepted)],
      ['ignored', String(g.ignored)],
      ['rejected', String(g.rejected)],
      ['bytes fetched / served (DAG transfer)', `${bytes(stats.dag.fetched.bytes)} / ${bytes(stats.dag.served.bytes)}`]
    ]),
    h('h2', {}, 'Live activity'),
    activity(40)
  ]
}

async function requestsPage () {
  const { requests } = await optional('/v1/requests') ?? { requests: [] }
  const rows = [...requests].reverse().map(r => h('tr', { 'data-job': r.jobId },
    h('td', {}, jobLink(r.jobId)),
    h('td', {}, badge(r.status)),
    h('td', {}, time(r.submittedAt)),
    h('td', {}, String(r.counted.length)),
    h('td', { class: 'mono' }, r.artifact != null ? short(r.artifact) : '–')))
  return [h('h2', {}, 'Requests'), h('p', { class: 'muted' }, 'Jobs this node submitted, newest first. Each line updates as claims, attestations and verdicts arrive.'),
    table('Jobs submitted here', ['job', 'status', 'submitted', 'keys agreeing', 'artifact'], rows)]
}

/** the story of one job: announced, claims, attestations, releases, status changes */
function timeline (view) {
  const r = view.record
  const items = [{ at: r.submittedAt, what: ['announced (', String(view.threshold ?? '?'), ' trusted keys must agree)'] }]
  for (const s of state.events) {
    const e = s.event
    if (e.jobId !== r.jobId) continue
    if (e.type === 'claim') items.push({ at: s.at, what: [e.release != null ? `released (${e.release.kind}) by ` : 'claimed by ', short(e.worker)] })
  }
  for (const a of view.attestations.filter(a => a.thisJob)) {
    items.push({ at: a.finishedAt, what: ['attested by ', short(a.worker), ' ', badge(a.trusted ? 'trusted' : 'untrusted'), ': ', a.result.status === 'success' ? short(a.result.artifact) : `failure (${a.result.reason})`] })
  }
  for (const n of r.releases ?? []) items.push({ at: n.at, what: [short(n.worker), ` will not build it (${n.kind}): ${n.reason}`] })
  for (const s of r.history) items.push({ at: s.at, what: ['status ', badge(s.status), s.artifact != null ? [' on ', short(s.artifact)] : ''] })
  items.sort((x, y) => Date.parse(x.at) - Date.parse(y.at))
  return h('ol', { class: 'timeline', 'aria-label': 'Timeline' }, items.map(i => h('li', {}, time(i.at), i.what)))
}

async function requestPage (jobId) {
  const view = await api(`/v1/requests/${encodeURIComponent(jobId)}`)
  const r = view.record
  const equivocators = view.verdict?.equivocators ?? []
  const trusted = view.attestations.filter(a => a.trusted)
  const untrusted = view.attestations.filter(a => !a.trusted)
  const parts = [
    h('p', {}, h('a', { href: '#/requests' }, '← all requests')),
    h('h2', {}, 'Job ', short(r.jobId, 20)),
    facts([
      ['status', badge(r.status)],
      ['artifact', r.artifact != null ? short(r.artifact, 24) : '–'],
      ['trusted keys agreeing', `${r.counted.length} of the ${view.threshold ?? '?'} needed`],
      // only under a policy that groups keys by operator (PROTOCOL.md §8.1)
      view.verdict?.operators != null ? ['operators agreeing', `${view.verdict.operators.spanned.length} of the ${view.verdict.operators.min} needed${view.verdict.operators.spanned.length > 0 ? ': ' + view.verdict.operators.spanned.map(o => o.startsWith('did:') ? short(o) : o).join(', ') : ''}`] : null,
      ['attestations', `${trusted.length} from trusted keys, ${untrusted.length} from keys not trusted (not counted)`],
      ['equivocators', equivocators.length === 0 ? 'none' : h('span', {}, equivocators.map(e => [short(e.worker), ' ']))],
      ['submitted', time(r.submittedAt)],
      ['expires', time(r.expiresAt)],
      r.reasons.length > 0 ? ['why', r.reasons.join('; ')] : null
    ]),
    r.bundle != null ? h('p', {}, h('button', { type: 'button', 'data-key': 'bundle', onclick: () => { void download(r.jobId) } }, 'Download the bundle'), ' ', h('span', { class: 'muted' }, 'verify it offline with `concur verify`')) : null,
    h('h3', {}, 'Timeline'),
    timeline(view),
    h('h3', {}, 'Attestations'),
    table('Attestations of this build', ['worker', 'key', 'job', 'result', 'sandbox', 'finished'], view.attestations.map(a => h('tr', {},
      h('td', {}, short(a.worker)),
      h('td', {}, badge(equivocators.some(e => e.worker === a.worker) ? 'equivocator' : a.trusted ? 'trusted' : 'untrusted')),
      h('td', {}, a.thisJob ? 'this job' : 'another job'),
      h('td', {}, a.result.status === 'success' ? short(a.result.artifact) : [badge('failure'), ` ${a.result.reason}`]),
      h('td', {}, a.sandboxTier),
      h('td', {}, time(a.finishedAt)))))
  ]
  for (const [kind, made] of [['dispute', r.dispute], ['non-reproducible', r.nonReproducible]]) {
    if (made == null) continue
    parts.push(h('h3', {}, kind === 'dispute' ? 'Why it is disputed' : 'Why it is not reproducible'))
    if (made.summary != null) parts.push(h('pre', { 'aria-label': 'summary' }, made.summary))
    if (made.error != null) parts.push(h('p', {}, `The report could not be made: ${made.error}`))
    if (made.report != null) parts.push(await report(r.jobId, kind))
  }
  return parts
}

async function report (jobId, kind) {
  const rep = await api(`/v1/requests/${encodeURIComponent(jobId)}/report?kind=${kind}`)
  return h('section', { 'aria-label': `${kind} report` },
    h('h4', {}, 'Differing paths'),
    rep.differences.length === 0
      ? h('p', { class: 'muted' }, 'No path list (see the report below).')
      : table('Paths that differ from the reference', ['path', 'change', 'CID'], rep.differences.map(d => h('tr', { class: 'difference' }, h('td', { class: 'mono path' }, d.path), h('td', {}, d.change), h('td', {}, short(d.artifact))))),
    h('h4', {}, 'Report (with diffoscope\'s output)'),
    h('pre', { class: 'report' }, rep.text),
    rep.truncated ? h('p', { class: 'muted' }, `The report is ${bytes(rep.size)}; the first 1 MiB is shown. The whole of it is at ${rep.path}.`) : null)
}

async function download (jobId) {
  const res = await fetch(`/v1/requests/${encodeURIComponent(jobId)}/bundle`, { headers: { authorization: `Bearer ${state.token}` } })
  if (!res.ok) { banner(`The bundle could not be downloaded (HTTP ${res.status}).`); return }
  const url = URL.createObjectURL(await res.blob())
  const a = h('a', { href: url, download: `${jobId.replace(/[^a-z0-9]/gi, '')}.car` })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => { URL.revokeObjectURL(url) }, 60_000)
}

async function workerPage () {
  const info = await optional('/v1/worker')
  if (info == null) return [h('h2', {}, 'Worker'), h('p', {}, 'This node does not build. Start a worker with `concur daemon --worker`; it builds in a sandbox within the limits you set.')]
  // the builds of this worker, from the event feed: one row per job it touched
  const builds = new Map()
  for (const s of state.events) {
    const e = s.event
    if (!('worker' in e) || (!String(e.type).startsWith('job:') && !String(e.type).startsWith('build:'))) continue
    const b = builds.get(e.jobId) ?? { jobId: e.jobId, at: s.at }
    if (e.type === 'job:claimed') Object.assign(b, { requester: e.requester, claimedAt: s.at, outcome: 'building' })
    else if (e.type === 'job:declined') Object.assign(b, { outcome: 'declined', reason: e.reason })
    else if (e.type === 'build:progress' && b.outcome !== 'declined') b.stage = e.progress?.stage
    else if (e.type === 'build:attested') Object.assign(b, { requester: e.requester, outcome: e.result.status, artifact: e.result.artifact, reason: e.result.reason, startedAt: e.startedAt, finishedAt: e.finishedAt, tier: e.sandboxTier, cpus: e.parallelism })
    else if (e.type === 'build:abandoned') Object.assign(b, { outcome: 'abandoned', reason: e.reason })
    else if (e.type === 'build:error') Object.assign(b, { outcome: 'error', reason: e.message })
    else if (e.type === 'job:inputs-unavailable') Object.assign(b, { outcome: b.outcome ?? 'waiting', reason: e.reason })
    builds.set(e.jobId, b)
  }
  const p = info.policy
  const rows = [...builds.values()].reverse().map(b => h('tr', {},
    h('td', {}, short(b.jobId)),
    h('td', {}, b.requester != null ? short(b.requester) : '–'),
    h('td', {}, time(b.claimedAt ?? b.at)),
    h('td', {}, b.startedAt != null ? seconds(Date.parse(b.finishedAt) - Date.parse(b.startedAt)) : b.stage ?? '–'),
    h('td', {}, b.tier != null ? `${b.tier}, ${b.cpus} CPU` : '–'),
    h('td', {}, badge(b.outcome ?? 'seen'), b.artifact != null ? [' ', short(b.artifact)] : '', b.reason != null ? ` ${b.reason}` : '')))
  return [
    h('h2', {}, 'Worker'),
    facts([
      ['sandbox tier', badge(info.tier)],
      ['limits per build', `${p.cpus} CPU, ${bytes(p.memoryBytes)} memory, ${bytes(p.diskBytes)} disk, ${p.wallSeconds} s wall clock`],
      ['builds at once', String(p.maxConcurrent)],
      ['running now', info.running.length === 0 ? 'none' : h('span', {}, info.running.map(j => [jobLink(j), ' ']))],
      ['environments kept', `${info.environments.entries.length} (up to ${bytes(info.environments.maxBytes)})`]
    ]),
    h('h3', {}, 'Builds'),
    table('What this worker built, for whom, and how it ended', ['job', 'for (requester)', 'claimed', 'build time', 'sandbox', 'outcome'], rows)
  ]
}

async function networkPage () {
  const peers = await api('/v1/peers')
  const workers = new Set(state.events.filter(s => s.event.type === 'attestation').map(s => s.event.workerPeerId))
  const subscribed = new Set(peers.subscribers.jobs)
  const rows = peers.peers.map(p => {
    const roles = [...p.roles]
    if (workers.has(p.peerId)) roles.push('worker')
    if (p.roles.includes('relay') && !p.roles.includes('concur')) roles.unshift('bootstrap')
    return h('tr', {},
      h('td', {}, short(p.peerId, 16)),
      h('td', {}, roles.length === 0 ? '–' : roles.join(', ')),
      h('td', { class: 'mono' }, p.addr),
      h('td', {}, p.direction),
      h('td', {}, String(Math.round(p.score * 10) / 10)),
      h('td', {}, subscribed.has(p.peerId) ? 'yes' : 'no'))
  })
  return [
    h('h2', {}, 'Network'),
    h('p', { class: 'muted' }, `${peers.peers.length} connections; ${peers.discovered.length ?? 0} peers known. Roles come from what each peer serves; "worker": it attested a build this node saw.`),
    table('Connected peers', ['peer', 'roles', 'address', 'direction', 'gossip score', 'job topic'], rows)
  ]
}

// ---- routing, rendering, live updates ----------------------------------

function route () {
  const [page, arg] = location.hash.replace(/^#\/?/, '').split('/')
  const known = ['node', 'requests', 'worker', 'network']
  return { page: known.includes(page) ? page : 'node', arg: arg != null ? decodeURIComponent(arg) : undefined }
}

async function render () {
  if (state.token == null) return
  if (state.rendering) { state.again = true; return }
  state.rendering = true
  try {
    const { page, arg } = route()
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page')
      else a.removeAttribute('aria-current')
    }
    const content = page === 'requests' && arg != null
      ? await requestPage(arg)
      : await ({ node: nodePage, requests: requestsPage, worker: workerPage, network: networkPage })[page]()
    const main = document.getElementById('main')
    // keep the keyboard where it was across a live re-render
    const focused = document.activeElement?.dataset?.key
    const scroll = window.scrollY
    main.replaceChildren(...content.filter(c => c != null))
    main.dataset.page = page
    main.dataset.rendered = String(state.lastSeq)
    if (focused != null) main.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus()
    window.scrollTo(0, scroll)
    document.title = `concur: ${page}`
  } catch (err) {
    if (!(err instanceof ApiFailure && err.status === 401)) banner(`Could not load this page: ${err.message}`)
  } finally {
    state.rendering = false
    if (state.again) { state.again = false; schedule() }
  }
}

/** many events arrive together (a burst of claims): one re-render for them */
function schedule () {
  if (state.timer != null) return
  state.timer = setTimeout(() => { state.timer = null; void render() }, 250)
}

function keep (sequenced) {
  state.events.push(sequenced)
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS)
  state.lastSeq = sequenced.seq
}

async function loadEvents () {
  const feed = await api('/v1/events?after=0')
  state.events = []
  for (const s of feed.events) keep(s)
  state.lastSeq = feed.last
}

function live (text) {
  document.getElementById('live').textContent = text
}

/** the daemon's event stream (GET /v1/events/stream), read with fetch so the credential goes in a header */
async function follow () {
  for (let attempt = 0; ; attempt++) {
    // a hidden tab gives its stream back (the daemon serves a few at once): it follows again when shown
    if (document.hidden) {
      live('paused (tab hidden)')
      await new Promise(resolve => { document.addEventListener('visibilitychange', resolve, { once: true }) })
      if (document.hidden) continue
      await loadEvents().catch(() => {})
      schedule()
    }
    let why = 'reconnecting…'
    const ac = new AbortController()
    const hide = () => { if (document.hidden) ac.abort() }
    document.addEventListener('visibilitychange', hide)
    try {
      const res = await fetch(`/v1/events/stream?after=${state.lastSeq}`, { headers: { authorization: `Bearer ${state.token}` }, cache: 'no-store', signal: ac.signal })
      if (res.status === 401) { noCredential() }
      if (res.status === 503) why = 'too many live views of this daemon are open: retrying'
      if (!res.ok || res.body == null) throw new Error(`HTTP ${res.status}`)
      live('● live')
      attempt = 0
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let pending = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        pending += value
        if (pending.length > MAX_PENDING_TEXT) throw new Error('event stream sent an oversized event')
        let cut
        while ((cut = pending.indexOf('\n\n')) !== -1) {
          const block = pending.slice(0, cut)
          pending = pending.slice(cut + 2)
          await onBlock(block)
        }
      }
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) { live('no credential'); return }
    } finally {
      document.removeEventListener('visibilitychange', hide)
    }
    if (document.hidden) continue
    live(why)
    await new Promise(resolve => setTimeout(resolve, Math.min(10_000, 1000 * 2 ** Math.min(attempt, 4))))
  }
}

async function onBlock (block) {
  let name = 'message'
  let data = ''
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) name = line.slice(7)
    else if (line.startsWith('data: ')) data += line.slice(6)
  }
  if (data === '') return
  if (name === 'gap') {
    // the page fell behind what the daemon keeps: start again from what it has
    await loadEvents()
  } else {
    let s
    try { s = JSON.parse(data) } catch { return }
    if (typeof s?.seq !== 'number' || s.seq <= state.lastSeq) return
    keep(s)
  }
  schedule()
}

async function start () {
  state.token = takeToken()
  if (state.token == null) {
    banner('Open the dashboard with `concur ui`: it prints the address with this daemon\'s credential.')
    live('no credential')
    return
  }
  window.addEventListener('hashchange', () => {
    void render().then(() => { document.getElementById('main').focus({ preventScroll: true }) })
  })
  try {
    await loadEvents()
  } catch (err) {
    if (!(err instanceof ApiFailure && err.status === 401)) banner(`The daemon did not answer: ${err.message}`)
    return
  }
  await render()
  void follow()
}

void start()
