/**
 * @quiesce/express — graceful shutdown for Express 5.
 *
 * ```ts
 * import express from 'express'
 * import { graceful, requestSignal } from '@quiesce/express'
 *
 * const app = express()
 * const g = graceful({ timeout: 10_000 })
 * app.use(g)                       // first, before your routes
 * app.get('/ready', g.readiness)
 * app.get('/poll', async (req, res) => res.json(await longPoll({ signal: requestSignal(req) })))
 * g.attach(app.listen(3000))       // optional: drains even before the first request (D17)
 * ```
 * @module
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { createFrameworkController, type AnyServer, type FrameworkBinding, type GracefulOptions, type HealthAnswer, type ServerController } from '@quiesce/core'

export interface ExpressGracefulOptions extends GracefulOptions {
  /** Attach to this server now, before its first request (D17). Same as `g.attach(server)`. */
  server?: AnyServer
}

export type GracefulMiddleware = RequestHandler &
  ServerController & {
    /** `app.get('/ready', g.readiness)`: 200 while running or paused, 503 from the moment draining starts (D4). */
    readonly readiness: RequestHandler
    /** `app.get('/live', g.liveness)`: 200 while the process answers. */
    readonly liveness: RequestHandler
  }

const binding = {
  name: 'express',
  raw: (req: Request) => ({ req, res: req.res as Response }),
  listener: 'quiesce',
  servers: 'request',
} satisfies FrameworkBinding<Request>

/**
 * The middleware is also the controller. Put it first: it attaches to the server of the first
 * request it sees (or to `options.server` / `g.attach(server)` right away) and decides, before
 * your routes run, whether a request is served, held (`pause({ mode: 'hold' })`) or answered 503.
 */
export function graceful(options?: ExpressGracefulOptions): GracefulMiddleware {
  const core = createFrameworkController(binding, options as GracefulOptions & Record<string, unknown>)
  const middleware: RequestHandler = (req: Request, _res: Response, next: NextFunction) => {
    const verdict = core.admit(req)
    if (verdict === true) next()
    else if (verdict !== false)
      verdict.then((run) => {
        if (run) next()
      }, next)
  }
  const send = (res: Response, answer: HealthAnswer): void => {
    res.status(answer.status).set(answer.headers).send(answer.body)
  }
  const readiness: RequestHandler = (_req, res) => send(res, core.readiness())
  const liveness: RequestHandler = (_req, res) => send(res, core.liveness())
  return core.expose(Object.assign(middleware, { readiness, liveness }))
}

/**
 * The request's quiesce signal (Express's `req` is Node's): aborts with `ClientClosedError` when
 * the client leaves (D10) and with `ShutdownDeadlineError` at the drain's deadline (D6).
 */
export { requestSignal } from '@quiesce/core'
export { QuiesceError, ClientClosedError, ShutdownDeadlineError } from '@quiesce/core'
export type { GracefulOptions, ShutdownReport, Stats, State, Controller } from '@quiesce/core'
