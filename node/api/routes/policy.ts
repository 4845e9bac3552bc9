/**
 * The requester's trust policy over HTTP. `concur trust` and `concur policy
 * set` save through here when a daemon runs, so the change is in effect, and
 * every open job re-evaluated under it, by the time the command returns.
 */
import { withOperators } from '../../policy-store.ts'
import type { PolicyFile, PolicyStore } from '../../policy-store.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import type { PolicyResponse } from '../types.ts'

function problemOf (store: PolicyStore): string | undefined {
  try {
    store.current()
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

export function policyRoutes (router: Router, deps: { policy: PolicyStore }): void {
  const { policy } = deps

  router.on('GET', '/v1/policy', async (): Promise<PolicyResponse> => {
    const problem = problemOf(policy)
    return { policy: policy.saved(), ...(problem != null ? { problem } : {}) }
  })

  router.on('POST', '/v1/policy', async (req): Promise<PolicyResponse> => {
    const p = (req.body as { policy?: Partial<PolicyFile> } | undefined)?.policy
    const shape = '"policy" must be { version: 1, trusted: [...], threshold, required: [...], minTier, operators?: { NAME: [...] }, minOperators?, requireCommitment? }'
    if (p == null || typeof p !== 'object' || p.version !== 1 || !Array.isArray(p.trusted) || !Array.isArray(p.required)) {
      throw new HttpError(400, 'ERR_BAD_REQUEST', shape)
    }
    // the operator fields are optional: a client that predates them saves a policy without operators, as before
    if (p.operators != null && (typeof p.operators !== 'object' || Array.isArray(p.operators))) throw new HttpError(400, 'ERR_BAD_REQUEST', shape)
    if (p.minOperators != null && typeof p.minOperators !== 'number') throw new HttpError(400, 'ERR_BAD_REQUEST', shape)
    if (p.requireCommitment != null && typeof p.requireCommitment !== 'boolean') throw new HttpError(400, 'ERR_BAD_REQUEST', shape)
    const saved = await policy.set(withOperators({ version: 1, trusted: p.trusted, threshold: p.threshold ?? null, required: p.required, minTier: p.minTier ?? null, ...(p.requireCommitment === true ? { requireCommitment: true } : {}) }, p.operators, p.minOperators))
    const problem = problemOf(policy)
    return { policy: saved, ...(problem != null ? { problem } : {}) }
  })
}
