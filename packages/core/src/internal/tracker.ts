import http from 'node:http'
import http2 from 'node:http2'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse, Http2Session, ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ClientClosedError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { AnyServer, ForcedItem } from '../types.js'
import { closeListener, closeListenerOnly, remoteOf, serverKind, type ServerKind } from './servers.js'
import { abortRequestSignal, streamCutShort } from './signal.js'

/** Per-socket bookkeeping lives on the socket under these keys: no WeakMap lookups on the request path. */
export const kSocketState = Symbol.for('quiesce.socket')
export const kSessionState = Symbol.for('quiesce.session')
/** Marks a response whose request must not reach its handler (it arrived after the close was announced). */
const kRefused = Symbol.for('quiesce.refused')

const now = (): number => performance.now()
const GOAWAY_ALL = 2 ** 31 - 1
/** A reuse within this many ms of the previous answer marks a busy client (D1); longer is think time. */
const REUSE_WINDOW = 150

/**
 * D1's quiet time for one socket: `idleGrace`, or, for a busy client (one that reused this socket
 * within 150 ms of its previous answer), three times the gap it took then (so at most 450 ms).
 * Behind a loaded proxy or on a loaded machine a busy client can take longer than `idleGrace` to
 * send its next request; it must not be taken for idle at that moment.
 */
function idleGraceOf(state: { reuseGap: number }, idleGrace: number): number {
  return Math.max(idleGrace, 3 * state.reuseGap)
}

/**
 * The close marker. Node's own switch for `maxRequestsPerSocket` (public field since 16.10):
 * it writes `Connection: close` on this response WITHOUT Node closing the socket afterwards, so
 * quiesce closes it itself, gracefully (FIN + linger, D2), once every dispatched request on it
 * was answered. `shouldKeepAlive = false` would make Node destroy the socket right after. Same on
 * Node 20, 22, 24 and 26; the conformance suite pins the bytes on each.
 */
type Markable = { maxRequestsOnConnectionReached?: boolean; headersSent: boolean; [kOwnMarker]?: boolean }
/**
 * Node sets the same field itself on the last response `maxRequestsPerSocket` allows, and then
 * keeps the socket open to answer further requests 503: that socket is not quiesce's to close.
 */
const kOwnMarker = Symbol.for('quiesce.close-marker')
export function setCloseMarker(res: object, on: boolean): void {
  ;(res as Markable).maxRequestsOnConnectionReached = on
  ;(res as Markable)[kOwnMarker] = on
}
export function hasCloseMarker(res: object): boolean {
  return (res as Markable)[kOwnMarker] === true && (res as Markable).maxRequestsOnConnectionReached === true
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

type H1Socket = Socket & { [kSocketState]?: SocketState; parser?: unknown }
type TrackedSession = Http2Session & { [kSessionState]?: SessionState }
type MaybeRefused = { [kRefused]?: true }
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
}

export interface TrackerOptions {
  /** Own the server's 'request' listeners, so the gate runs before them (bare Node). */
  gate: boolean
}

