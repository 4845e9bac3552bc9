/** The daemon's metrics in Prometheus' text format (kubo serves the same path), behind the token. */
import { PROMETHEUS_CONTENT_TYPE } from '../../../src/metrics/registry.ts'
import type { Registry } from '../../../src/metrics/registry.ts'
import type { Router } from '../server.ts'

export const METRICS_PATH = '/debug/metrics/prometheus'

export function metricsRoutes (router: Router, deps: { registry: Pick<Registry, 'render'> }): void {
  router.on('GET', METRICS_PATH, async (_req, res) => {
    const text = await deps.registry.render()
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
    res.end(text)
  })
}
