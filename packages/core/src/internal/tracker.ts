import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { AnyServer } from '../types.js'
import { installDispatch, ownBaseEmit, type Dispatcher, type Emit } from './dispatch.js'
import { retryAfterHeader } from './answers.js'
import { Http1Sockets } from './http1.js'
import { Http2Sessions } from './http2.js'
import { guardDrainingHeaders, holdIdleClose, nodeCloseAll, nodeCloseIdle } from './node.js'
import { closeListener, serverKind, type ServerKind } from './servers.js'
import { now, type AnyRequest, type AnyResponse, type DrainSite, type TrackerHost } from './site.js'
import { DrainLoad } from './load.js'
import { TlsHandshakes } from './handshakes.js'
import { SweepTimer } from './sweep.js'

export { assertUndrained } from './dispatch.js'

export type { TrackerHost } from './site.js'

export interface TrackerOptions {
  /** Run the gate (pause, reject, 500 on a handler's error) before the app's 'request' listeners (bare Node). */
  gate: boolean
}

/**
 * Tracks one server's connections and requests, and drains them (D1–D7, D12): the registry and
 * its event wiring, Node's dispatch of requests, and the drain's steps. HTTP/1 sockets live in
 * `Http1Sockets`, HTTP/2 sessions in `Http2Sessions`, the sweep's timer in `SweepTimer`.
 *
 * Nothing here runs a timer while the server is serving. During a drain, one timer per server
 * walks what is tracked when the next grace, linger or GOAWAY wait is due (D15); the end of the
 * drain is the server's own `close` event (D7).
 */
export class Tracker implements DrainSite, Dispatcher {
  readonly server: AnyServer
  readonly kind: ServerKind
  readonly host: TrackerHost
  readonly http1: Http1Sockets
  readonly http2: Http2Sessions
  readonly handshakes: TlsHandshakes
  /** The server is not listening and has emitted `close` (or never listened). */
  closed: boolean
  listenerClosedAt = 0
  drainStartedAt = 0
  /** The server may hold sockets accepted before quiesce attached (D17). */
  untracked = false

  readonly #gate: boolean
  readonly #sweeper: SweepTimer
  readonly #removeDispatch: () => void
  /** The server's own emit from before quiesce (another library's wrapper), else undefined: the class's, read per event. */
  readonly #ownBase: Emit | undefined
  #closedWaiters: Array<() => void> = []
  #releaseIdleClose: (() => void) | null = null
  #detached = false
  /** How slow the process and machine are, sampled only while draining (D1, D15). */
  readonly #load = new DrainLoad()

  static refused(res: object): boolean {
    return Http1Sockets.refused(res)
  }

