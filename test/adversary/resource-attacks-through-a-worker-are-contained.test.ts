/**
 * Malicious builds that attack the worker's host resources, end to end: the
 * requester submits them, a real worker daemon runs them under the resources
 * the job asked for, and the worker must survive, attest, and leave nothing
 * behind. test/sandbox/ proves the same limits against the sandbox runner
 * directly, with controls; this file proves the worker applies them to jobs
 * from the network (a job's resource ask becomes the sandbox's limits).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { existsSync } from 'node:fs'
import { cleanupAll } from '../helpers/processes.ts'
import { startNetwork } from '../helpers/network.ts'
import type { Devnet } from '../helpers/network.ts'
import { allAlive, submitJob, viewUntil } from './adversary.ts'
import type { RequestView } from './adversary.ts'
import { reasonOf } from './adversary.ts'
import { processesWith } from './host.ts'

const MiB = 1024 * 1024
const SMALL = { memoryBytes: 256 * MiB, cpus: 1, diskBytes: 100 * MiB, wallSeconds: 8, processes: 64 }

describe('resource attacks through a real worker', () => {
  let net: Devnet
  let server: Server
  let connections = 0
  let port = 0

  beforeAll(async () => {
    server = createServer((s) => { connections++; s.destroy() })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
    net = await startNetwork({ workers: [{}], trust: [0], threshold: 1 })
  })

  afterAll(async () => {
    if (net != null) expect(await allAlive([net.requester, ...net.workers])).toBe(true)
    await cleanupAll()
    server?.close()
  })

  const attack = async (label: string, script: string): Promise<RequestView> => {
    const marker = `${label}-${process.pid}-${Date.now() % 100000}`
    // `$0` carries the marker into every process of the build, so the host can be searched for leftovers
    const { jobId } = await submitJob(net.requester, { label, replicas: 1, resources: SMALL, script: `: ${marker}; ${script}` })
    const v = await viewUntil(net.requester, jobId, v => ['accepted', 'failed'].includes(v.record.status) && v.attestations.length === 1, `verdict of ${label}`, 120_000)
    expect(await processesWith(marker)).toEqual([])
    expect(await allAlive([net.requester, ...net.workers])).toBe(true)
    return v
  }

  it('network: a build cannot reach a TCP listener on the worker host\'s loopback', async () => {
    await attack('net', `bash -c 'echo hi > /dev/tcp/127.0.0.1/${port}' 2>/dev/null && echo reached; mkdir out; echo done > out/x`)
    expect(connections).toBe(0)
  })

  it('memory: a 2 GiB allocation under a 256 MiB job is killed, failed attestation', async () => {
    const v = await attack('mem', 'awk \'BEGIN { s = "x"; while (length(s) < 2147483648) s = s s; print length(s) }\' || exit 1; mkdir out; echo survived > out/x')
    // with no limit awk gets its 2 GiB (the machine has more) and the build is accepted
    expect(v.record.status).toBe('failed')
  })

  it('disk: a 1 GiB file under a 100 MiB job fails the build', async () => {
    const v = await attack('disk', 'set -e; mkdir out; dd if=/dev/zero of=out/big bs=1M count=1024 2>&1')
    expect(v.record.status).toBe('failed')
  })

  it('fork bomb: stopped by the job\'s process limit, nothing of it survives', async () => {
    await attack('forkbomb', 'f() { f | f & }; f; sleep 2; mkdir out; echo done > out/x')
  })

  it('wall clock: a build that ignores SIGTERM and leaves setsid grandchildren is killed entirely', async () => {
    const stubborn = 'trap "" TERM; while :; do sleep 1; done'
    const v = await attack('wall', `trap "" TERM; setsid sh -c '${stubborn}' "$0" & (setsid sh -c '${stubborn}' "$0" &) ; ${stubborn}`)
    expect(v.record.status).toBe('failed')
    expect(reasonOf(v.attestations[0])).toMatch(/wall/i)
  })

  it('writes outside the build dir: refused, nothing reaches the host', async () => {
    const target = `/tmp/concur-adv-outside-${process.pid}`
    await attack('outside', `echo pwned > ${target}; echo pwned > /etc/concur-pwned; echo pwned > /usr/concur-pwned; mkdir out; echo done > out/x`)
    expect(existsSync(target)).toBe(false)
    expect(existsSync('/etc/concur-pwned')).toBe(false)
    expect(existsSync('/usr/concur-pwned')).toBe(false)
  })
})
