/**
 * A worker building in the `host` environment records its host's toolchain
 * in the attestation (issue 18: the three workers that converged on hello
 * shared one host's /usr, and the attestation said only
 * `{kind: host, platform: linux-x64}`). Read from os-release and dpkg's
 * status, reduced to what the record allows; a rootfs build records none
 * (its CID names its toolchain).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createAttestation, generateSigningKey } from '../../protocol/index.ts'
import { claimFor, fixedKey } from '../protocol/fixtures.ts'
import { addDirectory } from '../../src/content/index.ts'
import { hostToolchainOf, osName, readHostToolchain } from '../../src/worker/host-toolchain.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'
import { inProcessWorker, jobOf } from './in-process-worker.ts'

const STATUS = [
  'Package: gcc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 4:12.2.0-3',
  'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u14',
  'Package: make\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 4.3-4.1',
  'Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b7'
].join('\n\n') + '\n'

describe('a host build records the host\'s toolchain', () => {
  afterAll(async () => { await cleanupAll() })

  it('reads the distribution and the toolchain packages dpkg has installed, nothing else', () => {
    const h = hostToolchainOf('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', STATUS, 'linux 6.1')
    expect(h).toEqual({ os: 'Debian GNU/Linux 12 (bookworm)', packages: [{ name: 'gcc', version: '4:12.2.0-3' }, { name: 'libc6', version: '2.36-9+deb12u14' }] })
    // a host without dpkg, or whose os-release says something odd, still gets a record its decoder takes
    expect(hostToolchainOf(null, null, 'linux 6.1')).toEqual({ os: 'linux 6.1', packages: [] })
    expect(osName('PRETTY_NAME="Arch\u001b[31m Linux ☃"\n', 'x')).toBe('Arch?[31m Linux ?')
    expect(osName('NAME=Alpine\nVERSION_ID=3.20\n', 'x')).toBe('Alpine 3.20')
  })

  it('this machine\'s record is one the protocol takes', async () => {
    const h = await readHostToolchain()
    expect(h.os.length).toBeGreaterThan(0)
    const key = fixedKey('this-machine')
    expect(createAttestation({ ...claimFor(key), host: h }, key).claim.host).toEqual(h)
  })

  it('is in the attestation of a host build, and not in that of a rootfs build', async () => {
    const host = hostToolchainOf('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', STATUS, 'linux')
    const w = await inProcessWorker({ init: { scanMs: 50, hostToolchain: host } })
    const src = await tempDir()
    await writeFile(join(src, 'label'), 'host record\n')
    const source = (await addDirectory(w.blockstore, src)).cid.toString()
    const rootfsDir = await tempDir()
    await mkdir(join(rootfsDir, 'bin'))
    await writeFile(join(rootfsDir, 'bin', 'sh'), 'x')
    const rootfs = (await addDirectory(w.blockstore, rootfsDir)).cid.toString()
    const requester = generateSigningKey()
    const onHost = jobOf(requester, source, 1)
    const onRootfs = jobOf(requester, source, 2, { environment: { kind: 'rootfs', rootfs, platform: 'linux/amd64' } })
    w.records.add(onHost)
    w.records.add(onRootfs)
    await w.worker.start()
    try {
      for (let i = 0; i < 2; i++) {
        await w.until(() => w.inSandbox() > 0, 'a build in the sandbox')
        w.finish()
      }
      await w.until(() => w.attestations.length === 2, 'both attested')
      expect(w.attestations.find(a => a.claim.jobId === onHost.jobId)?.claim.host).toEqual(host)
      expect(w.attestations.find(a => a.claim.jobId === onRootfs.jobId)?.claim.host).toBeUndefined()
    } finally {
      await w.worker.stop()
    }
  })
})
