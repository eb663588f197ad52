import type { IncomingMessage, Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Http2SecureServer, Http2Server, Http2ServerRequest, ServerHttp2Stream } from 'node:http2'
import type { Duplex } from 'node:stream'

/** The servers quiesce drains: `node:http`, `node:https` and `node:http2` (plain or secure). */
export type AnyServer = HttpServer | HttpsServer | Http2Server | Http2SecureServer

/** A request object quiesce understands at the core level. */
export type NodeRequest = IncomingMessage | Http2ServerRequest | ServerHttp2Stream

/** `running → paused → running … → draining → closed`. */
export type State = 'running' | 'paused' | 'draining' | 'closed'

/** What `logger` must offer; pino, console, bunyan and Fastify's `fastify.log` all fit. */
export interface Logger {
  info(message: string): void
  warn(message: string): void
  error(message: string): void
  /** Called (if present) before the process exits, so that buffered lines are written. */
  flush?: ((callback?: (err?: Error | null) => void) => void) | undefined
}

export interface GracefulOptions {
  /** ms from drain start (the announce phase included) to the D6 deadline. Default 10 000. */
  timeout?: number
  /** Process signals that start a drain of every server in the process; `false` leaves them alone (D9). Default `['SIGINT', 'SIGTERM']`. */
  signals?: readonly string[] | false
  /** ms of announce phase before the listener closes (D4). Default 0. */
  readinessDelay?: number
  /** ms a keep-alive socket must be quiet before the drain closes it as idle (D1). Default 50. */
  idleGrace?: number
  /** ms a socket with no complete request (new, mid-headers, TLS handshake) may take once the listener closed (D5). Default 500. */
  headerGrace?: number
  /** Upper bound, ms, on the read-and-discard linger after the FIN that follows a last response (D2). Default 500. */
  linger?: number
  /** ms between aborting the request signals at the deadline and destroying what remains (D6). Default 100. */
  abortGrace?: number
  /** How a request that arrives during the drain is answered (D3): served with `Connection: close`, or `503` with `Retry-After`. Default `'close'`. */
  duringDrain?: 'close' | 'reject'
  /** Seconds sent in `Retry-After` on every 503 quiesce writes. Default 1. */
  retryAfter?: number
  /** Where progress and the final report go; `false` for silence. Default: `console`. */
  logger?: Logger | false
  /** Handle `uncaughtException` / `unhandledRejection` by draining and exiting 1 (D11). Default: on when `signals` is on, off inside a test runner's worker. */
  fatalErrors?: boolean
  /** ms the other requests get to finish after a fatal error (D11). Default: `min(timeout, 5000)`. */
  fatalTimeout?: number
  /** Overall ms limit for all cleanup hooks together (D8). Default 5000. */
  hooksTimeout?: number
  /** ms the supervisor gives the process to stop (e.g. Kubernetes' terminationGracePeriodSeconds × 1000, preStop excluded). Under PM2 it defaults to `kill_timeout` (D19). */
  budget?: number
  /** When a signal or a fatal error started the drain, exit the process when done (D9). Default true. */
  exit?: boolean
  /** Called once for each upgraded socket (WebSocket…) when the listener closes, to tell it to leave (e.g. close with 1001) (D12). */
  closeUpgraded?: (socket: Duplex) => void | Promise<void>
  /** ms to wait for the HTTP/2 PING ACK between the two GOAWAY frames (D12). Default 1000. */
  goawayTimeout?: number
}

export interface ShutdownOptions {
  /** Overrides `timeout` for this drain (only the first call's value counts: every call returns the same promise). */
  timeout?: number
}

export type ShutdownReason = 'manual' | 'signal' | 'fatal' | 'framework'

export type PauseMode = 'refuse' | 'reject' | 'hold'

export interface PauseOptions {
  /** Default `'refuse'`. */
  mode?: PauseMode
  /** `hold` only: ms a request may wait before it is answered 503. Default 5000. */
  maxWait?: number
}

export interface ResumeOptions {
  /** How many times `listen` is retried on EADDRINUSE, with back-off, before `resume()` rejects. Default 10. */
  retries?: number
}

export interface HookOptions {
  /** Shown in logs and in the report. Default: the function's name, or `hook N`. */
  name?: string
  /** ms this hook may take. Default: the overall `hooksTimeout`. */
  timeout?: number
}

export type ShutdownHook = (signal: AbortSignal) => unknown

/** What was still running at the deadline, or what failed, by name (D6). */
export type ForcedItem =
  | { kind: 'request'; method: string; url: string; ageMs: number; protocol: 'http/1.1' | 'h2' }
  | { kind: 'socket'; type: 'http1' | 'upgraded' | 'tls-handshake' | 'new'; remote: string }
  | { kind: 'session'; remote: string; streams: number }
  | { kind: 'hook'; name: string; timedOut: boolean }

export interface HookReport {
  name: string
  ok: boolean
  timedOut: boolean
  durationMs: number
  error?: string
}

export interface ShutdownReport {
  reason: ShutdownReason
  /** The signal that started it, when one did. */
  signal?: string
  /** Nothing was forced and no hook failed. */
  ok: boolean
  /** ms from drain start to the end of the hooks. */
  durationMs: number
  /** ms from drain start to the last server's `close`. */
  drainMs: number
  /** The deadline was reached (or a second signal forced the end). */
  timedOut: boolean
  /** A second signal forced the end (D9). `ok` still says whether anything was cut or failed. */
  forcedBySignal: boolean
  /** Requests whose response finished during the drain. */
  requestsCompleted: number
  /** Requests whose client left, or that were cut at the deadline, during the drain. */
  requestsAborted: number
  /** Requests answered 503 during the drain (`duringDrain: 'reject'`). */
  requestsRejected: number
  /** Idle keep-alive sockets closed by the drain (never counted as forced). */
  socketsClosedIdle: number
  /** Sockets and HTTP/2 sessions destroyed at the deadline while in use. */
  socketsForced: number
  forced: ForcedItem[]
  hooks: HookReport[]
}

export interface Stats {
  state: State
  /** Open connections quiesce tracks (HTTP/1 sockets, TLS handshakes, HTTP/2 sessions). */
  connections: number
  /** HTTP/1 keep-alive sockets with no request in progress. */
  idleConnections: number
  requestsInFlight: number
  upgradedSockets: number
  http2Sessions: number
}

/** The controller every package returns: the same methods on bare Node, Express, Koa and Fastify. */
export interface Controller {
  readonly state: State
  /** Aborts when draining starts (at the start of the announce phase). */
  readonly draining: AbortSignal
  /** True while running or paused: the readiness answer (D4). */
  readonly ready: boolean
  stats(): Stats
  shutdown(options?: ShutdownOptions): Promise<ShutdownReport>
  pause(options?: PauseOptions): Promise<void>
  resume(options?: ResumeOptions): Promise<void>
  /** A cleanup hook, run after every server closed, last registered first, each under its limit (D8). Returns a function that removes it. */
  onShutdown(hook: ShutdownHook, options?: HookOptions): () => void
  /** A hook run when draining starts, before the listener closes (announce phase): tell long-lived clients to leave. */
  beforeShutdown(hook: ShutdownHook, options?: HookOptions): () => void
}
