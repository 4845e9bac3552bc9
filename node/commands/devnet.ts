import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { output, progress } from '../cli.ts'
import type { Command, GlobalFlags } from '../cli.ts'
import { CliError } from '../errors.ts'
import { terminalSafe } from '../../src/text/terminal-safe.ts'
import { readApiToken } from '../home.ts'
import { dashboardUrl } from '../ui/files.ts'

const BIN = fileURLToPath(new URL('../bin/concur.ts', import.meta.url))
export const EXAMPLE_PROJECT = fileURLToPath(new URL('../devnet/example', import.meta.url))

interface Proc {
  name: string
  home: string
  child: ChildProcess
  ready: Promise<Record<string, unknown>>
  stderr: () => string
}

function startProc (name: string, args: string[], home: string): Proc {
  const child = spawn(process.execPath, [BIN, ...args, '--home', home, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const start = out.indexOf('{')
      if (start === -1) return
      for (let end = out.indexOf('\n}', start); end !== -1; end = out.indexOf('\n}', end + 1)) {
        try { resolve(JSON.parse(out.slice(start, end + 2)) as Record<string, unknown>); return } catch { /* incomplete */ }
      }
    })
    child.on('exit', (code) => { reject(new CliError(`${name} exited (${code ?? 'signal'}) before it was ready:\n${err.trim()}`, 'ERR_DEVNET', 1)) })
  })
  ready.catch(() => {})
  child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  return { name, home, child, ready, stderr: () => err }
}

async function run (args: string[], home: string, opts: { json?: boolean, onStderr?: (line: string) => void } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    // global flags before a `--`: what follows it is the build command
    const dash = args.indexOf('--')
    const own = dash === -1 ? args : args.slice(0, dash)
    const after = dash === -1 ? [] : args.slice(dash)
    const child = spawn(process.execPath, [BIN, ...own, '--home', home, ...(opts.json === false ? [] : ['--json']), ...after], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCUR_PROGRESS: '1' } })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString()
      const lines = err.split('\n')
      err = lines.pop() ?? ''
      for (const l of lines) opts.onStderr?.(l)
    })
    child.on('exit', (code) => { resolve({ code, stdout: out, stderr: err }) })
  })
}

