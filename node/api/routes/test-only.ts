/**
 * Routes only a daemon started with --enable-test-routes serves, never by
 * default: they let a caller do what no honest node does.
 */
import { CONCUR_TOPICS, PEERS_TOPIC } from '../../../src/net/topics.ts'
import type { ConcurGossip } from '../../../src/net/gossip.ts'
import { HttpError } from '../server.ts'
import type { Router } from '../server.ts'
import { num, str } from './body.ts'

export function testOnlyRoutes (router: Router, deps: { gossip: Pick<ConcurGossip, 'publishRaw'> }): void {
  // Raw bytes onto a concur topic, bypassing our own validation: this is how
  // tests and the adversary harness play a misbehaving peer.
  router.on('POST', '/v1/gossip/publish-raw', async (req) => {
    const topic = str(req.body, 'topic') as string
    if (![...CONCUR_TOPICS, PEERS_TOPIC].includes(topic)) throw new HttpError(400, 'ERR_BAD_REQUEST', `unknown topic ${topic}`)
    const data = Buffer.from(str(req.body, 'data') as string, 'base64')
    // a flood in one call: `repeat` copies, each made distinct by a counter
    // appended to the bytes (gossip ids are the bytes' hash)
    const repeat = num(req.body, 'repeat', 1)
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > 10_000) throw new HttpError(400, 'ERR_BAD_REQUEST', '"repeat" must be a whole number from 1 to 10000')
    if (repeat === 1) return await deps.gossip.publishRaw(topic, data)
    let recipients = 0
    for (let i = 0; i < repeat; i++) {
      const copy = Buffer.concat([data, Buffer.from(`#${i}`)])
      recipients = Math.max(recipients, (await deps.gossip.publishRaw(topic, copy)).recipients)
    }
    return { recipients, published: repeat }
  })
}
