/** `concur trust` and `concur policy`: the requester's trust policy. */
import { resolveHome } from '../home.ts'
import { connectApi } from '../api/client.ts'
import type { ApiClient } from '../api/client.ts'
import type { PolicyResponse } from '../api/types.ts'
import { output } from '../cli.ts'
import type { Command } from '../cli.ts'
import { NoDaemonError, UsageError } from '../errors.ts'
import { addTrusted, readPolicyFile, removeTrusted, setPolicy, writePolicyFile } from '../policy-store.ts'
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
  summary: 'manage the trusted worker keys of this requester: trust add|remove|list KEY…',
  usage: 'concur trust add|remove|list [DID…] [--home DIR] [--json]',
  options: {},
  positionals: true,
  async run ({ positionals, global }) {
    const [verb, ...dids] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    if (verb === 'add' || verb === 'remove') {
      if (dids.length === 0) throw new UsageError(`concur trust ${verb} needs at least one did:key`)
      p = verb === 'add' ? addTrusted(p, dids) : removeTrusted(p, dids)
      p = await savePolicy(home, p)
    } else if (verb !== 'list' && verb != null) {
      throw new UsageError(`unknown trust verb "${verb}": use add, remove or list`)
    }
    output(global, p, () => p.trusted.length === 0 ? '(no trusted keys)' : p.trusted.map(d => `${d}${p.required.includes(d) ? '  (required)' : ''}`).join('\n'))
    return 0
  }
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'show or set the trust policy: policy set --threshold K [--required KEY]… [--min-tier T]',
  usage: 'concur policy show | set --threshold K [--required DID]… [--min-tier T] [--home DIR] [--json]',
  options: {
    threshold: { type: 'string' },
    required: { type: 'string', multiple: true },
    'min-tier': { type: 'string' }
  },
  positionals: true,
  async run ({ positionals, values, global }) {
    const [verb] = positionals
    const home = resolveHome(global.home)
    let p = await readPolicyFile(home)
    if (verb === 'set') {
      const threshold = values.threshold != null ? Number(values.threshold) : undefined
      if (threshold != null && !Number.isInteger(threshold)) throw new UsageError('--threshold takes a whole number')
      p = setPolicy(p, {
        ...(threshold != null ? { threshold } : {}),
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
      `min tier   ${p.minTier ?? '(any)'}`
    ].join('\n'))
    return 0
  }
}
