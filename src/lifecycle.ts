/**
 * Services started and stopped as one. Each is started in order; if one
 * fails, the ones already started are stopped (in reverse) before the error
 * is passed on, and `stop()` stops them all in reverse, each once, whatever
 * the others do. This is the one clean-up path of a daemon: there is no other
 * list of things to undo.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'

const log = logger('concur:lifecycle')

/** A service was to start while the set was stopping: a start raced a shutdown. */
export class StoppingError extends Error {
  readonly code = 'ERR_STOPPING'
  override name = 'StoppingError'
}

interface Running { name: string, stop: () => Promise<void> | void }

export class Lifecycle {
  private readonly running: Running[] = []
  private stopping: Promise<void> | undefined

  /** start a Startable (beforeStart/start/afterStart, like libp2p's components) */
  async start<T extends Startable> (name: string, service: T): Promise<T> {
    await this.run(name, async () => {
      await service.beforeStart?.()
      await service.start()
      await service.afterStart?.()
      return service
    }, async () => {
      await service.beforeStop?.()
      await service.stop()
      await service.afterStop?.()
    })
    return service
  }

  /**
   * Run `open` (something created already started: libp2p, a store, a
   * server) and keep `close` to undo it. If `open` throws, nothing of it is
   * kept and every service started before is stopped.
   */
  async run<T> (name: string, open: () => Promise<T>, close: (value: T) => Promise<void> | void): Promise<T> {
    if (this.stopping != null) throw new StoppingError(`cannot start ${name}: stopping`)
    let value: T
    try {
      value = await open()
    } catch (err) {
      log('%s failed to start: %s', name, (err as Error).message)
      await this.stop()
      throw err
    }
    this.running.push({ name, stop: async () => { await close(value) } })
    return value
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => {
      while (this.running.length > 0) {
        const r = this.running.pop() as Running
        try {
          await r.stop()
        } catch (err) {
          log.error('stopping %s failed: %e', r.name, err)
        }
      }
    })()
    await this.stopping
    this.stopping = undefined
  }
}