async function stopAll (procs: Proc[]): Promise<void> {
  await Promise.all(procs.map(async (p) => {
    if (p.child.exitCode != null || p.child.signalCode != null) return
    const exited = new Promise(resolve => p.child.once('exit', resolve))
    p.child.kill('SIGTERM')
    const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }))
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

export const devnetCommand: Command = {
  name: 'devnet',
  summary: 'run a whole network on loopback: bootstrap, 3 trusted workers, 1 dissenting, a requester; build the example and verify',
  usage: 'concur devnet [--keep] [--workers N] [--timeout S] [--project DIR --out PATH -- CMD…] [--json]',
  options: {
    keep: { type: 'boolean', default: false },
    workers: { type: 'string', default: '3' },
    timeout: { type: 'string', default: '180' },
    project: { type: 'string' },
    out: { type: 'string' },
    'no-dissenter': { type: 'boolean', default: false }
  },
  async run ({ values, global, rest }) {
    const g: GlobalFlags = global
    const n = Number(values.workers)
    if (!Number.isInteger(n) || n < 2) throw new CliError('--workers must be 2 or more', 'ERR_USAGE', 64)
    const timeout = Number(values.timeout)
    const root = await mkdtemp(join(tmpdir(), 'concur-devnet-'))
    const procs: Proc[] = []
    const say = (line: string): void => { progress({ json: false }, line) }
    let ok = false
    try {
      say(`devnet in ${root}`)
      const boot = startProc('bootstrap', ['bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'], join(root, 'bootstrap'))
      procs.push(boot)
      const b = await boot.ready
      const bootAddr = (b.multiaddrs as string[])[0] as string
      say(`bootstrap node  ${bootAddr}`)

      const workers: Proc[] = []
      for (let i = 1; i <= n; i++) {
        workers.push(startProc(`worker-${i}`, ['daemon', '--worker', '--bootstrap', bootAddr], join(root, `worker-${i}`)))
      }
      const dissenter = values['no-dissenter'] === true
        ? undefined
        // a job names only its requester's trusted keys as builders (PROTOCOL.md §7),
        // so the untrusted dissenter builds as a rebuilder spot-checking every job
        : startProc('dissenter', ['daemon', '--worker', '--tamper-output', '--sample', '1', '--bootstrap', bootAddr], join(root, 'dissenter'))
      const requester = startProc('requester', ['daemon', '--bootstrap', bootAddr], join(root, 'requester'))
      procs.push(...workers, ...(dissenter != null ? [dissenter] : []), requester)
      const workerIds = await Promise.all(workers.map(async w => await w.ready))
      for (const [i, w] of workerIds.entries()) say(`worker-${i + 1}        ${String(w.did)} (trusted)`)
      if (dissenter != null) say(`dissenter       ${String((await dissenter.ready).did)} (untrusted, alters its output)`)
      const req = await requester.ready
      say(`requester       ${String(req.did)}`)
      // with --keep, the dashboard is worth opening now: it shows the job go from pending to accepted
      const dashboard = values.keep === true ? dashboardUrl(String(req.api), await readApiToken(requester.home)) : undefined
      if (dashboard != null) say(`dashboard       ${dashboard}`)

      const trusted = workerIds.map(w => String(w.did))
      const k = 2
      await run(['trust', 'add', ...trusted], requester.home)
      const pol = await run(['policy', 'set', '--threshold', String(k)], requester.home)
      if (pol.code !== 0) throw new CliError(`policy set failed: ${pol.stderr}`, 'ERR_DEVNET', 1)
      say(`trust policy    ${trusted.length} trusted workers, threshold k = ${k}`)

      // wait until the requester sees every worker on the jobs topic
      const expected = workerIds.length + (dissenter != null ? 1 : 0)
      const deadline = Date.now() + 60_000
      while (true) {
        const r = await run(['peers'], requester.home)
        const subs = r.code === 0 ? (JSON.parse(r.stdout) as { subscribers: { jobs: string[] } }).subscribers.jobs.length : 0
        if (subs >= expected + 1) break // workers + the bootstrap node
        if (Date.now() > deadline) throw new CliError(`only ${subs} peers joined the jobs topic within 60 s`, 'ERR_TIMEOUT', 1)
        await sleep(300)
      }
      say(`network         ${expected} workers and the bootstrap node are on the jobs topic`)

      const project = values.project as string | undefined ?? EXAMPLE_PROJECT
      const command = rest.length > 0 ? rest : ['sh', 'build.sh']
      const outPath = values.out as string | undefined ?? 'out'
      say(`submitting      ${project} -- ${command.join(' ')}`)
      const submit = await run(['submit', project, '--out', outPath, '--replicas', String(expected), '--wait', '--timeout', String(timeout), '--', ...command], requester.home, {
        onStderr: (l) => { say(`  ${l}`) }
      })
      let result: { record?: { status: string, artifact?: string, bundle?: string, jobId: string, dissent: unknown[] }, attestations?: unknown[] } = {}
      try { result = JSON.parse(submit.stdout) as typeof result } catch { /* reported below */ }
      const record = result.record
      if (record == null) throw new CliError(`submit failed (exit ${submit.code ?? '?'}): ${submit.stderr}`, 'ERR_DEVNET', 1)
      // --wait ends at the verdict; give the slower workers (the dissenter among
      // them) a few seconds so their attestations show up in the summary
      for (let waited = 0; waited < 15_000 && (result.attestations?.length ?? 0) < expected; waited += 500) {
        await sleep(500)
        const st = await run(['status', record.jobId], requester.home)
        try { result = { ...result, ...(JSON.parse(st.stdout) as typeof result) } } catch { break }
      }
      say(`verdict         ${record.status.toUpperCase()}`)
      say(`artifact        ${record.artifact ?? '(none)'}`)
      say('attestations:')
      for (const a of (result.attestations ?? []) as Array<{ worker: string, trusted: boolean, result: { status: string, artifact?: string, reason?: string } }>) {
        const tag = !a.trusted ? 'untrusted, not counted' : a.result.artifact === record.artifact ? 'trusted, counted' : 'trusted, differs'
        // an attestation's fields are its signer's words: one line each, controls escaped
        const what = a.result.status === 'success' ? a.result.artifact ?? '' : `failed: ${a.result.reason ?? ''}`
        say(`  ${terminalSafe(a.worker, { singleLine: true })}  ${terminalSafe(what, { singleLine: true })}  (${tag})`)
      }
      say(`dissent         ${record.dissent.length} trusted dissenting key(s); untrusted attestations are shown, never counted`)
      if (record.status !== 'accepted' || record.bundle == null) {
        throw new CliError(`the example was not accepted (${record.status}); logs: concur logs ${record.jobId} --home ${requester.home}`, 'ERR_DEVNET', 1)
      }
      // the devnet's homes are removed at the end: keep a copy of the bundle
      const bundle = values.keep === true ? record.bundle : join(tmpdir(), `concur-devnet-${record.jobId}.car`)
      if (bundle !== record.bundle) await copyFile(record.bundle, bundle)
      say(`proof bundle    ${bundle}`)
      const verify = await run(['verify', bundle, '--trusted', ...trusted.flatMap((t, i) => i === 0 ? [t] : ['--trusted', t]), '--threshold', String(k)], requester.home)
      if (verify.code !== 0) throw new CliError(`the bundle did not verify offline:\n${verify.stdout}${verify.stderr}`, 'ERR_DEVNET', 1)
      say('offline check   concur verify: OK (signatures, buildId, every block, k of n trusted keys)')
      ok = true
      output(g, { ok, root, bootstrap: bootAddr, jobId: record.jobId, verdict: record.status, artifact: record.artifact, bundle, attestations: result.attestations, ...(dashboard != null ? { dashboard } : {}) }, () =>
        `accepted ${record.artifact ?? ''}`)
      if (values.keep === true) {
        say([
          '',
          'the network keeps running (Ctrl-C stops it). Watch it in a browser:',
          `  ${dashboard ?? ''}`,
          `  (or: npx concur ui --open --home ${requester.home}). Talk to it with:`,
          `  npx concur status --home ${requester.home}`,
          `  npx concur submit DIR --out out --wait --home ${requester.home} -- sh build.sh`,
          `  npx concur get ${record.artifact ?? 'CID'} -o /tmp/artifact --home ${requester.home}`,
          `  npx concur daemon --bootstrap ${bootAddr} --home /tmp/another-peer`
        ].join('\n'))
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => { resolve() })
          process.once('SIGTERM', () => { resolve() })
        })
      }
      return 0
    } catch (err) {
      for (const p of procs) {
        const tail = p.stderr().trim().split('\n').slice(-5).join('\n')
        // daemons log what peers sent them (job ids, reasons): escaped like any text from the network
        if (tail !== '' && !ok) process.stderr.write(`--- ${p.name} stderr (tail) ---\n${terminalSafe(tail)}\n`)
      }
      throw err
    } finally {
      say('stopping the devnet')
      await stopAll(procs)
      await rm(root, { recursive: true, force: true }).catch(() => {})
    }
  }
}
