import type { AnyServer, Controller, ShutdownOptions, ShutdownReport } from '../types.js'
import { retryAfterHeader } from './answers.js'
import type { GracefulController } from './controller.js'

/** The controller every package returns, with the server-level additions. */
export interface ServerController extends Controller {
  /** Track one more server (before its first request, D17; a second listener). */
  attach(server: AnyServer): this
  /** The servers this controller drains. */
  readonly servers: readonly AnyServer[]
}

/** What a readiness or liveness route answers, for each adapter to write out its own way (D4). */
export interface HealthAnswer {
  readonly status: 200 | 503
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * The public controller, written once: `target` (a plain object, or Express's and Koa's
 * middleware function — "the middleware is also the controller") gets the members of
 * `ServerController`, delegating to the internal controller, which stays unreachable from it.
 * `shutdown` may be given by an adapter whose framework must close after the drain (Fastify).
 */
export function exposeController<T extends object>(
  core: GracefulController,
  target: T,
  shutdown: (options?: ShutdownOptions) => Promise<ShutdownReport> = (o) => core.shutdown(o),
): T & ServerController {
  const value = (fn: unknown): PropertyDescriptor => ({ value: fn, enumerable: true })
  const getter = (fn: () => unknown): PropertyDescriptor => ({ get: fn, enumerable: true })
  Object.defineProperties(target, {
    state: getter(() => core.state),
    draining: getter(() => core.draining),
    ready: getter(() => core.ready),
    servers: getter(() => core.servers),
    stats: value(() => core.stats()),
    shutdown: value(shutdown),
    pause: value((o?: Parameters<Controller['pause']>[0]) => core.pause(o)),
    resume: value((o?: Parameters<Controller['resume']>[0]) => core.resume(o)),
    onShutdown: value((hook: Parameters<Controller['onShutdown']>[0], o?: Parameters<Controller['onShutdown']>[1]) => core.onShutdown(hook, o)),
    beforeShutdown: value((hook: Parameters<Controller['beforeShutdown']>[0], o?: Parameters<Controller['beforeShutdown']>[1]) => core.beforeShutdown(hook, o)),
    attach: value((server: AnyServer) => {
      core.attach(server)
      return target
    }),
  })
  core.exposedAs(target)
  return target as T & ServerController
}

/** 200 while running or paused; 503 with `Retry-After` from the moment draining starts (D4). */
export function readinessAnswer(ready: boolean, retryAfter: number): HealthAnswer {
  const headers = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }
  return ready
    ? { status: 200, headers, body: 'ok\n' }
    : { status: 503, headers: { ...headers, 'retry-after': retryAfterHeader(retryAfter) }, body: 'draining\n' }
}

/** 200 as long as the process answers: a drain is not a reason to be restarted. */
export const livenessAnswer: HealthAnswer = Object.freeze({
  status: 200,
  headers: Object.freeze({ 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }),
  body: 'ok\n',
})
