/**
 * Fault / attack on content: a peer that answers every block request with
 * wrong bytes (and answers FIRST: the honest peer is made slower). The fetch
 * must still complete, from the honest peer, with exactly the right bytes:
 * a block is named by its hash, so wrong bytes are a block nobody asked for.
 *
 * In-process peers (createConcurPeer, the daemon's own stack) so that the
 * corrupt side can have a blockstore that lies.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import type { CID } from 'multiformats/cid'
import { createConcurPeer } from '../../src/net/peer.ts'
import type { ConcurPeer } from '../../src/net/peer.ts'
import { addDirectory, exportToDirectory, getBlock, walkDagBlocks } from '../../src/content/index.ts'
import { cleanupAll, tempDir } from '../helpers/processes.ts'

/** answers with the block's bytes, one bit flipped; counts how often it lied */
class LyingBlockstore extends MemoryBlockstore {
  lies = 0
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    const bytes = await getBlock({ get: (c, o) => super.get(c, o) }, cid, options)
    const bad = Uint8Array.from(bytes)
    bad[bad.length >> 1] = (bad[bad.length >> 1] ?? 0) ^ 0x01
    this.lies++
    yield bad
  }
}

/** the truth, slowly: the liar always answers first */
class SlowBlockstore extends MemoryBlockstore {
  served = 0
  override async * get (cid: CID, options?: Parameters<MemoryBlockstore['get']>[1]): AsyncGenerator<Uint8Array> {
    await new Promise(resolve => setTimeout(resolve, 300))
    this.served++
    yield * super.get(cid, options)
  }
}

async function peer (blockstore: MemoryBlockstore): Promise<ConcurPeer> {
  return await createConcurPeer({ privateKey: await generateKeyPair('Ed25519'), blockstore, datastore: new MemoryDatastore(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], discovery: false })
}

describe('a peer serving corrupt blocks', () => {
  const peers: ConcurPeer[] = []
  afterAll(async () => {
    await Promise.allSettled(peers.map(async p => { await p.stop() }))
    await cleanupAll()
  })

  it('does not stop the fetch: it completes from the honest peer with the right bytes', async () => {
    const src = await tempDir()
    await mkdir(join(src, 'bin'))
    const big = randomBytes(3 * 1024 * 1024 + 123)
    await writeFile(join(src, 'bin', 'tool'), big)
    await writeFile(join(src, 'README'), 'the right bytes\n')

    const truth = new SlowBlockstore()
    const { cid } = await addDirectory(truth, src)
    const liar = new LyingBlockstore()
    let blocks = 0
    for await (const b of walkDagBlocks(truth, cid)) {
      await liar.put(b.cid, b.bytes)
      blocks++
    }
    expect(blocks).toBeGreaterThan(3)
    truth.served = 0

    const honest = await peer(truth)
    const corrupt = await peer(liar)
    const fetcher = await peer(new MemoryBlockstore())
    peers.push(honest, corrupt, fetcher)
    await fetcher.libp2p.dial(corrupt.libp2p.getMultiaddrs()[0]!)
    await fetcher.libp2p.dial(honest.libp2p.getMultiaddrs()[0]!)

    const out = join(await tempDir(), 'fetched')
    await exportToDirectory(fetcher.helia.blockstore, cid, out, { signal: AbortSignal.timeout(60_000) })
    expect(Buffer.compare(await readFile(join(out, 'bin', 'tool')), big)).toBe(0)
    expect(await readFile(join(out, 'README'), 'utf8')).toBe('the right bytes\n')
    // the liar did answer (and first); its bytes were thrown away, the honest peer's kept
    expect(liar.lies).toBeGreaterThan(0)
    expect(truth.served).toBeGreaterThanOrEqual(blocks)
    // and what the fetcher stored is the truth, block by block
    for await (const b of walkDagBlocks(truth, cid)) {
      expect(Buffer.compare(await getBlock(fetcher.helia.blockstore, b.cid), b.bytes)).toBe(0)
    }
  })
})
