/**
 * Writes a proof bundle: a CARv1 whose single root is the manifest, followed
 * by the job envelope, the attestation envelopes, then every block of the
 * artifact DAG in walk order. Anyone can later check it offline with
 * verifyBundle (or take it apart with any CAR tool).
 */
import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { dirname, join, basename } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { CarWriter } from '@ipld/car/writer'
import { CODEC_DAG_CBOR, CODEC_DAG_PB, CODEC_RAW, MH_SHA2_256, cidOf } from '../../../protocol/index.ts'
import type { SignedAttestation, SignedCommitment, SignedJob, TrustPolicyInput } from '../../../protocol/index.ts'
import { walkDagBlocks } from '../../content/index.ts'
import type { ReadableBlockstore } from '../../content/index.ts'
import { BundleInputError } from './errors.ts'
import { BUNDLE_TYPE, manifestValue } from './manifest.ts'
import type { BundleManifest } from './manifest.ts'
import type { CID } from 'multiformats/cid'
import type { FileHandle } from 'node:fs/promises'

export interface WriteBundleInput {
  job: SignedJob
  attestations: SignedAttestation[]
  artifact: CID
  policy?: TrustPolicyInput
  /** the counted keys' commitments received in time (PROTOCOL.md §8.3), when the policy required them */
  commitments?: SignedCommitment[]
}

export interface BundleWriteProgress {
  blocks: number
  bytes: number
}

export interface WriteBundleOptions {
  signal?: AbortSignal
  onProgress?: (evt: BundleWriteProgress) => void
}

export interface WriteBundleResult {
  path: string
  /** CID of the manifest, the CAR's root */
  root: CID
  /** blocks written, manifest included */
  blocks: number
  /** size of the CAR file */
  bytes: number
}

function checkInput (input: WriteBundleInput): void {
  const buildId = input.job.job.buildId
  for (const a of input.attestations) {
    // a bundle proves one build: an attestation of another build could only
    // make the verifier report a problem
    if (a.claim.buildId !== buildId) throw new BundleInputError(`attestation by ${a.claim.worker} is for build ${a.claim.buildId}, not the job's ${buildId}`)
  }
  const { artifact } = input
  // verifyBundle refuses anything else, so refuse it here too, early
  if (artifact.version !== 1 || artifact.multihash.code !== MH_SHA2_256 || (artifact.code !== CODEC_DAG_PB && artifact.code !== CODEC_RAW)) {
    throw new BundleInputError(`artifact ${artifact.toString()} is not a CIDv1 sha2-256 dag-pb/raw CID`)
  }
}

async function writeAll (handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    offset += bytesWritten
  }
}

/**
 * Writes the bundle to `out` atomically: the CAR is written to a temporary
 * file next to `out`, fsynced, then renamed over it, so `out` is either the
 * previous file or a complete bundle, never a truncated one that would fail
 * verification later for no visible reason.
 *
 * Every artifact block must be in `blockstore` (pin the artifact first): a
 * missing block fails the write, as an incomplete bundle proves nothing.
 */
export async function writeBundle (blockstore: ReadableBlockstore, input: WriteBundleInput, out: string, options: WriteBundleOptions = {}): Promise<WriteBundleResult> {
  const { signal, onProgress } = options
  signal?.throwIfAborted()
  checkInput(input)

  const jobBlock = { cid: cidOf(CODEC_RAW, input.job.bytes), bytes: input.job.bytes }
  const attestationBlocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  const seen = new Set<string>([jobBlock.cid.toString()])
  for (const a of input.attestations) {
    const block = { cid: cidOf(CODEC_RAW, a.bytes), bytes: a.bytes }
    // the same envelope twice is one statement: store it once
    if (seen.has(block.cid.toString())) continue
    seen.add(block.cid.toString())
    attestationBlocks.push(block)
  }
  const commitmentBlocks: Array<{ cid: CID, bytes: Uint8Array }> = []
  for (const c of input.commitments ?? []) {
    const block = { cid: cidOf(CODEC_RAW, c.bytes), bytes: c.bytes }
    if (seen.has(block.cid.toString())) continue
    seen.add(block.cid.toString())
    commitmentBlocks.push(block)
  }
  const manifest: BundleManifest = {
    version: 1,
    type: BUNDLE_TYPE,
    job: jobBlock.cid,
    attestations: attestationBlocks.map(b => b.cid),
    artifact: input.artifact,
    buildId: input.job.job.buildId,
    ...(input.policy !== undefined ? { policy: input.policy } : {}),
    ...(commitmentBlocks.length > 0 ? { commitments: commitmentBlocks.map(b => b.cid) } : {})
  }
  const manifestBytes = dagCbor.encode(manifestValue(manifest))
  const root = cidOf(CODEC_DAG_CBOR, manifestBytes)
  seen.add(root.toString())

  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', 0o644)
  const { writer, out: carBytes } = CarWriter.create([root])
  let bytes = 0
  let blocks = 0
  let writeError: unknown
  // the CarWriter only resolves put() once its output is drained, so the
  // file is written concurrently with the puts below. After a write error
  // the output is still drained (and discarded): otherwise the pending put()
  // would wait forever for a reader that is gone.
  const drain = (async () => {
    for await (const chunk of carBytes) {
      if (writeError !== undefined) continue
      try {
        await writeAll(handle, chunk)
        bytes += chunk.byteLength
      } catch (err) {
        writeError = err
      }
    }
  })()
  let failure: unknown
  try {
    const put = async (block: { cid: CID, bytes: Uint8Array }): Promise<void> => {
      signal?.throwIfAborted()
      if (writeError !== undefined) throw writeError
      await writer.put(block)
      blocks++
      onProgress?.({ blocks, bytes })
    }
    await put({ cid: root, bytes: manifestBytes })
    await put(jobBlock)
    for (const block of attestationBlocks) await put(block)
    for (const block of commitmentBlocks) await put(block)
    for await (const block of walkDagBlocks(blockstore, input.artifact, { signal })) {
      const key = block.cid.toString()
      if (seen.has(key)) continue
      seen.add(key)
      await put(block)
    }
  } catch (err) {
    failure = err
  }
  // close even after a failure: it ends the output stream, so `drain` finishes
  await writer.close().catch(() => {})
  await drain.catch((err: unknown) => { failure ??= err })
  failure ??= writeError
  try {
    if (failure === undefined) await handle.sync()
  } catch (err) {
    failure = err
  } finally {
    await handle.close()
  }
  if (failure !== undefined) {
    await rm(tmp, { force: true })
    throw failure
  }
  try {
    await rename(tmp, out)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  return { path: out, root, blocks, bytes }
}
