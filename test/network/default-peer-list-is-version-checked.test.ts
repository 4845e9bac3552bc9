import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_PEER_LIST_FILE, PEER_LIST_ERROR_CODES, PeerListError, defaultBootstrapList, isPeerListError } from '../../bootstrap/peer-list.ts'

const PEER = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3'

describe('the default peer list (bootstrap/peers.json) is checked before it is dialled', () => {
  let dir: string
  let n = 0
  const listFile = async (content: unknown): Promise<string> => {
    const file = join(dir, `peers-${n++}.json`)
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content))
    return file
  }
  /** the error defaultBootstrapList throws for `file`, checked to name the file and a remedy */
  const refusal = async (file: string): Promise<PeerListError> => {
    const err = await defaultBootstrapList({ file }).then(() => null, (e: unknown) => e)
    expect(isPeerListError(err), String(err)).toBe(true)
    const e = err as PeerListError
    expect(PEER_LIST_ERROR_CODES).toContain(e.code)
    expect(e.file).toBe(file)
    expect(e.message).toContain(file)
    expect(e.message).toContain('--bootstrap')
    return e
  }

  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'concur-peer-list-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('the shipped file is version 1 and loads as an empty list', async () => {
    expect(DEFAULT_PEER_LIST_FILE.endsWith(join('bootstrap', 'peers.json'))).toBe(true)
    expect(JSON.parse(await readFile(DEFAULT_PEER_LIST_FILE, 'utf8'))).toMatchObject({ version: 1 })
    expect(await defaultBootstrapList()).toEqual([])
  })

  it('returns the peers of a valid list, in order', async () => {
    const other = '/dns4/boot.example.org/tcp/4001/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
    expect(await defaultBootstrapList({ file: await listFile({ description: 'x', version: 1, peers: [PEER, other] }) })).toEqual([PEER, other])
  })

  it('refuses another version, or none, naming the version', async () => {
    const e = await refusal(await listFile({ version: 2, peers: [PEER] }))
    expect(e.code).toBe('ERR_PEER_LIST_VERSION')
    expect(e.message).toContain('"version": 2')
    expect((await refusal(await listFile({ version: '1', peers: [] }))).code).toBe('ERR_PEER_LIST_VERSION')
    expect((await refusal(await listFile({ peers: [] }))).code).toBe('ERR_PEER_LIST_VERSION')
  })

  it('refuses an entry that is not a multiaddr ending in /p2p/<peer id>, naming it', async () => {
    for (const bad of [
      'not a multiaddr',
      '/ip4/203.0.113.7/tcp/4001', // no peer id: could not be dialled by id
      '/ip4/203.0.113.7/tcp/4001/p2p/not-a-peer-id',
      '/ip4/999.0.0.1/tcp/4001/p2p/12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3',
      `${PEER}/tcp/5`,
      '/p2p/12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3', // an id and no address
      42
    ]) {
      const e = await refusal(await listFile({ version: 1, peers: [PEER, bad] }))
      expect(e.code, String(bad)).toBe('ERR_PEER_LIST_ADDRESS')
      expect(e.message).toContain('peers[1]')
    }
  })

  it('refuses a file that is missing, not JSON, or has no peers array', async () => {
    expect((await refusal(join(dir, 'missing.json'))).code).toBe('ERR_PEER_LIST_UNREADABLE')
    expect((await refusal(await listFile('{"version": 1, "peers": ['))).code).toBe('ERR_PEER_LIST_MALFORMED')
    expect((await refusal(await listFile([PEER]))).code).toBe('ERR_PEER_LIST_MALFORMED')
    expect((await refusal(await listFile({ version: 1 }))).code).toBe('ERR_PEER_LIST_MALFORMED')
  })
})
