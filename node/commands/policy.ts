/** `concur trust` and `concur policy`: the requester's trust policy. */
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { ApiClient } from '../api/client.ts'
import type { PolicyResponse } from '../api/types.ts'
import { output } from '../cli.ts'
import type { Command } from '../cli.ts'
import { NoDaemonError, UsageError } from '../errors.ts'
import { addTrusted, assignOperator, checkPolicyFile, operatorOfDid, readPolicyFile, removeTrusted, setPolicy, writePolicyFile } from '../policy-store.ts'
import type { PolicyFile } from '../policy-store.ts'

/** the running daemon of this home, or null: the policy is then only a file */
async function daemonOf (home: string): Promise<ApiClient | null> {
  try {
    return await connectApi(home)
  } catch (err) {
    if (err instanceof NoDaemonError) return null
    throw err
  }
}

/**
 * Save a policy: always to the file first, so what is written does not
 * depend on who answers on the daemon's port (daemon.json can outlive a
 * daemon, and another local user could then listen there); then, when a
 * daemon runs, through its API too, so the policy is in effect and open jobs
 * re-evaluated when this returns.
 */
export async function savePolicy (home: string, p: PolicyFile): Promise<PolicyFile> {
  await writePolicyFile(home, p)
  const api = await daemonOf(home)
  if (api == null) return p
  return (await api.post<PolicyResponse>('/v1/policy', { policy: p })).policy
}

export const trustCommand: Command = {
  name: 'trust',
  summary: 'manage the trusted worker keys of this requester: trust add|remove|list KEY… [--operator NAME]',
  usage: 'concur trust add|remove|list [DID…] [--operator NAME | --own-operator] [--home DIR] [--json]',
  notes: [
    '  --operator NAME   (add) group the keys under operator NAME: the people and machines behind them. With',
    '                    `concur policy set --min-operators M`, an artifact is accepted only when its agreeing keys',
    '                    span M operators, so many keys of one operator are one operator\'s word. A key has one',
    '                    operator (this moves it from another); NAME is 1-64 letters, digits, ".", "_" or "-".',
    '  --own-operator    (add) take the keys out of their operator: each counts as an operator of its own again',
    '                    (what a key no operator names always is)'
  ].join('\n'),
  options: {
    operator: { type: 'string' },
    'own-operator': { type: 'boolean' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [verb, ...dids] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    const operator = values.operator as string | undefined
    const own = values['own-operator'] === true
    if ((operator != null || own) && verb !== 'add') throw new UsageError('--operator and --own-operator go with `concur trust add DID…`')
    if (operator != null && own) throw new UsageError('--operator NAME and --own-operator contradict each other: use one')
    if (verb === 'add' || verb === 'remove') {
      if (dids.length === 0) throw new UsageError(`concur trust ${verb} needs at least one did:key`)
      p = verb === 'add' ? addTrusted(p, dids) : removeTrusted(p, dids)
      if (operator != null || own) {
        p = assignOperator(p, dids, own ? null : operator!)
        // the operator rules are createPolicy's; refused here, before anything is saved
        checkPolicyFile(p)
      }
      p = await savePolicy(home, p)
    } else if (verb !== 'list' && verb != null) {
      throw new UsageError(`unknown trust verb "${verb}": use add, remove or list`)
    }
    const line = (d: string): string => {
      const op = operatorOfDid(p, d)
      return `${d}${op != null ? `  (operator ${op})` : ''}${p.required.includes(d) ? '  (required)' : ''}`
    }
    output(global, p, () => p.trusted.length === 0 ? '(no trusted keys)' : p.trusted.map(line).join('\n'))
    return 0
  }
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'show or set the trust policy: policy set --threshold K [--required KEY]… [--min-tier T] [--min-operators M] [--require-commitment on|off]',
  usage: 'concur policy show | set --threshold K [--required DID]… [--min-tier T] [--min-operators M] [--require-commitment on|off] [--home DIR] [--json]',
  notes: [
    '  --min-operators M  the K agreeing keys must come from at least M distinct operators (group keys with',
    '                     `concur trust add DID… --operator NAME`; a key in no group is its own operator).',
    '                     Until they do, the artifact stays provisional and the reason says so. M <= K, and',
    '                     the trusted keys must span M operators, or the policy is refused. 1 (the default)',
    '                     is the rule without operators.',
    '  --require-commitment on|off  count an attestation only if its key committed to the artifact before',
    '                     any attestation revealed it (PROTOCOL.md §8.3): a trusted key that copies a CID',
    '                     from gossip is not counted. Workers commit by default; one run with --no-commit',
    '                     (or a v1 worker) is then not counted. [off]'
  ].join('\n'),
  options: {
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true },
    'min-tier': { type: 'string' },
    'min-operators': { type: 'string' },
    'require-commitment': { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [verb] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    if (verb === 'set') {
      const threshold = values.threshold != null ? Number(values.threshold) : undefined
      if (threshold != null && !Number.isInteger(threshold)) throw new UsageError('--threshold takes a whole number')
      const minOperators = values['min-operators'] != null ? Number(values['min-operators']) : undefined
      if (minOperators != null && !(Number.isInteger(minOperators) && minOperators >= 1)) throw new UsageError('--min-operators takes a whole number >= 1')
      const rc = values['require-commitment']
      if (rc != null && rc !== 'on' && rc !== 'off') throw new UsageError('--require-commitment takes on or off')
      p = setPolicy(p, {
        ...(rc != null ? { requireCommitment: rc === 'on' } : {}),
        ...(threshold != null ? { threshold } : {}),
        // 1 is the rule without operators: written as "not set", so the file stays what it was
        ...(minOperators != null ? { minOperators: minOperators === 1 ? null : minOperators } : {}),
        ...(values.required != null ? { required: values.required as string[] } : {}),
        ...(values['min-tier'] != null ? { minTier: values['min-tier'] as string } : {})
      })
      p = await savePolicy(home, p)
    } else if (verb !== 'show' && verb != null) {
      throw new UsageError(`unknown policy verb "${verb}": use show or set`)
    }
    output(global, p, () => [
      `trusted    ${p.trusted.length} key(s)`,
      `threshold  ${p.threshold ?? '(not set)'}`,
      `required   ${p.required.length > 0 ? p.required.join(', ') : '(none)'}`,
      `min tier   ${p.minTier ?? '(any)'}`,
      `operators  ${Object.keys(p.operators ?? {}).length > 0 ? Object.entries(p.operators ?? {}).map(([name, dids]) => `${name} (${dids.length} key${dids.length === 1 ? '' : 's'})`).join(', ') : '(none: every key its own)'}`,
      `min operators ${p.minOperators ?? 1}`,
      `commitments ${p.requireCommitment === true ? 'required (PROTOCOL.md §8.3)' : 'not required'}`
    ].join('\n'))
    return 0
  }
}
