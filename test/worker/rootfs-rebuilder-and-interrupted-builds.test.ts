import { afterAll, describe, expect, it } from 'vitest'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { api, cleanupAll, runConcur, startConcur, tempDir, waitFor } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import { BUSYBOX, busyboxRootfs } from '../helpers/rootfs.ts'

async function processesWith (marker: string): Promise<number[]> {
  const found: number[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(marker)) found.push(Number(pid))
  }
  return found
}

describe('worker: rootfs environments, rebuilders, interrupted builds', () => {
  afterAll(async () => { await cleanupAll() })

  it.skipIf(!existsSync(BUSYBOX))('runs a build inside a busybox rootfs that was added to the store and named by CID', async () => {
    const net = await startNetwork({ workers: [{}, {}], threshold: 2 })
    const rootfs = await busyboxRootfs(await tempDir(), ['sh', 'cp', 'mkdir', 'cat', 'echo', 'ls', 'uname', 'head'], 'NAME="concur busybox test rootfs"\n')
    const added = await runConcur(['add', rootfs], { home: net.requester.home })
    expect(added.code).toBe(0)
    const rootfsCid = (added.json() as { cid: string }).cid
    const src = await tempDir()
    await writeFile(join(src, 'input.txt'), 'in a rootfs\n')
    const r = await submit(net.requester, src, ['--out', 'out', '--replicas', '2', '--timeout', '90', '--env', rootfsCid],
      ['/bin/sh', '-c', 'mkdir -p out && cat /etc/os-release > out/os && ls /usr > out/usr 2>&1; ls / > out/root; cat input.txt >> out/os'])
    expect(r.view.record.status).toBe('accepted')
    const out = join(await tempDir(), 'artifact')
    expect((await runConcur(['get', r.view.record.artifact as string, '-o', out], { home: net.requester.home })).code).toBe(0)
    // it ran inside the rootfs: its /etc/os-release, and no host /usr
    expect(await readFile(join(out, 'os'), 'utf8')).toBe('NAME="concur busybox test rootfs"\nin a rootfs\n')
    expect(await readFile(join(out, 'usr'), 'utf8')).toMatch(/No such file|can't access|not found/i)
  })

  it('a rebuilder spot-checks jobs whose replicas are already taken, and its attestation counts', async () => {
    const net = await startNetwork({ workers: [{}, { args: ['--sample', '1', '--rebuild-only'] }], threshold: 2 })
    const src = await tempDir()
    await writeFile(join(src, 'x'), 'spot check me\n')
    const r = await submit(net.requester, src, ['--out', 'out', '--replicas', '1', '--timeout', '90'], ['sh', '-c', 'mkdir -p out && cp x out/'])
    expect(r.view.record.status).toBe('accepted')
    expect(new Set(r.view.attestations.map(a => a.worker))).toEqual(new Set(net.workers.map(w => w.did)))
  })

  it('a worker killed mid-build leaves no build process behind and never attests the interrupted build after restart', async () => {
    const net = await startNetwork({ workers: [{}], threshold: 1 })
    const worker = net.workers[0]!
    const marker = `${Math.floor(Math.random() * 1e6) + 7_000_000}`
    const src = await tempDir()
    await writeFile(join(src, 'f'), 'x\n')
    const submitted = await runConcur(['submit', src, '--out', 'out', '--replicas', '1', '--timeout', '90', '--', 'sh', '-c', `sleep ${marker}; mkdir out`], { home: net.requester.home })
    expect(submitted.code).toBe(0)
    const jobId = (submitted.json() as { jobId: string }).jobId
    await waitFor(async () => (await processesWith(`sleep\0${marker}`)).length > 0, 'the build to start')

    worker.proc.child.kill('SIGKILL')
    await worker.proc.exited
    await waitFor(async () => (await processesWith(`sleep\0${marker}`)).length === 0, 'no build process left after the worker died', 10_000)

    const again = startConcur(['daemon', '--worker', '--bootstrap', net.bootAddr], { home: worker.home })
    const ready = await again.ready as { api: string }
    const events = await waitFor(async () => {
      const e = await api<{ events: Array<{ event: { type: string, jobId?: string, reason?: string } }> }>(ready.api, 'GET', '/v1/events?after=0')
      return e.events.find(x => x.event.type === 'build:abandoned' && x.event.jobId === jobId)
    }, 'the restarted worker to report the interrupted build')
    expect(events.event.reason).toMatch(/interrupted/)
    // the worker reads its interrupted builds before it looks at any job (and
    // reports them, as above): from then on the job is done for it, at every
    // scan. So it is not building it now, and has not attested it
    const info = await api<{ running: string[] }>(ready.api, 'GET', '/v1/worker')
    expect(info.running).not.toContain(jobId)
    const status = await runConcur(['status', jobId], { home: net.requester.home })
    const view = status.json() as { attestations: Array<{ worker: string }> }
    expect(view.attestations.filter(a => a.worker === worker.did)).toHaveLength(0)
    expect(await processesWith(`sleep\0${marker}`)).toHaveLength(0)
  })
})
