/**
 * Environments by CID, through real processes (issue 18): a worker that
 * lacks a job's rootfs fetches and exports it once; a second job naming the
 * same CID starts from the kept tree without exporting it again (each job
 * used to export the whole rootfs into its own work directory first: 22–53 s
 * for a 549 MB Debian build root). The kept tree is shared, so a build must
 * not be able to change it: the first job tries to write into its /bin and
 * /etc, and the second sees neither change.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { EventsResponse } from '../../node/api/types.ts'
import { api, cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'
import { startNetwork, submit } from '../helpers/network.ts'
import { BUSYBOX, busyboxRootfs } from '../helpers/rootfs.ts'

describe('environments kept by CID on a worker', () => {
  afterAll(async () => { await cleanupAll() })

  it.skipIf(!existsSync(BUSYBOX))('the second job on a rootfs starts without exporting it, and the first could not change it', async () => {
    const net = await startNetwork({ workers: [{}], threshold: 1 })
    const worker = net.workers[0]!
    const rootfs = await busyboxRootfs(await tempDir(), ['sh', 'cp', 'mkdir', 'cat', 'echo', 'ls', 'rm', 'touch'], 'NAME="kept environment"\n')
    const added = await runConcur(['add', rootfs], { home: net.requester.home })
    expect(added.code).toBe(0)
    const env = (added.json() as { cid: string }).cid

    const build = async (label: string): Promise<string> => {
      const src = await tempDir()
      await writeFile(join(src, 'label'), `${label}\n`)
      const r = await submit(net.requester, src, ['--out', 'out', '--replicas', '1', '--timeout', '90', '--env', env], ['/bin/sh', '-c',
        // try to change the environment; record what the build sees of it
        'mkdir -p out; (echo planted > /bin/planted) 2>/dev/null; (echo changed > /etc/os-release) 2>/dev/null; (rm -f /bin/cat) 2>/dev/null; ls /bin > out/bin; cat /etc/os-release > out/os; cat label >> out/os'])
      expect(r.view.record.status, JSON.stringify(r.view.record.reasons)).toBe('accepted')
      const out = join(await tempDir(), 'artifact')
      expect((await runConcur(['get', r.view.record.artifact as string, '-o', out], { home: net.requester.home })).code).toBe(0)
      return `${await readFile(join(out, 'bin'), 'utf8')}--\n${await readFile(join(out, 'os'), 'utf8')}`
    }
    const first = await build('first')
    const second = await build('second')
    for (const [seen, label] of [[first, 'first'], [second, 'second']] as const) {
      expect(seen).not.toContain('planted')
      expect(seen).toContain('cat\n')
      expect(seen).toContain(`NAME="kept environment"\n${label}\n`)
    }

    // the worker's own account: exported for the first job, already there for the second
    const feed = await api<EventsResponse>(worker.api, 'GET', '/v1/events?after=0')
    const ready = feed.events.flatMap(({ event }) => event.type === 'build:progress' && event.progress.stage === 'environment' ? [event.progress] : [])
    expect(ready.map(p => [p.cid, p.cached])).toEqual([[env, false], [env, true]])
    const info = await api<{ environments: { entries: Array<{ cid: string, users: number }> } }>(worker.api, 'GET', '/v1/worker')
    expect(info.environments.entries).toEqual([expect.objectContaining({ cid: env, users: 0 })])
  })
})
