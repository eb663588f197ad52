import http from 'node:http'
import http2 from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse, Http2Session, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ClientClosedError, QuiesceOptionError, ResponseDestroyedError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { AnyServer, ForcedItem } from '../types.js'
import { captureRejections, hasCloseMarker, isUpgraded, rawSocketOf, restoreRejections, setCloseMarker } from './node.js'
import { closeListener, closeListenerOnly, remoteOf, serverKind, type ServerKind } from './servers.js'
import { abortRequestSignal, streamCutShort } from './signal.js'

export { hasCloseMarker, setCloseMarker }

/** Per-socket bookkeeping lives on the socket under these keys: no WeakMap lookups on the request path. */
export const kSocketState = Symbol.for('quiesce.socket')
export const kSessionState = Symbol.for('quiesce.session')
/** The live tracker of a server. `Symbol.for`: a second controller, or a second copy of quiesce, sees it (D20). */
const kTracker = Symbol.for('quiesce.tracker')
/** An own `emit` the server had before quiesce's (another library's wrapper): dispatch goes through it. */
const kEmitBase = Symbol.for('quiesce.emit-base')
/** Marks a response whose request must not reach its handler (it arrived after the close was announced). */
const kRefused = Symbol.for('quiesce.refused')
const kRejection = Symbol.for('nodejs.rejection')

const now = (): number => performance.now()
const GOAWAY_ALL = 2 ** 31 - 1
/** A reuse within this many ms of the previous answer marks a busy client (D1); longer is think time. */
const REUSE_WINDOW = 150
/**
 * A sweep whose check-phase callback runs this many ms after it was queued followed a stall (a
 * long callback earlier in the same check phase): a next request that arrived meanwhile is still
 * unread in the kernel, so idle sockets wait for one more poll phase (D1).
 */
const LATE_SWEEP = 10

/**
 * D1's quiet time for one socket: `idleGrace`, or, for a busy client (one that reused this socket
 * within 150 ms of its previous answer), three times the gap it took then (so at most 450 ms).
 * Behind a loaded proxy or on a loaded machine a busy client can take longer than `idleGrace` to
 * send its next request; it must not be taken for idle at that moment.
 */
function idleGraceOf(state: { reuseGap: number }, idleGrace: number): number {
  return Math.max(idleGrace, 3 * state.reuseGap)
}

interface SocketState {
  readonly tracker: Tracker
  readonly openedAt: number
  /** Requests dispatched on this socket whose response has not closed yet. */
  pending: number
  /** Requests dispatched on this socket since it was tracked. */
  requests: number
  /** The newest dispatched response: the one that carries the `Connection: close` marker (D2). */
  lastRes: ServerResponse | null
  /** The responses in flight on this socket, oldest first (more than one only with pipelining). */
  readonly responses: ServerResponse[]
  /** When the socket last saw a request start or a response end. */
  quietSince: number
  /** `socket.bytesRead` when the last response ended: more means a next request has begun (D1). */
  bytesMark: number
  /** When the last response on this socket closed. */
  respondedAt: number
  /** How long the client took to send its latest request after the previous answer, when a busy client's (under REUSE_WINDOW); else 0. */
  reuseGap: number
  /** Set once our FIN is sent: the end of the bounded linger (D2). 0 = not closing. */
  lingerUntil: number
  /** `closeUpgraded` was called for this socket. */
  upgradeNotified: boolean
  /** quiesce destroyed it at the deadline: its unfinished requests were cut, not left by their client. */
  forced: boolean
}

interface SessionState {
  streams: number
  /** 0 = serving, 1 = first GOAWAY (max id) + PING sent, 2 = final GOAWAY sent. */
  phase: 0 | 1 | 2
  readonly openedAt: number
  /** When its last stream closed (or it opened): an idle session's grace counts from here (D1). */
  quietSince: number
  pingDeadline: number
  acked: boolean
}

type H1Socket = Socket & { [kSocketState]?: SocketState }
type TrackedSession = Http2Session & { [kSessionState]?: SessionState }
type MaybeRefused = { [kRefused]?: true }
type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean
type Dispatching = AnyServer & { [kTracker]?: Tracker; [kEmitBase]?: Emit; [kRejection]?: unknown }
/** When a tracked response's request started: for the report's age of a forced request (D6). */
const kStartedAt = Symbol('quiesce.started-at')
type StartedResponse = ServerResponse & { [kStartedAt]?: number }

