/**
 * @quiesce/core — graceful shutdown and connection lifecycle for Node.js HTTP servers.
 *
 * ```ts
 * import http from 'node:http'
 * import { graceful, requestSignal } from '@quiesce/core'
 *
 * const server = http.createServer(async (req, res) => {
 *   const data = await longPoll({ signal: requestSignal(req) })
 *   res.end(data)
 * })
 * const g = graceful(server, { timeout: 10_000 })
 * server.listen(3000)
 * // Ctrl+C / SIGTERM now drains: in-flight requests finish, idle sockets close, exit 0.
 * ```
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { GracefulController } from './internal/controller.js'
import { exposeController, livenessAnswer, readinessAnswer, type HealthAnswer, type ServerController } from './internal/facade.js'
import { assertServer } from './internal/servers.js'
import { assertUndrained } from './internal/tracker.js'
import type { AnyServer, GracefulOptions } from './types.js'

export type NodeHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void

/** The controller `graceful(server)` returns. */
export interface GracefulServer extends ServerController {
  /** A readiness route: 200 while running or paused, 503 with Retry-After from the moment draining starts (D4). */
  readonly readiness: NodeHandler
  /** A liveness route: 200 as long as the process answers (a drain is not a reason to be restarted). */
  readonly liveness: NodeHandler
}

/**
 * Drains `server` (an `http`, `https` or `http2` server) on SIGINT/SIGTERM, on `shutdown()`, or
 * on a fatal error, keeping the drain contract D1–D21. quiesce takes its place in Node's own
 * dispatch of each request, never in the server's `'request'` listeners (other code may manage
 * those at any time, D20): a request can be held (`pause({ mode: 'hold' })`) or answered 503
 * before your handler runs, and a handler that throws or rejects answers 500 instead of crashing
 * (D11). One controller per server: a second `graceful()` on it throws a TypeError.
 */
export function graceful(server: AnyServer, options?: GracefulOptions): GracefulServer {
  assertServer(server)
  assertUndrained(server)
  const core = new GracefulController(options, { gate: true, listener: 'quiesce', name: 'server' })
  core.attach(server)
  return exposeController(core, {
    readiness: ((_req, res) => writeAnswer(res, readinessAnswer(core.ready, core.options.retryAfter))) as NodeHandler,
    liveness: ((_req, res) => writeAnswer(res, livenessAnswer)) as NodeHandler,
  })
}

function writeAnswer(res: ServerResponse | Http2ServerResponse, answer: HealthAnswer): void {
  res.statusCode = answer.status
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
  res.end(answer.body)
}

export { requestSignal } from './internal/signal.js'
export { createFrameworkController } from './lifecycle.js'
export type { FrameworkBinding, FrameworkController, HealthAnswer, ServerController } from './lifecycle.js'
export { channels } from './channels.js'
export {
  QuiesceError,
  QuiesceOptionError,
  ClientClosedError,
  ResponseDestroyedError,
  ShutdownDeadlineError,
  DrainingError,
  ClosedError,
  ResumeError,
  HookError,
} from './errors.js'
export type { QuiesceErrorCode } from './errors.js'
export type {
  AnyServer,
  Controller,
  ForcedItem,
  GracefulOptions,
  HookOptions,
  HookReport,
  Logger,
  NodeRequest,
  PauseMode,
  PauseOptions,
  ResumeOptions,
  ShutdownHook,
  ShutdownOptions,
  ShutdownReason,
  ShutdownReport,
  State,
  Stats,
} from './types.js'
