import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { GracefulController } from './internal/controller.js'
import { exposeController, livenessAnswer, readinessAnswer, type HealthAnswer, type ServerController } from './internal/facade.js'
import { serverOfSession, serverOfSocket } from './internal/node.js'
import { serverKind } from './internal/servers.js'
import { drainedByAnyController } from './internal/trackers.js'
import { requestSignal as nodeRequestSignal } from './internal/signal.js'
import type { AnyServer, GracefulOptions, ShutdownOptions, ShutdownReport } from './types.js'

export type { HealthAnswer, ServerController }

/**
 * The seam between the core and a framework. An adapter is one object of this type (checked
 * with `satisfies FrameworkBinding<…>`) plus the few lines that call the controller from the
 * framework's request start (`admit`) and, for Fastify, its close (`frameworkClosing`).
 *
 * The other two events of a request's life, finish and client abort, are not the adapter's
 * business: the core reads them from Node's own response on every framework alike (the response
 * side is the only reliable witness of a client leaving, D10), so no adapter can get them wrong.
 */
export interface FrameworkBinding<Request> {
  /** The framework's name, for logs. */
  readonly name: string
  /** Node's request and response behind the framework's request object. */
  readonly raw: (request: Request) => { req: IncomingMessage | Http2ServerRequest; res: ServerResponse | Http2ServerResponse }
  /**
   * Who closes the server: quiesce, or the framework's own close (Fastify). With `'framework'`,
   * quiesce closes only the listening handle when the announce phase ends (new connections are
   * refused from that moment, on every listener), and none of Node's immediate idle closing.
   */
  readonly listener: 'quiesce' | 'framework'
  /** Option names the adapter accepts on top of the core's. */
  readonly options?: readonly string[]
  /**
   * How the controller finds its servers. `'request'` (Express, Koa): the server of the first
   * request it sees, or the `server` option / `attach()` before that (D17). `'explicit'`
   * (Fastify): only what the adapter attaches; requests on other servers pass untouched.
   */
  readonly servers: 'request' | 'explicit'
  /**
   * Where the gate (pause, `duringDrain: 'reject'`, a request after the socket's FIN) runs.
   * `'adapter'` (the default: Express, Koa): the adapter's middleware calls `admit()`.
   * `'dispatch'` (Fastify): in quiesce's place in Node's dispatch, as on bare Node — before the
   * framework sees the request, at no cost to the framework's own request path (a Fastify
   * `onRequest` hook costs every request the hook runner).
   */
  readonly gate?: 'adapter' | 'dispatch'
}

/** What an adapter gets from the core: the controller, plus the framework's side of the seam. */
export interface FrameworkController<Request> extends ServerController {
  /**
   * Request start. Attaches to the request's server if that is new (Express/Koa's `app.use(g)`
   * with a plain `app.listen()`), then decides: `true` run the route, `false` quiesce answered it
   * (503, or it arrived after the connection's close was announced), or a promise (`pause({ mode: 'hold' })`).
   */
  admit(request: Request): boolean | Promise<boolean>
  /** The request's quiesce signal: aborts on client close (D10) and before the deadline (D6). */
  requestSignal(request: Request): AbortSignal
  /**
   * The framework began closing (Fastify `preClose`): the drain starts, and this resolves when the
   * framework may close its listener (after the announce phase, D4). The report: `shutdown()`.
   */
  frameworkClosing(): Promise<void>
  /**
   * The framework is about to destroy every connection itself (Fastify's `forceCloseConnections:
   * true`): what still runs is destroyed now and named in the report as forced.
   */
  frameworkForcing(): void
  /** The readiness route's answer now (D4), for the adapter to write out. */
  readiness(): HealthAnswer
  /** The liveness route's answer. */
  liveness(): HealthAnswer
  /**
   * The public controller on `target` (the middleware function, or a plain object), written once
   * for every package (`exposeController`); `shutdown` for a framework that closes after the drain.
   */
  expose<T extends object>(target: T, shutdown?: (options?: ShutdownOptions) => Promise<ShutdownReport>): T & ServerController
}

export function createFrameworkController<Request>(
  binding: FrameworkBinding<Request>,
  options?: GracefulOptions & Record<string, unknown>,
): FrameworkController<Request> {
  const byRequest = binding.servers === 'request'
  const core = new GracefulController(options, {
    gate: binding.gate === 'dispatch',
    listener: binding.listener,
    extraOptions: byRequest ? ['server', ...(binding.options ?? [])] : (binding.options ?? []),
    name: binding.name,
  })
  // `{ server }`: attached now, before its first request (D17)
  if (byRequest && options?.server !== undefined) core.attach(options.server)
  let warnedShared = false
  const admit = (request: Request): boolean | Promise<boolean> => {
    const { req, res } = binding.raw(request)
    const server = serverOf(req)
    if (server !== null) {
      let tracker = core.trackerOf(server)
      if (tracker === undefined && byRequest && serverKind(server) !== null && core.state !== 'closed') {
        if (!drainedByAnyController(server)) {
          core.attach(server)
          tracker = core.trackerOf(server)
        } else if (!warnedShared) {
          // another controller (a graceful(server) of its own) drains this server: it keeps doing so (D20)
          warnedShared = true
          core.options.logger?.warn(
            `quiesce: the ${binding.name} middleware found its server drained by another quiesce controller; that one keeps draining it, and this middleware lets requests through. Use one of the two.`,
          )
        }
      }
      // a server this controller does not drain: not its request to gate
      if (tracker === undefined) return true
      // the request that made us attach was dispatched before our dispatch was in place
      if (req.httpVersionMajor !== 2) tracker.adoptRequest(req as IncomingMessage, res as ServerResponse)
    }
    return core.admit(req, res)
  }
  return exposeController(core, {
    admit,
    requestSignal: (request: Request) => nodeRequestSignal(binding.raw(request).req),
    frameworkClosing: () => core.frameworkClosing(),
    frameworkForcing: () => core.frameworkForcing(),
    readiness: () => readinessAnswer(core.ready, core.options.retryAfter),
    liveness: () => livenessAnswer,
    expose: <T extends object>(target: T, shutdown?: (o?: ShutdownOptions) => Promise<ShutdownReport>) => exposeController(core, target, shutdown),
  }) as unknown as FrameworkController<Request>
}

function serverOf(req: IncomingMessage | Http2ServerRequest): AnyServer | null {
  if (req.httpVersionMajor === 2) return serverOfSession((req as Http2ServerRequest).stream?.session) as AnyServer | null
  return serverOfSocket(req.socket as Socket | null) as AnyServer | null
}
