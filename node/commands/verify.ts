/** `concur verify`: check a proof bundle offline. */
import { resolve } from 'node:path'
import { readFile } from 'node:fs/promises'
import { resolveHome, homePaths } from '../home.ts'
import { output } from '../cli.ts'
import type { Command } from '../cli.ts'
import { CliError, UsageError } from '../errors.ts'
import { readPolicyFile, toTrustPolicy, checkDid } from '../policy-store.ts'
import { createPolicy, isProtocolError } from '../../protocol/index.ts'
import type { TrustPolicy } from '../../protocol/index.ts'
import { oneLine } from '../render/request.ts'

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a proof bundle offline (signatures, buildId, every block, the policy)',
  usage: 'concur verify BUNDLE.car [--trusted DID… --threshold K [--required DID]…] [--home DIR] [--json]',
  options: {
    trusted: { type: 'string', multiple: true },
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [file] = positionals
    if (file == null) throw new UsageError('concur verify needs a bundle file')
    let policy: TrustPolicy
    if (values.trusted != null) {
      if (values.threshold == null) throw new UsageError('--trusted needs --threshold K')
      for (const d of values.trusted as string[]) checkDid(d)
      try {
        policy = createPolicy({ trusted: values.trusted as string[], threshold: Number(values.threshold), ...(values.required != null ? { required: values.required as string[] } : {}) })
      } catch (err) {
        if (isProtocolError(err)) throw new UsageError(`bad policy: ${err.message}`)
        throw err
      }
    } else {
      const home = resolveHome(global.home)
      policy = toTrustPolicy(await readPolicyFile(home), homePaths(home).policy)
    }
    let bytes: Uint8Array
    try {
      bytes = await readFile(resolve(file))
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
    }
    const { verifyBundle } = await import('../../src/requester/bundle/index.ts')
    const report = verifyBundle(bytes, { policy, now: Date.now() })
    output(global, report, () => [
      report.ok ? `OK: bundle verified offline — ${report.verdict?.status ?? ''}` : 'INVALID bundle',
      ...(report.jobId != null ? [`job       ${report.jobId}`] : []),
      ...(report.buildId != null ? [`build     ${report.buildId}`] : []),
      ...(report.artifact != null ? [`artifact  ${report.artifact}`] : []),
      ...(report.verdict != null ? [`counted   ${report.verdict.counted.length}/${report.verdict.threshold}: ${report.verdict.counted.join(', ')}`] : []),
      ...(report.verdict?.reasons ?? []).map(r => `  · ${oneLine(r)}`),
      ...report.problems.map(p => `  ✗ ${p.code}: ${oneLine(p.message)}`)
    ].join('\n'))
    if (!report.ok) throw new CliError(`bundle ${file} did not verify: ${report.problems.map(p => p.code).join(', ')}`, 'ERR_BUNDLE_INVALID', 1)
    return 0
  }
}