/** What a tracker needs from the controller that owns it. */
export interface TrackerHost {
  readonly options: ResolvedOptions
  /** Draining has started (announce phase included): every HTTP/1 response gets the close marker. */
  readonly isDraining: boolean
  count(event: 'completed' | 'aborted' | 'idleClosed'): void
  forced(item: ForcedItem): void
  /** A user callback failed; goes to the logger and the report. */
  callbackFailed(what: string, error: unknown): void
  /** The gate: run the handler (true), don't (false: answered or refused), or wait. */
  admit(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): boolean | Promise<boolean>
  handlerFailed(error: unknown, req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void
  /** The server emitted 'close' / 'listening' (D20: a controller whose servers closed is released). */
  serverClosed(): void
  serverListening(): void
}

export interface TrackerOptions {
  /** Run the gate (pause, reject, 500 on a handler's error) before the app's 'request' listeners (bare Node). */
  gate: boolean
}

type AnyRequest = IncomingMessage | Http2ServerRequest
type AnyResponse = ServerResponse | Http2ServerResponse

/** Node's request events: 'request', and the two it emits instead for `Expect:` requests (D21). */
function isRequestEvent(event: string | symbol): boolean {
  return event === 'request' || event === 'checkContinue' || event === 'checkExpectation'
}

/** The emit a server would use without quiesce: an own one set before us, else its class's (read at call time). */
function baseEmit(server: Dispatching): Emit {
  return server[kEmitBase] ?? (Object.getPrototypeOf(server) as { emit: Emit }).emit
}

/**
 * quiesce's place in Node's own dispatch (D20). Node announces each request with
 * `server.emit('request' | 'checkContinue' | 'checkExpectation', req, res)`; this own `emit`
 * tracks it and, on bare Node, runs the gate, then hands the event to the server's usual emit —
 * so the app's listeners stay the app's: added, prepended, removed, `once`, swapped or taken over
 * (socket.io) at any time, they run exactly as they would without quiesce. Every other event
 * passes straight through. With no live tracker (detached) it is a plain pass-through.
 */
function dispatchingEmit(this: Dispatching, event: string | symbol, req?: unknown, res?: unknown): boolean {
  const tracker = this[kTracker]
  if (tracker !== undefined && isRequestEvent(event)) return tracker.dispatch(event, req as AnyRequest, res as AnyResponse)
  // biome-ignore lint/style/noArguments: every argument passes through, without an array per event
  return Reflect.apply(baseEmit(this), this, arguments) as boolean
}

/** D20: a second controller on one server would track every socket twice; the second is refused at its call. */
export function assertUndrained(server: object): void {
  if ((server as Dispatching)[kTracker] !== undefined) {
    throw new QuiesceOptionError('server', 'a server no other quiesce controller drains (one graceful() per server: keep the controller the first call returned)', server)
  }
}

/** A rejected promise from an async 'request' listener (captured, see `captureRejections`): answered 500 (D11). */
function onListenerRejection(this: Dispatching, error: unknown, event: string | symbol, req?: unknown, res?: unknown): void {
  const tracker = this[kTracker]
  if (tracker !== undefined && isRequestEvent(event)) {
    tracker.host.handlerFailed(error, req as AnyRequest, res as AnyResponse)
    return
  }
  // any other event: what it would have been without the capture, an unhandled rejection
  void Promise.reject(error)
}

/**
 * Tracks one server's connections and requests, and drains them (D1–D7, D12).
 *
 * Nothing here runs a timer while the server is serving. During a drain, one timer per server
 * walks the tracked sockets when the next grace, linger or GOAWAY wait is due (D15); the end of
 * the drain is the server's own `close` event (D7).
 */
export class Tracker {
  readonly server: AnyServer
  readonly kind: ServerKind
  readonly host: TrackerHost
  /** HTTP/1 sockets (the TLS socket on https servers). */
  readonly sockets = new Set<H1Socket>()
  /** TLS servers: raw sockets whose handshake has not completed. */
  readonly handshakes = new Set<Socket>()
  readonly sessions = new Set<TrackedSession>()
  /** HTTP/1 requests in flight, across the tracked sockets. */
  inflightCount = 0
  /** HTTP/2 streams in flight → when they started and what they asked for. */
  readonly streams = new Map<ServerHttp2Stream, StreamInfo>()
  /** The server is not listening and has emitted `close` (or never listened). */
  closed: boolean
  listenerClosedAt = 0
  /** The server may hold sockets accepted before quiesce attached (D17). */
  untracked = false

