/**
 * Malicious BUILDS (not peers), end to end through a real worker process:
 * the requester submits them, the worker runs them in its sandbox and attests.
 *
 * Network, memory, disk, fork bomb, wall clock with detached grandchildren and
 * writes outside the build dir are proven against the sandbox itself in
 * test/sandbox/ (build-cannot-reach-loopback-listener, memory-hog-is-oom-killed,
 * disk-limit-stops-1gib-file, fork-bomb-is-stopped-by-process-limit,
 * wall-clock-kills-setsid-grandchildren, writes-outside-build-dir-fail). What
 * only shows through a worker is here: output trees that point outside
 * themselves, a 1 GiB log, and a build that goes after the worker's keys and
 * home (and tries to leave files and processes behind).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { api, cleanupAll, tempDir } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { allAlive, submitJob, viewUntil } from './adversary.ts'
import type { RequestView } from './adversary.ts'
import { reasonOf } from './adversary.ts'
import { processesWith } from './host.ts'

const GiB = 1024 * 1024 * 1024

describe('malicious builds run by a real worker', () => {
  let net: Devnet

  beforeAll(async () => {
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
  })

  afterAll(async () => {
    if (net != null) expect(await allAlive([net.requester, ...net.workers])).toBe(true)
    await cleanupAll()
  })

  const run = async (label: string, script: string, ok: (v: RequestView) => boolean = v => ['accepted', 'failed'].includes(v.record.status), output = 'out'): Promise<RequestView> => {
    const { jobId } = await submitJob(net.requester, { label, script, replicas: 1, output })
    return await viewUntil(net.requester, jobId, v => ok(v) && v.attestations.length === 1, `verdict of ${label}`, 180_000)
  }

  const failedWith = (v: RequestView, reason: RegExp): void => {
    expect(v.record.status).toBe('failed')
    expect(v.record.artifact).toBeUndefined()
    expect(v.attestations[0]?.result.status).toBe('failure')
    expect(reasonOf(v.attestations[0])).toMatch(reason)
  }

  it('symlink in the output pointing at /etc/passwd: a failed attestation that names it, no artifact', async () => {
    const v = await run('symlink-abs', 'mkdir out; echo fine > out/ok; ln -s /etc/passwd out/link')
    failedWith(v, /symlink pointing outside the output tree: link -> \/etc\/passwd/)
  })

  it('symlink with `..` climbing out of the output: failed, named', async () => {
    const v = await run('symlink-dotdot', 'mkdir -p out/sub; ln -s ../../label out/sub/up')
    failedWith(v, /symlink pointing outside the output tree: sub\/up -> \.\.\/\.\.\/label/)
  })

  it('the output directory itself a symlink (out -> /etc): failed, named', async () => {
    const v = await run('symlink-out', 'ln -s /etc out')
    failedWith(v, /output path out is a symlink/)
  })

  it('a symlinked parent of the output (a -> /, output a/etc, which exists on the worker\'s host too): failed, named', async () => {
    // the tree is copied out of the sandbox with links kept verbatim, so `a/etc`
    // would resolve to the HOST's /etc: the parent check must catch it
    const v = await run('symlink-parent', 'ln -s / a', undefined, 'a/etc')
    failedWith(v, /a parent of a\/etc is a symlink/)
  })

  it('an output path with `..` is refused before any job is announced', async () => {
    const before = (await api<{ requests: unknown[] }>(net.requester.api, 'GET', '/v1/requests')).requests.length
    await expect(submitJob(net.requester, { label: 'dotdot-output', script: 'true', output: '../escape' })).rejects.toThrow(/400 output: segments must not be empty, "\." or "\.\."/)
    await expect(submitJob(net.requester, { label: 'abs-output', script: 'true', output: '/etc' })).rejects.toThrow(/400 output: must be relative/)
    expect((await api<{ requests: unknown[] }>(net.requester.api, 'GET', '/v1/requests')).requests.length).toBe(before)
  })

  it('a 1 GiB log: capped, the tail kept, the worker survives and attests', async () => {
    const marker = `TAIL-MARKER-${process.pid}`
    const bytes = GiB
    const v = await run('huge-log', `yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop | head -c ${bytes}; echo; echo ${marker}; mkdir out; echo built > out/ok`)
    expect(v.record.status).toBe('accepted')
    // more than the default tail (256 KiB), so the worker's own truncation note shows
    const logs = await api<{ logs: Array<{ text: string }> }>(net.requester.api, 'GET', `/v1/requests/${v.record.jobId}/logs?bytes=${2 * 1024 * 1024}`)
    const text = logs.logs[0]!.text
    expect(text.startsWith('[concur: log truncated, tail kept]\n')).toBe(true)
    expect(text.trimEnd().endsWith(marker)).toBe(true)
    expect(text.length).toBeLessThanOrEqual(2 * 1024 * 1024)
    // the worker is alive and its memory did not take the gigabyte
    const stats = await api<{ memory: { rss: number } }>(net.workers[0]!.api, 'GET', '/v1/stats')
    expect(stats.memory.rss).toBeLessThan(bytes / 2)
  })

  it('a build that goes after the worker\'s keys and home sees neither, and leaves no file or process behind', async () => {
    const home = net.workers[0]!.home
    const keyFile = join(home, 'keys', 'signing.key')
    const seed = (JSON.parse(await readFile(keyFile, 'utf8')) as { seed: string }).seed
    const peerKey = (await readFile(join(home, 'keys', 'peer.key'))).toString('base64')
    const outside = join(await tempDir('concur-adv-outside-'), 'pwned')
    const marker = `300.${process.pid}${Date.now() % 100000}`
    const script = [
      'mkdir out',
      `cat ${keyFile} ${home}/keys/peer.key > out/stolen 2>&1`,
      `ls -la ${home} ${home}/keys >> out/stolen 2>&1`,
      `cp -r ${home} out/home 2>>out/stolen`,
      'cat /proc/1/environ /proc/self/mountinfo >> out/stolen 2>&1',
      'find / -path /proc -prune -o -name \'signing.key\' -print 2>/dev/null >> out/stolen',
      `echo pwned > ${home}/pwned 2>>out/stolen`,
      `echo pwned > ${outside} 2>>out/stolen`,
      `(setsid sleep ${marker} &) ; (sleep ${marker} &)`,
      `cat out/stolen; echo ${seed.slice(0, 8)}-is-only-a-prefix-the-test-knows`
    ].join('; ')
    const v = await run('steal-keys', script)
    expect(v.record.status).toBe('accepted')
    const artifact = v.record.artifact as string
    const out = join(await tempDir(), 'artifact')
    await api(net.requester.api, 'POST', '/v1/content/get', { cid: artifact, out })
    const stolen = await readFile(join(out, 'stolen'), 'utf8')
    expect(stolen).toMatch(/No such file or directory/)
    const logs = await api<{ logs: Array<{ text: string }> }>(net.requester.api, 'GET', `/v1/requests/${v.record.jobId}/logs`)
    for (const text of [stolen, logs.logs[0]!.text]) {
      expect(text).not.toContain(seed)
      expect(text).not.toContain(peerKey)
    }
    expect(existsSync(join(out, 'home'))).toBe(false)
    // nothing written outside the build dir, nothing left running
    expect(existsSync(join(home, 'pwned'))).toBe(false)
    expect(existsSync(outside)).toBe(false)
    expect(await processesWith(`sleep ${marker}`)).toEqual([])
  })
})