type RequestListener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => unknown

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
  /** TLS servers: raw sockets whose handshake has not completed, by remote address. */
  readonly handshakes = new Map<string, Socket>()
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
  #handlers: RequestListener[] = []
  #sweepTimer: NodeJS.Timeout | null = null
  #nextSweepAt = Infinity
  #closedWaiters: Array<() => void> = []
  #nodeIdleCloseHeld = false
  #ownIdleClose: PropertyDescriptor | undefined
  #detached = false
  /** When this tracker's drain started (0: not draining). */
  #drainStartedAt = 0

  constructor(server: AnyServer, host: TrackerHost, options: TrackerOptions) {
    this.server = server
    this.kind = serverKind(server) as ServerKind
    this.host = host
    this.#gate = options.gate
    this.closed = !server.listening

    const s = server as http.Server
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
    if ((this.kind === 'h2' || this.kind === 'h2c') && s.listenerCount('request') === 0) {
      // HTTP/2 through the stream API: a 'request' listener would switch on Node's compatibility
      // layer (a second handler for every stream), so none is added; streams are tracked through
      // 'stream', and pause()/duringDrain: 'reject' cannot stop them (the README says so)
      this.#gate = false
    } else if (this.#gate) {
      for (const handler of s.listeners('request') as RequestListener[]) {
        s.removeListener('request', handler)
        this.#handlers.push(handler)
      }
      s.on('request', this.#dispatch)
      s.on('newListener', this.#onNewListener)
    } else if (this.kind === 'http' || this.kind === 'https' || s.listenerCount('request') > 0) {
      s.prependListener('request', this.#track)
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
    const s = this.server as http.Server
    s.removeListener('listening', this.#onListening)
    s.removeListener('close', this.#onClose)
    s.removeListener('connection', this.#onConnection)
    s.removeListener('connection', this.#onRawConnection)
    s.removeListener('secureConnection', this.#onSecureConnection)
    s.removeListener('session', this.#onSession)
    s.removeListener('stream', this.#onStream)
    s.removeListener('request', this.#track)
    if (this.#gate) {
      s.removeListener('newListener', this.#onNewListener)
      s.removeListener('request', this.#dispatch)
      for (const handler of this.#handlers) s.on('request', handler)
      this.#handlers = []
    }
    this.releaseNodeIdleClose()
    this.#clearSweep()
  }

  // ── connections ──────────────────────────────────────────────────────────

  #onListening = (): void => {
    this.closed = false
    this.listenerClosedAt = 0
  }

  #onClose = (): void => {
    this.closed = true
    this.#clearSweep()
    const waiters = this.#closedWaiters
    this.#closedWaiters = []
    for (const w of waiters) w()
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
    }
    socket[kSocketState] = state
    this.sockets.add(socket)
    socket.on('close', onSocketClose)
    // a connection accepted while the listener is closing (D4 announce over) still gets D5's grace
    if (this.listenerClosedAt !== 0) this.#scheduleSweep(t + this.host.options.headerGrace)
    return state
  }

  #onRawConnection = (raw: Socket): void => {
    const key = remoteOf(raw)
    this.handshakes.set(key, raw)
    raw.once('close', () => {
      if (this.handshakes.get(key) === raw) this.handshakes.delete(key)
    })
    if (this.listenerClosedAt !== 0) this.#scheduleSweep(now() + this.host.options.headerGrace)
  }

  #onSecureConnection = (tlsSocket: Socket & { alpnProtocol?: string | false }): void => {
    this.handshakes.delete(remoteOf(tlsSocket))
    if (this.kind === 'h2' && tlsSocket.alpnProtocol === 'h2') return // an HTTP/2 session: tracked by 'session'
    this.#adopt(tlsSocket as H1Socket)
  }

  // ── HTTP/1 requests ──────────────────────────────────────────────────────

  /** Runs before any handler (prepended, or inside the gate): counting and the close marker. */
  #track = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    if (req.httpVersionMajor === 2) return // HTTP/2: counted per stream
    const socket = req.socket as H1Socket
    const state = socket[kSocketState] ?? this.#adopt(socket)
    const h1res = res as ServerResponse
    const prev = state.lastRes
    // A request that arrives after our FIN can never be answered on this socket: its handler
    // must not run (D2). Until the FIN, every dispatched request is served and answered, even
    // one behind a response whose header already said `Connection: close` (a synchronous
    // handler bakes its header before Node parses the next pipelined request): the socket
    // closes only after the last one.
    if (state.lingerUntil !== 0) {
      ;(h1res as MaybeRefused)[kRefused] = true
      return
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
  }

  /** A request that started before quiesce attached to its server (Express/Koa's first request). */
  adoptRequest(req: IncomingMessage, res: ServerResponse): void {
    const state = (req.socket as H1Socket)[kSocketState]
    if (state === undefined || !state.responses.includes(res)) this.#track(req, res)
  }

  /** The response closed (finished, or its client left). `this` is the response: no closure per request. */
  responseClosed(res: ServerResponse, socket: H1Socket, state: SocketState): void {
    const responses = state.responses
    // responses close in order; one whose client left may close out of turn
    if (responses[0] === res) responses.shift()
    else {
      const i = responses.indexOf(res)
      if (i !== -1) responses.splice(i, 1)
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
      abortRequestSignal(res.req, clientClosed)
      if (draining) this.host.count('aborted')
      return
    }
    if (draining) this.host.count('completed')
    if (state.pending === 0 && !socket.destroyed) {
      // our marker said `Connection: close` (drain, 503): close now, gracefully (D2)
      if (hasCloseMarker(res)) this.closeGracefully(socket, state)
      else if (this.listenerClosedAt !== 0) this.#scheduleSweep(t + idleGraceOf(state, this.host.options.idleGrace))
    }
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

  // ── the gate (bare Node) ─────────────────────────────────────────────────

  #dispatch = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    this.#track(req, res)
    if (Tracker.refused(res)) return
    const verdict = this.host.admit(req, res)
    if (verdict === true) this.#run(req, res)
    else if (verdict !== false) verdict.then((ok) => { if (ok) this.#run(req, res) }, (err: unknown) => this.host.handlerFailed(err, req, res))
  }

  #run(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const handlers = this.#handlers
    if (handlers.length === 1) {
      // the common case: one handler (http.createServer(handler)), no loop
      try {
        const result = (handlers[0] as RequestListener).call(this.server, req, res) as { then?: unknown } | undefined
        if (result !== undefined && result !== null && typeof result.then === 'function') {
          ;(result as Promise<unknown>).then(undefined, (err: unknown) => this.host.handlerFailed(err, req, res))
        }
      } catch (err) {
        this.host.handlerFailed(err, req, res)
      }
      return
    }
    for (let i = 0; i < handlers.length; i++) {
      try {
        const result = (handlers[i] as RequestListener).call(this.server, req, res) as { then?: unknown } | undefined
        if (result !== undefined && result !== null && typeof result.then === 'function') {
          ;(result as Promise<unknown>).then(undefined, (err: unknown) => this.host.handlerFailed(err, req, res))
        }
      } catch (err) {
        this.host.handlerFailed(err, req, res)
      }
    }
  }

  /** A 'request' listener added after attach goes behind the gate too (moved before any request can reach it). */
  #onNewListener = (event: string | symbol, listener: RequestListener): void => {
    if (event !== 'request' || listener === this.#dispatch) return
    queueMicrotask(() => {
      const s = this.server as http.Server
      if (this.#detached || !s.listeners('request').includes(listener)) return
      s.removeListener('request', listener)
      this.#handlers.push(listener)
    })
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
    if (this.#nodeIdleCloseHeld || this.kind === 'h2c') return
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
    setImmediate(this.#sweep)
  }

  #clearSweep(): void {
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer)
    this.#sweepTimer = null
    this.#nextSweepAt = Infinity
  }

  /** One walk over the tracked sockets: whatever is due is closed, the next due time is scheduled. O(N). */
  #sweep = (): void => {
    this.#sweepTimer = null
    this.#nextSweepAt = Infinity
    const o = this.host.options
    const t = now()
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
      if (socket.parser === null) {
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
      for (const raw of this.handshakes.values()) {
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
      if (socket.parser === null) {
        this.host.forced({ kind: 'socket', type: 'upgraded', remote: remoteOf(socket) })
      } else if (state.pending > 0) {
        this.host.forced({ kind: 'socket', type: 'http1', remote: remoteOf(socket) })
      } else if (state.lingerUntil === 0 && (state.requests === 0 || socket.bytesRead !== state.bytesMark)) {
        this.host.forced({ kind: 'socket', type: 'new', remote: remoteOf(socket) })
      }
      socket.destroy()
    }
    for (const raw of this.handshakes.values()) {
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
      if (socket.parser === null) upgraded++
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
  this[kSocketState]?.tracker.sockets.delete(this)
}

const clientClosed = (): Error => new ClientClosedError()

/** Shared 'close' listener of every tracked HTTP/1 response: `this` is the response. */
function onResponseClose(this: ServerResponse): void {
  const socket = this.req.socket as H1Socket | null
  const state = socket?.[kSocketState]
  if (socket == null || state === undefined) return
  state.tracker.responseClosed(this, socket, state)
}
