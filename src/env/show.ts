/**
 * `concur env show CID`: an environment's manifest, read from its DAG by
 * path (etc/concur-environment.json), without fetching the rest of the tree.
 * The DAG is anyone's: the path is resolved by the exporter (one directory
 * node per level, HAMT shards included), the file read through read-file.ts
 * (checked sizes, bounded), and the bytes parsed by parseManifest.
 */
import { CID } from 'multiformats/cid'
import type { AbortOptions } from '@libp2p/interface'
import { blockBudget, fileRootOf, fileSize, readFile } from '../content/read-file.ts'
import type { ReadableBlockstore } from '../content/index.ts'
import { BadManifestError } from './errors.ts'
import { ENV_MANIFEST_PATH, MAX_MANIFEST_BYTES, parseManifest, toolchainOf } from './manifest.ts'
import type { EnvManifest, InstalledPackage } from './manifest.ts'

export interface EnvView {
  cid: string
  manifest: EnvManifest
  /** the compilers, C library and build tools it has, with their versions */
  toolchain: InstalledPackage[]
}

export async function readEnvironment (blockstore: ReadableBlockstore, cid: string, options: AbortOptions = {}): Promise<EnvView> {
  const root = CID.parse(cid)
  const { exporter } = await import('ipfs-unixfs-exporter')
  let entry
  try {
    entry = await exporter(`${root.toString()}/${ENV_MANIFEST_PATH}`, blockstore as Parameters<typeof exporter>[1], options)
  } catch (err) {
    if (options.signal?.aborted === true) throw err
    throw new BadManifestError(`${cid} has no ${ENV_MANIFEST_PATH}: not an environment made by \`concur env create\` (${(err as Error).message})`)
  }
  const file = fileRootOf(entry)
  if (file == null) throw new BadManifestError(`${ENV_MANIFEST_PATH} in ${cid} is a ${entry.type}, not a file`)
  if (fileSize(file) > MAX_MANIFEST_BYTES) throw new BadManifestError(`${ENV_MANIFEST_PATH} in ${cid} declares ${fileSize(file)} bytes, over ${MAX_MANIFEST_BYTES}`)
  const chunks: Uint8Array[] = []
  const onBlock = blockBudget(MAX_MANIFEST_BYTES, () => new BadManifestError(`the manifest's DAG structure is over ${MAX_MANIFEST_BYTES} bytes`))
  for await (const chunk of readFile(blockstore, file, { signal: options.signal, length: MAX_MANIFEST_BYTES, onBlock })) chunks.push(chunk)
  const manifest = parseManifest(Buffer.concat(chunks))
  return { cid: root.toString(), manifest, toolchain: toolchainOf(manifest) }
}
