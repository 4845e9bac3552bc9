import { createJobAnnouncement, generateSigningKey, signEnvelope, JOB_PAYLOAD_TYPE } from '../../protocol/index.ts'
import type { BuildDefinition, SignedJob, SigningKey, Envelope } from '../../protocol/index.ts'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { addDirectory } from '../../src/content/index.ts'

export const EMPTY_DIR_CID = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'

export function exampleDefinition (overrides: Partial<BuildDefinition> = {}): BuildDefinition {
  return {
    version: 1,
    source: EMPTY_DIR_CID,
    environment: { kind: 'host', platform: 'linux-x86_64' },
    command: ['sh', '-c', 'mkdir -p out && echo hello > out/hello.txt'],
    env: { SOURCE_DATE_EPOCH: '1700000000' },
    output: 'out',
    ...overrides
  }
}

export function signedJob (opts: { key?: SigningKey, definition?: BuildDefinition, now?: number, ttlMs?: number, replicas?: number } = {}): SignedJob {
  const key = opts.key ?? generateSigningKey()
  const now = opts.now ?? Date.now()
  return createJobAnnouncement({
    definition: opts.definition ?? exampleDefinition(),
    requester: key.did,
    replicas: opts.replicas ?? 2,
    resources: { memoryBytes: 256 * 1024 * 1024, cpus: 1, diskBytes: 64 * 1024 * 1024, wallSeconds: 60, processes: 64 },
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + (opts.ttlMs ?? 10 * 60_000)).toISOString()
  }, key)
}

/** A job whose payload names one requester but whose envelope is signed by another key. */
export function wronglySignedJob (): Envelope {
  const job = signedJob()
  const payload = Buffer.from(job.envelope.payload, 'base64')
  return signEnvelope(JOB_PAYLOAD_TYPE, payload, generateSigningKey())
}

/** the CID of a directory as a worker imports a build's output (pinned parameters), stored nowhere */
export async function treeCid (dir: string): Promise<string> {
  return (await addDirectory(new MemoryBlockstore(), dir)).cid.toString()
}