  constructor(server: AnyServer, host: TrackerHost, options: TrackerOptions) {
    this.server = server
    this.kind = serverKind(server) as ServerKind
    this.host = host
    this.#gate = options.gate
    this.closed = !server.listening
    this.http1 = new Http1Sockets(this)
    this.http2 = new Http2Sessions(this)
    this.handshakes = new TlsHandshakes(this)
    this.#sweeper = new SweepTimer(this.#walk)
    this.#removeDispatch = installDispatch(server, this, options.gate)
    this.#ownBase = ownBaseEmit(server)
    const s = server as HttpServer
    s.on('listening', this.#onListening)
    s.on('close', this.#onClose)
    if (this.kind === 'http') s.on('connection', this.#onConnection)
    if (this.kind === 'https' || this.kind === 'h2') {
      s.on('connection', this.handshakes.onRawConnection)
      s.on('secureConnection', this.#onSecureConnection)
    }
    if (this.kind === 'h2' || this.kind === 'h2c') {
      s.on('session', this.http2.onSession)
      s.on('stream', this.http2.onStream)
    }
    // Sockets accepted before now are unknown to us (D17). Node counts them only asynchronously,
    // so assume some exist until the count says otherwise.
    if (server.listening) {
      this.untracked = true
      s.getConnections((err, count) => {
        if (!err && count === 0) this.untracked = false
      })
    }
  }

  /** Stops tracking (the controller is done with this server). Sockets keep their state objects until they close. */
  detach(): void {
    if (this.#detached) return
    this.#detached = true
    const s = this.server as HttpServer
    s.removeListener('listening', this.#onListening)
    s.removeListener('close', this.#onClose)
    s.removeListener('connection', this.#onConnection)
    s.removeListener('connection', this.handshakes.onRawConnection)
    s.removeListener('secureConnection', this.#onSecureConnection)
    s.removeListener('session', this.http2.onSession)
    s.removeListener('stream', this.http2.onStream)
    this.#removeDispatch()
    this.#releaseIdleClose?.()
    this.#releaseIdleClose = null
    this.#sweeper.stop()
    this.#load.stop()
  }

  lag(): number {
    return this.#load.lag()
  }

  slowdown(): number {
    return this.#load.slowdown()
  }

  scheduleSweep(at: number): void {
    if (!this.closed) this.#sweeper.schedule(at)
  }

  // ── connections ──────────────────────────────────────────────────────────

  #onListening = (): void => {
    this.closed = false
    this.listenerClosedAt = 0
    this.host.serverListening()
  }

  #onClose = (): void => {
    this.closed = true
    this.#sweeper.clear()
    this.#load.stop()
    const waiters = this.#closedWaiters
    this.#closedWaiters = []
    for (const w of waiters) w()
    this.host.serverClosed()
  }

  /** Resolves when the server has emitted `close` (or is closed already). */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => this.#closedWaiters.push(resolve))
  }

  #onConnection = (socket: Socket): void => {
    this.http1.adopt(socket)
  }

  #onSecureConnection = (tlsSocket: Socket & { alpnProtocol?: string | false }): void => {
    this.handshakes.secured(tlsSocket)
    if (this.kind === 'h2' && tlsSocket.alpnProtocol === 'h2') return // an HTTP/2 session: tracked by 'session'
    this.http1.adopt(tlsSocket)
  }

  // ── requests ─────────────────────────────────────────────────────────────

  /** One request event from Node: tracked, gated on bare Node, then handed to the app's listeners. */
  dispatch(event: string | symbol, req: AnyRequest, res: AnyResponse): boolean {
    const server = this.server
    const base = this.#base()
    // HTTP/2 streams are counted from 'stream'; an HTTP/1 response seen before (an app's
    // 'checkContinue' listener emitting 'request' for it) is not tracked or gated twice
    const first = req.httpVersionMajor === 2 ? this.#trackH2(res) : this.http1.track(req as IncomingMessage, res as ServerResponse)
    if (!first || !this.#gate) return base.call(server, event, req, res)
    if (Tracker.refused(res)) return true
    const verdict = this.host.admit(req, res)
    if (verdict === true) return this.#emit(base, event, req, res)
    if (verdict !== false) {
      verdict.then(
        (ok) => {
          if (ok) this.#emit(this.#base(), event, req, res)
        },
        (err: unknown) => this.host.handlerFailed(err, req, res),
      )
    }
    return true
  }

  /**
   * The emit the server would use without quiesce: its own one from before us, else its class's,
   * read at each call (a wrapper put on `http.Server.prototype.emit` later, OpenTelemetry's, runs).
   */
  #base(): Emit {
    return this.#ownBase ?? (Object.getPrototypeOf(this.server) as { emit: Emit }).emit
  }

  /** HTTP/2's compatibility API: the stream is counted from 'stream'; during a drain a 503 still gets Retry-After (D3). */
  #trackH2(res: AnyResponse): true {
    if (this.host.isDraining) guardDrainingHeaders(res as unknown as ServerResponse, retryAfterHeader(this.host.options.retryAfter))
    return true
  }

  /** A listener that throws answers its request 500 (D11); a rejected promise comes back through `rejected`. */
  #emit(base: Emit, event: string | symbol, req: AnyRequest, res: AnyResponse): boolean {
    try {
      return base.call(this.server, event, req, res)
    } catch (err) {
      this.host.handlerFailed(err, req, res)
      return true
    }
  }

  rejected(error: unknown, req: AnyRequest, res: AnyResponse): void {
    this.host.handlerFailed(error, req, res)
  }

  /** A request that started before quiesce attached to its server (Express/Koa's first request). */
  adoptRequest(req: IncomingMessage, res: ServerResponse): void {
    this.http1.track(req, res)
  }

  // ── the drain ────────────────────────────────────────────────────────────

  /** Draining starts (D4 announce): close markers on in-flight HTTP/1 responses, first GOAWAY on sessions. */
  startDrain(): void {
    // other code may close the server meanwhile (a framework's close, NestJS, socket.io's
    // io.close()): Node's immediate idle close would race clients reusing a socket (D1, D20)
    if (this.#releaseIdleClose === null && (this.kind === 'http' || this.kind === 'https')) {
      this.#releaseIdleClose = holdIdleClose(this.server, () => this.scheduleSweep(now()))
    }
    this.drainStartedAt = now()
    if (!this.closed) this.#load.start()
    this.http1.startDrain()
    this.http2.startDrain()
  }

  /**
   * The listener closes (D4: at drain start, or after the announce phase): new connections are
   * refused from now on, on every listener alike (D16). Idle sockets close once quiet for
   * `idleGrace` (D1), new and mid-header ones get `headerGrace` (D5), upgraded ones are told to
   * leave (D12). With `external`, the framework closes the server itself (Fastify).
   */
  closeListener(external = false): void {
    if (this.listenerClosedAt !== 0) return
    this.listenerClosedAt = now()
    if (this.server.listening) closeListener(this.server, this.kind, external)
    this.scheduleSweep(now())
  }

  /** One walk over what is tracked (the sweep's rules): whatever is due is done; returns the next due time. O(N). */
  #walk = (t: number): number => {
    if (this.#detached) return Infinity
    const h1 = this.http1.sweep(t)
    let next = Math.min(h1.next, this.http2.sweep(t))
    if (this.listenerClosedAt === 0) return next
    const o = this.host.options
    next = Math.min(next, this.handshakes.sweep(t))
    // sockets accepted before attach: Node's own idle close, once none of ours is inside its grace
    if (this.untracked && (this.kind === 'http' || this.kind === 'https')) {
      if (!h1.busy && t >= this.listenerClosedAt + o.idleGrace) nodeCloseIdle(this.server)
      next = Math.min(next, t + Math.max(o.idleGrace, 25))
    }
    return next
  }

  /** D6, `abortGrace` before the deadline: every request still running has its signal aborted with the deadline reason. */
  abortInFlight(reason: () => Error): void {
    this.http1.abortInFlight(reason)
    this.http2.abortInFlight(reason)
  }

  /** D6, at the deadline: destroy what is left, naming each forced request, socket and session. */
  destroyAll(): void {
    this.http1.destroyAll()
    this.handshakes.destroyAll()
    this.http2.destroyAll()
    // sockets accepted before attach, if any
    if (this.kind === 'http' || this.kind === 'https') nodeCloseAll(this.server)
  }
}
