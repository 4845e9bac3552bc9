/**
 * `concur verify` honours the policy's operators (PROTOCOL.md §8.1): a bundle
 * whose two agreeing keys are run by one operator does not verify under a
 * policy asking for 2 operators, with the reason, and the same build attested
 * by a key of a second operator does. Both ways a policy can be given: the
 * home's (`concur trust add … --operator`, `concur policy set --min-operators`)
 * and on the command line (`--operator NAME=DID --min-operators M`). The
 * offline verifier itself takes the policy as input and does no I/O.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createPolicy } from '../../protocol/index.ts'
import { verifyBundle, writeBundle } from '../../src/requester/bundle/index.ts'
import { readPolicyFile } from '../../node/policy-store.ts'
import { cleanupAll, runConcur, tempDir } from '../helpers/processes.ts'
import { LATER, attestFor, decodeManifest, makeArtifact, makeJob, readCar, reroot, trustedWorkers } from './helpers.ts'

afterAll(cleanupAll)

const [w1, w2, w3] = trustedWorkers
const dids = trustedWorkers.map(k => k.did)
// worker-1 and worker-2 are one operator's; worker-3 is its own
const policyInput = { trusted: dids, threshold: 2, operators: { acme: [w1.did, w2.did] }, minOperators: 2 }

async function bundles (tmp: string): Promise<{ oneOperator: string, twoOperators: string }> {
  const { blockstore, artifact } = await makeArtifact(tmp)
  const job = makeJob()
  const oneOperator = join(tmp, 'acme-only.car')
  const twoOperators = join(tmp, 'acme-and-w3.car')
  await writeBundle(blockstore, { job, attestations: [attestFor(w1, job, artifact), attestFor(w2, job, artifact)], artifact, policy: policyInput }, oneOperator)
  await writeBundle(blockstore, { job, attestations: [attestFor(w1, job, artifact), attestFor(w3, job, artifact)], artifact, policy: policyInput }, twoOperators)
  return { oneOperator, twoOperators }
}

describe('offline verification under a policy asking for 2 operators', () => {
  it('verifyBundle: two keys of one operator are not enough, a key of a second operator makes it; the manifest records the operators', async () => {
    const tmp = await tempDir()
    const { oneOperator, twoOperators } = await bundles(tmp)
    const policy = createPolicy(policyInput)
    const refused = verifyBundle(await readFile(oneOperator), { policy, now: LATER })
    expect(refused.ok).toBe(false)
    expect(refused.verdict?.status).toBe('provisional')
    expect(refused.verdict?.operators).toEqual({ spanned: ['acme'], min: 2 })
    expect(refused.problems.map(p => p.code)).toEqual(['ERR_POLICY_NOT_MET'])
    expect(refused.problems[0]!.message).toMatch(/span 1 operator\(s\) \(acme\) and the policy requires 2 distinct operators/)
    const accepted = verifyBundle(await readFile(twoOperators), { policy, now: LATER })
    expect(accepted.problems).toEqual([])
    expect(accepted.verdict?.operators).toEqual({ spanned: ['acme', w3.did].sort(), min: 2 })
    // the requester's policy, operators included, is in the manifest (informational) and read back
    expect(accepted.bundlePolicy).toEqual(policyInput)
    expect(decodeManifest(readCar(new Uint8Array(await readFile(twoOperators)))).policy).toEqual(policyInput)
    // a verifier without operators accepts both: the rule is the verifier's policy, not the bundle's
    expect(verifyBundle(await readFile(oneOperator), { policy: createPolicy({ trusted: dids, threshold: 2 }), now: LATER }).ok).toBe(true)
  })

  it('a manifest whose recorded operators are malformed is refused (ERR_MANIFEST); one the verifier could not load is only informational', async () => {
    const tmp = await tempDir()
    const { twoOperators } = await bundles(tmp)
    const parts = readCar(new Uint8Array(await readFile(twoOperators)))
    const policy = createPolicy(policyInput)
    const withPolicy = async (p: Record<string, unknown>): Promise<Uint8Array> => await reroot(parts, { ...decodeManifest(parts), policy: { ...policyInput, ...p } })
    for (const operators of [[w1.did], { acme: w1.did }, { acme: [1] }, { '': [w1.did] }]) {
      const r = verifyBundle(await withPolicy({ operators }), { policy, now: LATER })
      expect(r.problems.map(p => p.code), JSON.stringify(operators)).toEqual(['ERR_MANIFEST'])
    }
    expect(verifyBundle(await withPolicy({ minOperators: 'two' }), { policy, now: LATER }).problems.map(p => p.code)).toEqual(['ERR_MANIFEST'])
    // well formed but unmeetable (3 operators of 2): recorded, not applied; the verifier's own policy decides
    const unmeetable = verifyBundle(await withPolicy({ minOperators: 3 }), { policy, now: LATER })
    expect(unmeetable.ok).toBe(true)
    expect(unmeetable.bundlePolicy?.minOperators).toBe(3)
  })

  it('concur verify, under the home policy set with trust add --operator and policy set --min-operators', async () => {
    const tmp = await tempDir()
    const home = await tempDir()
    const { oneOperator, twoOperators } = await bundles(tmp)
    expect((await runConcur(['trust', 'add', w1.did, w2.did, '--operator', 'acme'], { home })).code).toBe(0)
    expect((await runConcur(['trust', 'add', w3.did], { home })).code).toBe(0)
    // one operator among the trusted keys would be 1 < 2: refused up front, nothing saved
    const early = await runConcur(['policy', 'set', '--threshold', '2', '--min-operators', '3'], { home })
    expect(early.code).not.toBe(0)
    expect(early.stderr).toMatch(/minOperators 3 exceeds the threshold 2/)
    const set = await runConcur(['policy', 'set', '--threshold', '2', '--min-operators', '2'], { home })
    expect(set.code).toBe(0)
    expect(set.json()).toMatchObject({ threshold: 2, minOperators: 2, operators: { acme: [w1.did, w2.did] } })
    expect(await readPolicyFile(home)).toMatchObject({ trusted: dids, operators: { acme: [w1.did, w2.did] }, minOperators: 2 })

    const refused = await runConcur(['verify', oneOperator], { home, json: false })
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/INVALID bundle/)
    expect(refused.stdout).toMatch(/operators 1\/2: acme/)
    expect(refused.stdout).toMatch(/the policy requires 2 distinct operators/)
    const ok = await runConcur(['verify', twoOperators], { home, json: false })
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/OK: bundle verified offline — accepted/)
    expect(ok.stdout).toMatch(/operators 2\/2: acme, /)

    // moving worker-3 into acme would leave one operator for a rule asking two: refused, the file unchanged
    const merge = await runConcur(['trust', 'add', w3.did, '--operator', 'acme'], { home })
    expect(merge.code).not.toBe(0)
    expect(merge.stderr).toMatch(/exceeds the 1 distinct operator/)
    expect((await readPolicyFile(home)).operators).toEqual({ acme: [w1.did, w2.did] })

    // what a person reads: each key's operator, the policy's operator rule
    const list = await runConcur(['trust', 'list'], { home, json: false })
    expect(list.stdout).toContain(`${w1.did}  (operator acme)`)
    expect(list.stdout).toContain(`${w3.did}\n`)
    const show = await runConcur(['policy', 'show'], { home, json: false })
    expect(show.stdout).toMatch(/operators {2}acme \(2 keys\)/)
    expect(show.stdout).toMatch(/min operators 2/)
    // a key that is no longer trusted leaves its operator too; --own-operator takes one out
    expect((await runConcur(['trust', 'remove', w2.did], { home })).code).toBe(0)
    expect((await readPolicyFile(home)).operators).toEqual({ acme: [w1.did] })
    const own = await runConcur(['trust', 'add', w1.did, '--own-operator'], { home })
    expect(own.code).toBe(0)
    expect((await readPolicyFile(home)).operators).toBeUndefined()
  })

  it('concur verify --trusted … --operator NAME=DID --min-operators M', async () => {
    const tmp = await tempDir()
    const home = await tempDir()
    const { oneOperator, twoOperators } = await bundles(tmp)
    const flags = [...dids.flatMap(d => ['--trusted', d]), '--threshold', '2', '--operator', `acme=${w1.did}`, '--operator', `acme=${w2.did}`, '--min-operators', '2']
    const refused = await runConcur(['verify', oneOperator, ...flags], { home })
    expect(refused.code).toBe(1)
    expect(refused.stdout).toMatch(/"operators"/)
    expect((JSON.parse(refused.stdout) as { verdict: { status: string, operators: unknown } }).verdict).toMatchObject({ status: 'provisional', operators: { spanned: ['acme'], min: 2 } })
    expect((await runConcur(['verify', twoOperators, ...flags], { home })).code).toBe(0)
    // without --min-operators the same grouping asks nothing more than today
    expect((await runConcur(['verify', oneOperator, ...flags.slice(0, -2)], { home })).code).toBe(0)
  })
})
