/** `concur verify`: check a proof bundle offline. */
import { resolve } from 'node:path'
import { readFile } from 'node:fs/promises'
import { resolveHome, homePaths } from '../home.ts'
import { output } from '../cli.ts'
import type { Command } from '../cli.ts'
import { CliError, UsageError } from '../errors.ts'
import { readPolicyFile, toTrustPolicy, checkDid, withOperators } from '../policy-store.ts'
import { createPolicy, isProtocolError } from '../../protocol/index.ts'
import type { TrustPolicy, TrustPolicyInput } from '../../protocol/index.ts'

/** `--operator NAME=DID`, repeated: operator name → its keys */
function operatorsFrom (pairs: string[]): Record<string, string[]> {
  const operators: Record<string, string[]> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq < 1) throw new UsageError(`--operator takes NAME=DID (got ${pair})`)
    const name = pair.slice(0, eq)
    const did = pair.slice(eq + 1)
    checkDid(did)
    operators[name] = [...(operators[name] ?? []), did]
  }
  return operators
}
import { oneLine } from '../render/request.ts'

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a proof bundle offline (signatures, buildId, every block, the policy)',
  usage: 'concur verify BUNDLE.car [--trusted DID… --threshold K [--required DID]… [--operator NAME=DID]…] [--min-operators M] [--require-commitment] [--home DIR] [--json]',
  notes: [
    'Without --trusted, the policy is this home\'s (policy.json), operators and --min-operators included.',
    '  --operator NAME=DID  (with --trusted) DID, one of the trusted keys, is run by operator NAME; repeat it',
    '                       for each key (a key named by no --operator is its own operator)',
    '  --min-operators M    the agreeing keys must span at least M distinct operators (with --trusted, or',
    '                       in place of the home policy\'s)',
    '  --require-commitment (with --trusted) count only keys whose commitment the bundle carries (PROTOCOL.md',
    '                       §8.3): it proves each key committed to this artifact, not when; the timing is',
    '                       the requester\'s word'
  ].join('\n'),
  options: {
    trusted: { type: 'string', multiple: true },
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true },
    operator: { type: 'string', multiple: true },
    'min-operators': { type: 'string' },
    'require-commitment': { type: 'boolean' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [file] = positionals
    if (file == null) throw new UsageError('concur verify needs a bundle file')
    let policy: TrustPolicy
    const minOperators = values['min-operators'] != null ? Number(values['min-operators']) : undefined
    if (minOperators != null && !(Number.isInteger(minOperators) && minOperators >= 1)) throw new UsageError('--min-operators takes a whole number >= 1')
    if (values.trusted != null) {
      if (values.threshold == null) throw new UsageError('--trusted needs --threshold K')
      for (const d of values.trusted as string[]) checkDid(d)
      const input: TrustPolicyInput = {
        trusted: values.trusted as string[],
        threshold: Number(values.threshold),
        ...(values.required != null ? { required: values.required as string[] } : {}),
        ...(values.operator != null ? { operators: operatorsFrom(values.operator as string[]) } : {}),
        ...(minOperators != null ? { minOperators } : {}),
        ...(values['require-commitment'] === true ? { requireCommitment: true } : {})
      }
      try {
        policy = createPolicy(input)
      } catch (err) {
        if (isProtocolError(err)) throw new UsageError(`bad policy: ${err.message}`)
        throw err
      }
    } else {
      if (values['require-commitment'] === true) throw new UsageError('--require-commitment goes with --trusted: the home policy sets it with `concur policy set --require-commitment on`')
      if (values.operator != null) throw new UsageError('--operator goes with --trusted: the home policy groups its keys with `concur trust add DID… --operator NAME`')
      const home = resolveHome(global.home)
      const file = await readPolicyFile(home)
      policy = toTrustPolicy(minOperators != null ? withOperators(file, file.operators, minOperators) : file, homePaths(home).policy)
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
      ...(report.verdict?.operators != null ? [`operators ${report.verdict.operators.spanned.length}/${report.verdict.operators.min}: ${report.verdict.operators.spanned.join(', ')}`] : []),
      ...(report.verdict?.reasons ?? []).map(r => `  · ${oneLine(r)}`),
      ...report.problems.map(p => `  ✗ ${p.code}: ${oneLine(p.message)}`)
    ].join('\n'))
    if (!report.ok) throw new CliError(`bundle ${file} did not verify: ${report.problems.map(p => p.code).join(', ')}`, 'ERR_BUNDLE_INVALID', 1)
    return 0
  }
}
