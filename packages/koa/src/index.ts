/**
 * @quiesce/koa — graceful shutdown for Koa 3.
 *
 * ```ts
 * import Koa from 'koa'
 * import { graceful } from '@quiesce/koa'
 *
 * const app = new Koa()
 * const g = graceful({ timeout: 10_000 })
 * app.use(g)                                   // first
 * app.use(async (ctx) => { ctx.body = await longPoll({ signal: ctx.signal }) })
 * g.attach(app.listen(3000))                   // optional: drains before the first request (D17)
 * ```
 * @module
 */
import type { Context, Middleware, ParameterizedContext } from 'koa'
import {
  createFrameworkController,
  requestSignal as nodeRequestSignal,
  type AnyServer,
  type FrameworkBinding,
  type GracefulOptions,
  type HealthAnswer,
  type ServerController,
} from '@quiesce/core'

declare module 'koa' {
  interface DefaultContext {
    /**
     * quiesce's request signal (Koa has no `ctx.signal` of its own): aborts with
     * `ClientClosedError` when the client leaves (D10) and with `ShutdownDeadlineError` at the
     * drain's deadline (D6). Created on first read. Same as `requestSignal(ctx)`.
     */
    readonly signal: AbortSignal
  }
}

export interface KoaGracefulOptions extends GracefulOptions {
  /** Attach to this server now, before its first request (D17). Same as `g.attach(server)`. */
  server?: AnyServer
}

export type GracefulMiddleware = Middleware &
  ServerController & {
    /** `router.get('/ready', g.readiness)`: 200 while running or paused, 503 from the moment draining starts (D4). */
    readonly readiness: Middleware
    /** `router.get('/live', g.liveness)`: 200 while the process answers. */
    readonly liveness: Middleware
  }

const binding = {
  name: 'koa',
  raw: (ctx: ParameterizedContext) => ({ req: ctx.req, res: ctx.res }),
  listener: 'quiesce',
  servers: 'request',
} satisfies FrameworkBinding<ParameterizedContext>

const installed = new WeakSet<object>()

/** `ctx.signal`, a lazy getter on the app's context prototype (once per app; Koa's own objects untouched). */
function installSignal(context: object): void {
  if (installed.has(context) || Object.prototype.hasOwnProperty.call(context, 'signal')) return
  installed.add(context)
  Object.defineProperty(context, 'signal', {
    configurable: true,
    get(this: Context) {
      return nodeRequestSignal(this.req)
    },
  })
}

/**
 * The middleware is also the controller. Put it first: it attaches to the server of the first
 * request it sees (or to `options.server` / `g.attach(server)` right away) and decides, before
 * the rest of the stack runs, whether a request is served, held or answered 503. Errors thrown
 * further down still reach Koa's error handling and `app.on('error')`.
 */
export function graceful(options?: KoaGracefulOptions): GracefulMiddleware {
  const core = createFrameworkController(binding, options as GracefulOptions & Record<string, unknown>)
  const middleware: Middleware = async (ctx, next) => {
    installSignal(ctx.app.context)
    let verdict = core.admit(ctx)
    if (verdict !== true && verdict !== false) verdict = await verdict
    if (!verdict) {
      ctx.respond = false // quiesce answered (503) or refused the request: Koa must not write
      return
    }
    return next()
  }
  const send = (ctx: Context, answer: HealthAnswer): void => {
    ctx.set(answer.headers)
    ctx.status = answer.status
    ctx.body = answer.body
  }
  const readiness: Middleware = (ctx) => send(ctx, core.readiness())
  const liveness: Middleware = (ctx) => send(ctx, core.liveness())
  return core.expose(Object.assign(middleware, { readiness, liveness }))
}

/** quiesce's signal for a Koa context (the same as `ctx.signal`). */
export function requestSignal(ctx: Pick<Context, 'req'>): AbortSignal {
  return nodeRequestSignal(ctx.req)
}

export { QuiesceError, ClientClosedError, ShutdownDeadlineError } from '@quiesce/core'
export type { GracefulOptions, ShutdownReport, Stats, State, Controller } from '@quiesce/core'
