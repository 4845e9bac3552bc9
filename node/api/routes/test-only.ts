/**
 * Routes only a daemon started with --enable-test-routes serves, never by
 * default: they let a caller do what no honest node does.
 */
import { CONCUR_TOPICS, PEERS_TOPIC } from '../../../src/net/topics.ts'
import type { ConcurGossip } from '../../../src/net/gossip.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import { str } from './body.ts'

export function testOnlyRoutes (router: Router, deps: { gossip: Pick<ConcurGossip, 'publishRaw'> }): void {
  // Raw bytes onto a concur topic, bypassing our own validation: this is how
  // tests and the adversary harness play a misbehaving peer.
  router.on('POST', '/v1/gossip/publish-raw', async (req) => {
    const topic = str(req.body, 'topic') as string
    if (![...CONCUR_TOPICS, PEERS_TOPIC].includes(topic)) throw new HttpError(400, 'ERR_BAD_REQUEST', `unknown topic ${topic}`)
    const data = Buffer.from(str(req.body, 'data') as string, 'base64')
    return await deps.gossip.publishRaw(topic, data)
  })
}