  #gate: boolean
  #sweepTimer: NodeJS.Timeout | null = null
  #nextSweepAt = Infinity
  #closedWaiters: Array<() => void> = []
  #nodeIdleCloseHeld = false
  #ownIdleClose: PropertyDescriptor | undefined
  #ownEmit: PropertyDescriptor | undefined
  #rejectionsBefore: boolean | null = null
  #detached = false
  /** When this tracker's drain started (0: not draining). */
  #drainStartedAt = 0

  /** The live tracker of `server`, if a controller drains it (D20: one per server). */
  static of(server: object): Tracker | undefined {
    return (server as Dispatching)[kTracker]
  }

  constructor(server: AnyServer, host: TrackerHost, options: TrackerOptions) {
    assertUndrained(server)
    const s = server as Dispatching & http.Server
    this.server = server
    this.kind = serverKind(server) as ServerKind
    this.host = host
    this.#gate = options.gate
    this.closed = !server.listening

    s.on('listening', this.#onListening)
    s.on('close', this.#onClose)
    if (this.kind === 'http') {
      s.on('connection', this.#onConnection)
    } else if (this.kind === 'https' || this.kind === 'h2') {
      s.on('connection', this.#onRawConnection)
      s.on('secureConnection', this.#onSecureConnection)
    }
    if (this.kind === 'h2' || this.kind === 'h2c') {
      s.on('session', this.#onSession)
      s.on('stream', this.#onStream)
    }
    s[kTracker] = this
    this.#ownEmit = Object.getOwnPropertyDescriptor(s, 'emit')
    if (this.#ownEmit !== undefined && typeof this.#ownEmit.value === 'function') s[kEmitBase] = this.#ownEmit.value as Emit
    ;(s as unknown as { emit: Emit }).emit = dispatchingEmit as Emit
    if (this.#gate) {
      this.#rejectionsBefore = captureRejections(s)
      s[kRejection] = onListenerRejection
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
    const s = this.server as Dispatching & http.Server
    s.removeListener('listening', this.#onListening)
    s.removeListener('close', this.#onClose)
    s.removeListener('connection', this.#onConnection)
    s.removeListener('connection', this.#onRawConnection)
    s.removeListener('secureConnection', this.#onSecureConnection)
    s.removeListener('session', this.#onSession)
    s.removeListener('stream', this.#onStream)
    if (s[kTracker] === this) delete s[kTracker]
    // another library may have wrapped our emit since: then ours stays, as a pass-through
    if ((s as unknown as { emit: unknown }).emit === dispatchingEmit) {
      if (this.#ownEmit !== undefined) Object.defineProperty(s, 'emit', this.#ownEmit)
      else delete (s as unknown as { emit?: unknown }).emit
      delete s[kEmitBase]
    }
    if (this.#gate) {
      if (s[kRejection] === onListenerRejection) delete s[kRejection]
      restoreRejections(s, this.#rejectionsBefore)
    }
    this.releaseNodeIdleClose()
    this.#clearSweep()
  }

  // ── connections ──────────────────────────────────────────────────────────

  #onListening = (): void => {
    this.closed = false
    this.listenerClosedAt = 0
    this.host.serverListening()
  }

  #onClose = (): void => {
    this.closed = true
    this.#clearSweep()
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
    this.#adopt(socket as H1Socket)
  }

  #adopt(socket: H1Socket): SocketState {
    const t = now()
    const state: SocketState = {
      tracker: this,
      openedAt: t,
      pending: 0,
      requests: 0,
      lastRes: null,
      responses: [],
      quietSince: t,
      bytesMark: 0,
      respondedAt: t,
      reuseGap: 0,
      lingerUntil: 0,
      upgradeNotified: false,
      forced: false,
    }
    socket[kSocketState] = state
    this.sockets.add(socket)
    socket.on('close', onSocketClose)
    // a connection accepted while the listener is closing (D4 announce over) still gets D5's grace
    if (this.listenerClosedAt !== 0) this.#scheduleSweep(t + this.host.options.headerGrace)
    return state
  }

  #onRawConnection = (raw: Socket): void => {
    // by socket, not by remote address: every client of a Unix socket is 'unknown' (D21)
    this.handshakes.add(raw)
    raw.once('close', () => this.handshakes.delete(raw))
    if (this.listenerClosedAt !== 0) this.#scheduleSweep(now() + this.host.options.headerGrace)
  }

  #onSecureConnection = (tlsSocket: Socket & { alpnProtocol?: string | false }): void => {
    const raw = rawSocketOf(tlsSocket)
    if (raw !== null) this.handshakes.delete(raw)
    if (this.kind === 'h2' && tlsSocket.alpnProtocol === 'h2') return // an HTTP/2 session: tracked by 'session'
    this.#adopt(tlsSocket as H1Socket)
  }

  // ── HTTP/1 requests ──────────────────────────────────────────────────────

  /**
   * Runs before any handler: counting and the close marker. False when this response is tracked
   * already (an app's 'checkContinue' listener that emits 'request' for the same request).
   */
  #track(req: AnyRequest, res: AnyResponse): boolean {
    if (req.httpVersionMajor === 2) return true // HTTP/2: counted per stream
    const h1res = res as StartedResponse
    if (h1res[kStartedAt] !== undefined) return false
    const socket = req.socket as H1Socket
    const state = socket[kSocketState] ?? this.#adopt(socket)
    const prev = state.lastRes
    // A request that arrives after our FIN can never be answered on this socket: its handler
    // must not run (D2). Until the FIN, every dispatched request is served and answered, even
    // one behind a response whose header already said `Connection: close` (a synchronous
    // handler bakes its header before Node parses the next pipelined request): the socket
    // closes only after the last one.
    if (state.lingerUntil !== 0) {
      ;(h1res as MaybeRefused)[kRefused] = true
      h1res[kStartedAt] = now()
      return true
    }
    const t = now()
    // a client that reuses its socket at once is a busy one: remember how fast it is, so
    // that a lagging one (a loaded proxy, a loaded machine) is not taken for idle (D1)
    if (state.requests > 0 && state.pending === 0) {
      const gap = t - state.respondedAt
      state.reuseGap = gap < REUSE_WINDOW ? gap : 0
    }
    state.pending++
    state.requests++
    state.lastRes = h1res
    state.quietSince = t
    ;(h1res as StartedResponse)[kStartedAt] = t
    state.responses.push(h1res)
    this.inflightCount++
    h1res.on('close', onResponseClose)
    if (this.host.isDraining) {
      // the marker goes on the last dispatched response and moves with pipelining (D2)
      if (prev !== null && !prev.headersSent) setCloseMarker(prev, false)
      setCloseMarker(h1res, true)
    }
    return true
  }

  /** A request that started before quiesce attached to its server (Express/Koa's first request). */
  adoptRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#track(req, res)
  }

  /** The response closed (finished, or its client left). `this` is the response: no closure per request. */
  responseClosed(res: ServerResponse, socket: H1Socket, state: SocketState): void {
    const responses = state.responses
    // responses close in order; one whose client left may close out of turn; one finalised at
    // its socket's close (pipelined, see socketClosed) closes no more
    if (responses[0] === res) responses.shift()
    else {
      const i = responses.indexOf(res)
      if (i === -1) return
      responses.splice(i, 1)
    }
    this.inflightCount--
    state.pending--
    if (state.lastRes === res) state.lastRes = null
    const draining = this.host.isDraining
    const t = now()
    state.respondedAt = t
    state.quietSince = t
    state.bytesMark = socket.bytesRead
    if (!res.writableFinished) {
      // the client left (its FIN or RST), or quiesce cut it at the deadline; else the server
      // itself destroyed the response (a handler's res.destroy(), a server timeout)
      const clientLeft = socket.readableEnded || socket.errored != null
      if (clientLeft || state.forced) {
        abortRequestSignal(res.req, clientClosed)
        if (draining) this.host.count('aborted')
      } else {
        abortRequestSignal(res.req, responseDestroyed)
      }
      return
    }
    if (draining) this.host.count('completed')
    if (state.pending === 0 && !socket.destroyed) {
      // our marker said `Connection: close` (drain, 503): close now, gracefully (D2)
      if (hasCloseMarker(res)) this.closeGracefully(socket, state)
      else if (this.listenerClosedAt !== 0) this.#scheduleSweep(t + idleGraceOf(state, this.host.options.idleGrace))
    }
  }

  /**
   * The socket closed: responses still queued behind the first (HTTP/1.1 pipelining) never emit
   * 'close' of their own, so they end here — signal aborted, no longer counted (D10, D21).
   */
  socketClosed(socket: H1Socket, state: SocketState): void {
    this.sockets.delete(socket)
    if (state.responses.length === 0) return
    for (const res of [...state.responses]) this.responseClosed(res, socket, state)
  }

  static refused(res: object): boolean {
    return (res as MaybeRefused)[kRefused] === true
  }

  /** FIN, then keep reading (and refusing) for a bounded linger: the client reads the whole response before any RST (D2). */
  closeGracefully(socket: H1Socket, state: SocketState): void {
    if (state.lingerUntil !== 0 || socket.destroyed) return
    state.lingerUntil = now() + this.host.options.linger
    socket.end()
    this.#scheduleSweep(state.lingerUntil)
  }

  // ── dispatch (see dispatchingEmit) ───────────────────────────────────────

  /** One request event from Node: tracked, gated on bare Node, then handed to the app's listeners. */
  dispatch(event: string | symbol, req: AnyRequest, res: AnyResponse): boolean {
    const server = this.server as Dispatching
    const base = baseEmit(server)
    if (!this.#track(req, res) || !this.#gate) return base.call(server, event, req, res)
    if (Tracker.refused(res)) return true
    const verdict = this.host.admit(req, res)
    if (verdict === true) return this.#emit(base, event, req, res)
    if (verdict !== false) {
      verdict.then(
        (ok) => { if (ok) this.#emit(baseEmit(server), event, req, res) },
        (err: unknown) => this.host.handlerFailed(err, req, res),
      )
    }
    return true
  }

  /** A listener that throws answers its request 500 (D11); a rejected promise comes back through onListenerRejection. */
  #emit(base: Emit, event: string | symbol, req: AnyRequest, res: AnyResponse): boolean {
    try {
      return base.call(this.server, event, req, res)
    } catch (err) {
      this.host.handlerFailed(err, req, res)
      return true
    }
  }

  // ── HTTP/2 ───────────────────────────────────────────────────────────────

  #onSession = (session: TrackedSession): void => {
    const t = now()
    session[kSessionState] = { streams: 0, phase: 0, openedAt: t, quietSince: t, pingDeadline: 0, acked: false }
    this.sessions.add(session)
    session.once('close', () => {
      this.sessions.delete(session)
    })
    // A session opened during the drain belongs to a client that knows nothing yet and sends its
    // first requests right behind its preface. A GOAWAY written before they arrive would make
    // nghttp2 ignore them all (measured: 10 of 10 first requests refused during the announce
    // phase), so its first GOAWAY waits for its first stream (#onStream), or, once the listener
    // has closed, for D5's headerGrace (#sweep).
    if (this.host.isDraining && this.listenerClosedAt !== 0) this.#scheduleSweep(t + this.host.options.headerGrace)
  }

  #onStream = (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const session = stream.session as TrackedSession | undefined
    const state = session?.[kSessionState]
    if (state !== undefined) {
      state.streams++
      // a session opened during the drain: its first requests arrived, now it is told (see #onSession)
      if (state.phase === 0 && this.host.isDraining) this.#goawayFirst(session as TrackedSession)
    }
    this.streams.set(stream, { at: now(), method: String(headers[':method'] ?? '?'), path: String(headers[':path'] ?? '?') })
    stream.once('close', () => {
      this.streams.delete(stream)
      if (state !== undefined) {
        state.streams--
        state.quietSince = now()
        // no stream left: nghttp2 stops reading after a GOAWAY, so no PING ACK can arrive any more
        if (state.streams === 0 && state.phase === 1) this.#scheduleSweep(now())
      }
      if (streamCutShort(stream)) {
        abortRequestSignal(stream, clientClosed)
        if (this.host.isDraining) this.host.count('aborted')
      } else if (this.host.isDraining) {
        this.host.count('completed')
      }
    })
  }

  /**
   * RFC 9113 §6.8 step one: GOAWAY with the highest stream id, then a PING to time the round trip (D12).
   * Streams already received (the rest of the batch being read when the drain started included)
   * are served. Node offers no "shutdown notice": once any GOAWAY is written, nghttp2 ignores new
   * streams whatever the id, so a stream that crosses this frame on the wire is not processed;
   * the final GOAWAY then tells its client so (REFUSED_STREAM, safe to retry, RFC 9113 §8.7).
   */
  #goawayFirst(session: TrackedSession): void {
    const state = session[kSessionState]
    if (state === undefined || state.phase !== 0 || session.closed || session.destroyed) return
    state.phase = 1
    state.pingDeadline = now() + this.host.options.goawayTimeout
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, GOAWAY_ALL)
      const sent = session.ping((err) => {
        state.acked = true
        if (!err) this.#goawayFinal(session)
      })
      if (!sent) state.acked = true
    } catch {
      state.acked = true
    }
    // With no stream open, nghttp2 reads nothing more once a GOAWAY is out (it "wants" no read),
    // so the ACK would never be seen: the final GOAWAY goes right after the batch being read now.
    this.#scheduleSweep(state.streams === 0 ? now() : state.pingDeadline)
  }

  /**
   * Step two, once the PING came back (or the wait ran out): GOAWAY with the last stream processed,
   * then the session closes when its open streams have finished. It does not wait for the listener
   * to close (D4's announce phase): nghttp2 takes no new stream after step one anyway, and a
   * client whose stream crossed step one learns only from this frame that it may retry.
   */
  #goawayFinal(session: TrackedSession): void {
    const state = session[kSessionState]
    if (state === undefined || state.phase !== 1) return
    if (!state.acked && state.streams > 0 && now() < state.pingDeadline) return
    state.phase = 2
    if (!session.closed && !session.destroyed) session.close()
  }

  // ── the drain ────────────────────────────────────────────────────────────

  /** Draining starts (D4 announce): close markers on in-flight HTTP/1 responses, first GOAWAY on sessions. */
  startDrain(): void {
    // other code may close the server meanwhile (a framework's close, NestJS, socket.io's
    // io.close()): Node's immediate idle close would race clients reusing a socket (D1, D20)
    this.holdNodeIdleClose()
    for (const socket of this.sockets) {
      const state = socket[kSocketState]
      const res = state?.lastRes
      if (res != null && !res.headersSent) setCloseMarker(res, true)
    }
    this.#drainStartedAt = now()
    for (const session of this.sessions) {
      // An idle session is told once quiet for idleGrace, like an idle keep-alive socket (D1): a
      // stream its client is sending right now would cross the GOAWAY and never be processed.
      const state = session[kSessionState]
      if (state !== undefined && state.streams === 0) this.#scheduleSweep(this.#drainStartedAt + this.host.options.idleGrace)
      else this.#goawayFirst(session)
    }
  }

  /**
   * The listener closes (D4: at drain start, or after the announce phase). Idle sockets close once
   * quiet for `idleGrace` (D1), new and mid-header ones get `headerGrace` (D5), upgraded ones are
   * told to leave (D12). With `external`, the framework closes the server itself (Fastify): only
   * the listening handle is closed here, none of the framework's own close steps.
   */
  closeListener(external = false): void {
    if (this.listenerClosedAt !== 0) return
    this.listenerClosedAt = now()
    if (this.server.listening) {
      // A framework that closes its server itself (Fastify's close(), a few ticks later) still
      // finds it closing; the listening handle closes now, so that new connections are refused
      // from this moment on, on every listener alike (D4, D16).
      if (external) closeListenerOnly(this.server)
      else closeListener(this.server, this.kind)
    }
    this.#scheduleSweep(now())
  }

  /**
   * While a framework closes the listener itself (Fastify calls `server.close()`, which calls
   * `closeIdleConnections()`), Node's immediate idle close is replaced by the idle grace (D1)
   * until the drain ends.
   */
  holdNodeIdleClose(): void {
    if (this.#nodeIdleCloseHeld || (this.kind !== 'http' && this.kind !== 'https')) return
    this.#nodeIdleCloseHeld = true
    // a user's own wrapper (an own property) is put back afterwards, not deleted
    this.#ownIdleClose = Object.getOwnPropertyDescriptor(this.server, 'closeIdleConnections')
    ;(this.server as unknown as { closeIdleConnections: () => void }).closeIdleConnections = this.#idleCloseDuringDrain
  }

  releaseNodeIdleClose(): void {
    if (!this.#nodeIdleCloseHeld) return
    this.#nodeIdleCloseHeld = false
    if (this.#ownIdleClose !== undefined) Object.defineProperty(this.server, 'closeIdleConnections', this.#ownIdleClose)
    else delete (this.server as unknown as { closeIdleConnections?: unknown }).closeIdleConnections
    this.#ownIdleClose = undefined
  }

  #idleCloseDuringDrain = (): void => {
    this.#scheduleSweep(now())
  }

  #scheduleSweep(at: number): void {
    if (this.closed || at >= this.#nextSweepAt) return
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer)
    this.#nextSweepAt = at
    this.#sweepTimer = setTimeout(this.#sweepAfterPoll, Math.max(0, Math.ceil(at - now())))
    this.#sweepTimer.unref()
  }

  /**
   * Timers run before the poll phase reads the sockets. After a stalled event loop (GC, a busy
   * handler, a loaded machine) a next request that arrived during the stall is still unread in
   * the kernel, and its socket would look idle and be closed under it (D1: "no byte of a next
   * request has arrived"). So the sweep runs in the check phase, after a poll has read it.
   */
  #sweepAfterPoll = (): void => {
    setImmediate(this.#sweep, now(), false)
  }

  #clearSweep(): void {
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer)
    this.#sweepTimer = null
    this.#nextSweepAt = Infinity
  }

  /** One walk over the tracked sockets: whatever is due is closed, the next due time is scheduled. O(N). */
  #sweep = (queuedAt: number, deferred: boolean): void => {
    if (this.#detached) return
    const t = now()
    // a stall earlier in this check phase (200 ms of user work in another setImmediate) leaves a
    // next request that arrived meanwhile unread: one more poll phase reads it first (D1)
    if (!deferred && t - queuedAt > LATE_SWEEP) {
      setImmediate(this.#sweep, t, true)
      return
    }
    this.#sweepTimer = null
    this.#nextSweepAt = Infinity
    const o = this.host.options
    let next = Infinity
    const closing = this.listenerClosedAt !== 0
    // some socket of ours is inside its idle grace or linger: Node's idle close would cut it
    let idleNotYetQuiet = false
    for (const socket of this.sockets) {
      if (socket.destroyed) {
        this.sockets.delete(socket)
        continue
      }
      const state = socket[kSocketState] as SocketState
      if (state.lingerUntil !== 0) {
        if (t >= state.lingerUntil) socket.destroy()
        else {
          next = Math.min(next, state.lingerUntil)
          idleNotYetQuiet = true
        }
        continue
      }
      if (!closing) continue
      if (isUpgraded(socket)) {
        this.#notifyUpgraded(socket, state)
        continue
      }
      if (state.pending > 0) continue
      if (state.requests === 0 || socket.bytesRead !== state.bytesMark) {
        // D5: no complete request yet (new, or mid-headers): a short bounded grace
        const until = Math.max(this.listenerClosedAt, state.quietSince) + o.headerGrace
        if (t >= until) this.closeGracefully(socket, state)
        else next = Math.min(next, until)
      } else {
        // D1: idle keep-alive socket, closed once quiet for idleGrace — quiet as observed while
        // draining: after a stall (GC, a busy loop, a loaded machine) every socket looks long
        // quiet, just as its client wakes up and reuses it
        const until = Math.max(this.listenerClosedAt, state.quietSince) + idleGraceOf(state, o.idleGrace)
        if (t >= until) {
          // nothing unanswered, nothing unread: destroy() sends a plain FIN (an RST only for
          // bytes that arrive after it, a request that was never read and is safe to retry),
          // at a third of the CPU of FIN + linger for 10,000 sockets
          this.host.count('idleClosed')
          socket.destroy()
        } else {
          idleNotYetQuiet = true
          next = Math.min(next, until)
        }
      }
      if (state.lingerUntil !== 0) next = Math.min(next, state.lingerUntil)
    }
    // HTTP/2 (D12): the final GOAWAY when the PING wait ran out, also during the announce phase;
    // a session opened after the listener closed gets its first GOAWAY after headerGrace (D5)
    for (const session of this.sessions) {
      const state = session[kSessionState]
      if (state === undefined) continue
      if (state.phase === 1) {
        if (state.acked || state.streams === 0 || t >= state.pingDeadline) this.#goawayFinal(session)
        else next = Math.min(next, state.pingDeadline)
      } else if (state.phase === 0 && this.host.isDraining && state.openedAt < this.#drainStartedAt) {
        // idle when the drain started (see startDrain); a stream meanwhile was served and told (#onStream).
        // Quiet as observed while draining, as for HTTP/1 sockets below.
        const until = Math.max(this.#drainStartedAt, state.quietSince) + o.idleGrace
        if (t >= until) this.#goawayFirst(session)
        else next = Math.min(next, until)
      } else if (state.phase === 0 && closing && this.host.isDraining) {
        const until = Math.max(this.listenerClosedAt, state.openedAt) + o.headerGrace
        if (t >= until) this.#goawayFirst(session)
        else next = Math.min(next, until)
      }
    }
    if (closing) {
      for (const raw of this.handshakes) {
        const until = this.listenerClosedAt + o.headerGrace
        if (t >= until) raw.destroy()
        else next = Math.min(next, until)
      }
      // sockets accepted before attach: Node's own idle close, once none of ours is inside its grace
      if (this.untracked && (this.kind === 'http' || this.kind === 'https')) {
        if (!idleNotYetQuiet && t >= this.listenerClosedAt + o.idleGrace) {
          ;(http.Server.prototype.closeIdleConnections as () => void).call(this.server)
        }
        next = Math.min(next, t + Math.max(o.idleGrace, 25))
      }
    }
    if (next !== Infinity) this.#scheduleSweep(next)
  }

  #notifyUpgraded(socket: H1Socket, state: SocketState): void {
    if (state.upgradeNotified) return
    state.upgradeNotified = true
    const hook = this.host.options.closeUpgraded
    if (hook === null || hook === undefined) return
    try {
      const result = hook(socket as Duplex) as { then?: unknown } | undefined
      if (result && typeof result.then === 'function') {
        ;(result as Promise<unknown>).then(undefined, (err: unknown) => this.host.callbackFailed('closeUpgraded', err))
      }
    } catch (err) {
      this.host.callbackFailed('closeUpgraded', err)
    }
  }

  /** D6 step one: every request still running has its signal aborted with the deadline reason. */
  abortInFlight(reason: () => Error): void {
    for (const socket of this.sockets) {
      for (const res of (socket[kSocketState] as SocketState).responses) abortRequestSignal(res.req, reason)
    }
    for (const stream of this.streams.keys()) abortRequestSignal(stream, reason)
  }

  /** D6 step two: destroy what is left, naming each forced request, socket and session. */
  destroyAll(): void {
    const t = now()
    for (const res of this.#responsesInFlight()) {
      const startedAt = (res as StartedResponse)[kStartedAt] ?? t
      if (res.writableFinished) continue
      const req = res.req
      this.host.forced({ kind: 'request', method: req.method ?? '?', url: req.url ?? '?', ageMs: Math.round(t - startedAt), protocol: 'http/1.1' })
    }
    for (const [stream, info] of this.streams) {
      if (stream.writableFinished) continue
      this.host.forced({ kind: 'request', method: info.method, url: info.path, ageMs: Math.round(t - info.at), protocol: 'h2' })
    }
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      const state = socket[kSocketState] as SocketState
      state.forced = true
      if (isUpgraded(socket)) {
        this.host.forced({ kind: 'socket', type: 'upgraded', remote: remoteOf(socket) })
      } else if (state.pending > 0) {
        this.host.forced({ kind: 'socket', type: 'http1', remote: remoteOf(socket) })
      } else if (state.lingerUntil === 0 && (state.requests === 0 || socket.bytesRead !== state.bytesMark)) {
        this.host.forced({ kind: 'socket', type: 'new', remote: remoteOf(socket) })
      }
      socket.destroy()
    }
    for (const raw of this.handshakes) {
      this.host.forced({ kind: 'socket', type: 'tls-handshake', remote: remoteOf(raw) })
      raw.destroy()
    }
    this.handshakes.clear()
    for (const session of this.sessions) {
      const state = session[kSessionState]
      if ((state?.streams ?? 0) > 0) this.host.forced({ kind: 'session', remote: remoteOf(session.socket ?? {}), streams: state?.streams ?? 0 })
      session.destroy()
    }
    if (this.kind === 'http' || this.kind === 'https') {
      // sockets accepted before attach, if any
      ;(http.Server.prototype.closeAllConnections as () => void).call(this.server)
    }
  }

  #responsesInFlight(): ServerResponse[] {
    const all: ServerResponse[] = []
    for (const socket of this.sockets) all.push(...(socket[kSocketState] as SocketState).responses)
    return all
  }

  // ── numbers ──────────────────────────────────────────────────────────────

  countConnections(): { connections: number; idle: number; upgraded: number } {
    let idle = 0
    let upgraded = 0
    let open = 0
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      open++
      const state = socket[kSocketState] as SocketState
      if (isUpgraded(socket)) upgraded++
      else if (state.pending === 0 && state.requests > 0 && state.lingerUntil === 0 && socket.bytesRead === state.bytesMark) idle++
    }
    // a destroyed session emits 'close' a tick after the server's own 'close': not open any more
    for (const session of this.sessions) if (session.destroyed) this.sessions.delete(session)
    return { connections: open + this.handshakes.size + this.sessions.size, idle, upgraded }
  }
}

interface StreamInfo {
  readonly at: number
  readonly method: string
  readonly path: string
}

/** Shared 'close' listener of every tracked socket: `this` is the socket. */
function onSocketClose(this: H1Socket): void {
  const state = this[kSocketState]
  state?.tracker.socketClosed(this, state)
}

const clientClosed = (): Error => new ClientClosedError()
const responseDestroyed = (): Error => new ResponseDestroyedError()

/** Shared 'close' listener of every tracked HTTP/1 response: `this` is the response. */
function onResponseClose(this: ServerResponse): void {
  const socket = this.req.socket as H1Socket | null
  const state = socket?.[kSocketState]
  if (socket == null || state === undefined) return
  state.tracker.responseClosed(this, socket, state)
}
