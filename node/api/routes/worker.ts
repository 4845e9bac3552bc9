/** The worker role's state: sandbox tier, the volunteer's policy, the probe, running builds. */
import type { WorkerService } from '../../worker-service.ts'
import type { Router } from '../server.ts'

export function workerRoutes (router: Router, deps: { worker: Pick<WorkerService, 'info'> }): void {
  router.on('GET', '/v1/worker', async () => deps.worker.info())
}
