import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import { retryAfterHeader } from './answers.js'
import { ClientClosedError, ResponseDestroyedError } from '../errors.js'
import { guardDrainingHeaders, hasCloseMarker, isUpgraded, setCloseMarker } from './node.js'
import { remoteOf } from './servers.js'
import { abortRequestSignal } from './signal.js'
import { idleAt, now, type DrainSite } from './site.js'

/** Per-socket bookkeeping lives on the socket under this key: no WeakMap lookups on the request path. */
const kSocketState = Symbol.for('quiesce.socket')
/**
 * A tracked response carries one own property: when its request started (for the report's age of
 * a forced request, D6), or REFUSED for one whose request must not reach its handler (it arrived
 * after the close was announced). One own property, always present once tracked: a framework that
 * swaps the response's prototype (Express) makes every missing-property lookup walk the chain.
 */
const kTracked = Symbol.for('quiesce.tracked')
const REFUSED = -1
/** A reuse within this many ms of the previous answer marks a busy client (D1); longer is think time (on a server that does not lag). */
const REUSE_WINDOW = 150
/** Reuse gaps are kept up to this (small integers); longer ones are think time whatever the lag. */
const MAX_GAP = 10_000
/** `bytesMark` of a socket none of whose responses has closed yet (no complete request seen). */
const NO_MARK = -1

/** The clock of the request path: whole ms, rounded up (a later quiet start only ever closes later), kept as small integers. */
const clock = (): number => (performance.now() | 0) + 1

/**
 * One socket's state: plain small integers and references, no array until a second request is in
 * flight (pipelining), no per-request allocation.
 */
class SocketState {
  readonly sockets: Http1Sockets
  /** Requests dispatched on this socket whose response has not closed yet. */
  pending = 0
  /** The newest dispatched response: the one that carries the `Connection: close` marker (D2). */
  lastRes: ServerResponse | null = null
  /** The oldest response in flight on this socket. */
  first: ServerResponse | null = null
  /** Responses in flight behind `first` (HTTP/1.1 pipelining), oldest first; created when needed. */
  queued: ServerResponse[] | null = null
  /** When the socket last saw a response end (or was accepted): its quiet time starts there (whole ms). */
  quietSince: number
  /** `socket.bytesRead` when the last response ended: more means a next request has begun (D1); NO_MARK before any. */
  bytesMark = NO_MARK
  /**
   * 1 + how long the client takes to send a next request after an answer (whole ms, at most MAX_GAP): the
   * longest it took, halving its excess over each newer one; 0 before any reuse.
   */
  reuseGap = 0
  /** Set once our FIN is sent: the end of the bounded linger (D2). 0 = not closing. */
  lingerUntil = 0
  /** `closeUpgraded` was called for this socket. */
  upgradeNotified = false
  /** quiesce destroyed it at the deadline: its unfinished requests were cut, not left by their client. */
  forced = false

  constructor(sockets: Http1Sockets, t: number) {
    this.sockets = sockets
    this.quietSince = t
  }

  /** The responses in flight, oldest first (a copy). */
  responses(): ServerResponse[] {
    if (this.first === null) return []
    return this.queued === null ? [this.first] : [this.first, ...this.queued]
  }
}

export type { SocketState }

type H1Socket = Socket & { [kSocketState]?: SocketState }
type TrackedResponse = ServerResponse & { [kTracked]?: number }

/**
 * D1's quiet time for one socket: `idleGrace`, or, for a busy client (one that reuses this socket
 * within 150 ms of an answer), three times the gap it takes (its recent peak: so at most 450 ms).
 * Behind a loaded proxy or on a loaded machine a busy client can take longer than `idleGrace` to
 * send its next request; it must not be taken for idle at that moment. When the server itself is
 * slow (`lag`: how late its own event loop runs during the drain), everything takes longer by as
 * much: the window that tells a busy client from think time widens by three times the lag, and
 * the quiet time grows by the lag (a socket never reused keeps `idleGrace`). On a loaded machine (`slowdown`: load average per core, above
 * 1) clients sharing its cores come back later by that factor: the window stretches by it.
 */
function graceOf(state: SocketState, idleGrace: number, lag: number, slowdown: number): number {
  if (state.reuseGap === 0) return idleGrace // never reused: an idle socket, whatever the server's lag
  const gap = state.reuseGap - 1
  return gap < REUSE_WINDOW * slowdown + 3 * lag ? Math.max(idleGrace, 3 * gap) + lag : idleGrace
}

/** A socket with no complete request yet: new, or a next request's first bytes have arrived (D5). */
function awaitingRequest(socket: Socket, state: SocketState): boolean {
  return state.bytesMark === NO_MARK || socket.bytesRead !== state.bytesMark
}

/** One server's HTTP/1 sockets (the TLS socket on https servers) and the requests on them (D1–D3, D5, D10). */
export class Http1Sockets {
  readonly sockets = new Set<H1Socket>()
  /** Requests in flight, across the sockets. */
  inflight = 0
  readonly #site: DrainSite

  constructor(site: DrainSite) {
    this.#site = site
  }

  static refused(res: object): boolean {
    return (res as TrackedResponse)[kTracked] === REFUSED
  }

  adopt(socket: H1Socket): SocketState {
    const t = clock()
    const state = new SocketState(this, t)
    socket[kSocketState] = state
    this.sockets.add(socket)
    socket.on('close', onSocketClose)
    // a connection accepted while the listener is closing (D4 announce over) still gets D5's grace
    if (this.#site.listenerClosedAt !== 0) this.#site.scheduleSweep(t + this.#site.host.options.headerGrace)
    return state
  }

  /**
   * Runs before any handler: counting and the close marker. False when this response is tracked
   * already (an app's 'checkContinue' listener that emits 'request' for the same request).
   */
  track(req: IncomingMessage, res: ServerResponse): boolean {
    const tracked = res as TrackedResponse
    if (tracked[kTracked] !== undefined) return false
    const socket = req.socket as H1Socket
    const state = socket[kSocketState] ?? this.adopt(socket)
    // A request that arrives after our FIN can never be answered on this socket: its handler
    // must not run (D2). Until the FIN, every dispatched request is served and answered, even
    // one behind a response whose header already said `Connection: close`: the socket closes
    // only after the last one.
    if (state.lingerUntil !== 0) {
      tracked[kTracked] = REFUSED
      return true
    }
    const t = clock()
    tracked[kTracked] = t
    // a client that reuses its socket at once is a busy one: remember how fast it is, so
    // that a lagging one (a loaded proxy, a loaded machine) is not taken for idle (D1)
    if (state.pending === 0) {
      if (state.bytesMark !== NO_MARK) {
        // kept as measured (graceOf decides, with the server's lag, whether it was a busy client's);
        // a round trip that once took 140 ms under load can again: its peak fades over a few requests
        const gap = t - state.quietSince
        const g = (gap < MAX_GAP ? gap : MAX_GAP) + 1
        state.reuseGap = g >= state.reuseGap ? g : (state.reuseGap + g) >> 1
      }
      state.first = res
    } else (state.queued ??= []).push(res)
    const prev = state.lastRes
    state.pending++
    state.lastRes = res
    this.inflight++
    res.on('close', onResponseClose)
    if (this.#site.host.isDraining) {
      // the marker goes on the last dispatched response and moves with pipelining (D2)
      if (prev !== null && !prev.headersSent) setCloseMarker(prev, false)
      setCloseMarker(res, true)
      guardDrainingHeaders(res, retryAfterOf(this.#site))
    }
    return true
  }

  /** Draining starts: the close marker on each socket's last response, the drain's headers on every one in flight. */
  startDrain(): void {
    const retryAfter = retryAfterOf(this.#site)
    for (const socket of this.sockets) {
      const state = socket[kSocketState]
      if (state === undefined) continue
      const res = state.lastRes
      if (res !== null && !res.headersSent) setCloseMarker(res, true)
      if (state.first !== null) guardDrainingHeaders(state.first, retryAfter)
      if (state.queued !== null) for (const r of state.queued) guardDrainingHeaders(r, retryAfter)
    }
  }

  /** The response closed (finished, or its client left). */
  responseClosed(res: ServerResponse, socket: H1Socket, state: SocketState): void {
    // responses close in order; one whose client left may close out of turn; one finalised at
    // its socket's close (pipelined, see socketClosed) closes no more
    const queued = state.queued
    if (state.first === res) state.first = queued === null || queued.length === 0 ? null : (queued.shift() as ServerResponse)
    else {
      const i = queued === null ? -1 : queued.indexOf(res)
      if (i === -1) return
      ;(queued as ServerResponse[]).splice(i, 1)
    }
    this.inflight--
    state.pending--
    if (state.lastRes === res) state.lastRes = null
    const host = this.#site.host
    const t = clock()
    state.quietSince = t
    state.bytesMark = socket.bytesRead
    if (!res.writableFinished) {
      // the client left (its FIN or RST), or quiesce cut it at the deadline; else the server
      // itself destroyed the response (a handler's res.destroy(), a server timeout)
      if (socket.readableEnded || socket.errored != null || state.forced) {
        abortRequestSignal(res.req, clientClosed)
        if (host.isDraining) host.count('aborted')
      } else {
        abortRequestSignal(res.req, responseDestroyed)
      }
      return
    }
    if (host.isDraining) host.count('completed')
    if (state.pending === 0 && !socket.destroyed) {
      // our marker said `Connection: close` (drain, 503): close now, gracefully (D2)
      if (hasCloseMarker(res)) this.closeGracefully(socket, state)
      else if (this.#site.listenerClosedAt !== 0) this.#site.scheduleSweep(t + graceOf(state, host.options.idleGrace, this.#site.lag(), this.#site.slowdown()))
    }
  }

  /**
   * The socket closed: responses still queued behind the first (HTTP/1.1 pipelining) never emit
   * 'close' of their own, so they end here — signal aborted, no longer counted (D10, D21).
   */
  socketClosed(socket: H1Socket, state: SocketState): void {
    this.sockets.delete(socket)
    if (state.first === null) return
    for (const res of state.responses()) this.responseClosed(res, socket, state)
  }

  /** FIN, then keep reading (and refusing) for a bounded linger: the client reads the whole response before any RST (D2). */
  closeGracefully(socket: H1Socket, state: SocketState): void {
    if (state.lingerUntil !== 0 || socket.destroyed) return
    state.lingerUntil = clock() + this.#site.host.options.linger
    socket.end()
    this.#site.scheduleSweep(state.lingerUntil)
  }

  /**
   * The sweep's HTTP/1 rules, in one O(N) walk: lingers end (D2); once the listener closed,
   * upgraded sockets are told to leave (D12), sockets with no complete request get `headerGrace`
   * (D5), idle ones are closed once quiet for their grace (D1). Returns the next due time, and
   * whether some socket is still inside a grace or linger (Node's own idle close would cut it).
   */
  sweep(t: number): { next: number; busy: boolean } {
    const { host, listenerClosedAt } = this.#site
    const o = host.options
    const lag = this.#site.lag()
    const slowdown = listenerClosedAt === 0 ? 1 : this.#site.slowdown()
    let next = Infinity
    let busy = false
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
          busy = true
        }
        continue
      }
      if (listenerClosedAt === 0) continue
      if (isUpgraded(socket)) {
        notifyUpgraded(this.#site, socket, state)
        continue
      }
      if (state.pending > 0) continue
      const headers = awaitingRequest(socket, state)
      const until = idleAt(state.quietSince, listenerClosedAt, headers ? o.headerGrace : graceOf(state, o.idleGrace, lag, slowdown))
      if (t < until) {
        next = Math.min(next, until)
        busy ||= !headers
      } else if (headers) {
        this.closeGracefully(socket, state)
        next = Math.min(next, state.lingerUntil)
      } else {
        // nothing unanswered, nothing unread: destroy() sends a plain FIN (an RST only for bytes
        // that arrive after it, a request never read and safe to retry), at a third of the CPU
        // of FIN + linger for 10,000 sockets
        host.count('idleClosed')
        socket.destroy()
      }
    }
    return { next, busy }
  }

  /** D6, `abortGrace` before the deadline: every request still running has its signal aborted. */
  abortInFlight(reason: () => Error): void {
    for (const socket of this.sockets) {
      for (const res of (socket[kSocketState] as SocketState).responses()) abortRequestSignal(res.req, reason)
    }
  }

  /** D6, at the deadline: what is left is destroyed, each forced request and socket named. */
  destroyAll(): void {
    const host = this.#site.host
    const t = now()
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      const state = socket[kSocketState] as SocketState
      for (const res of state.responses() as TrackedResponse[]) {
        if (res.writableFinished) continue
        host.forced({
          kind: 'request',
          method: res.req.method ?? '?',
          url: res.req.url ?? '?',
          ageMs: Math.round(t - (res[kTracked] ?? t)),
          protocol: 'http/1.1',
        })
      }
    }
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      const state = socket[kSocketState] as SocketState
      state.forced = true
      if (isUpgraded(socket)) host.forced({ kind: 'socket', type: 'upgraded', remote: remoteOf(socket) })
      else if (state.pending > 0) host.forced({ kind: 'socket', type: 'http1', remote: remoteOf(socket) })
      // idle ones are closed, not forced (D1); ones still lingering were answered
      else if (state.lingerUntil === 0 && awaitingRequest(socket, state)) host.forced({ kind: 'socket', type: 'new', remote: remoteOf(socket) })
      socket.destroy()
      // Node emits the server's 'close' before the sockets' own: what was cut stops counting now (D6)
      this.socketClosed(socket, state)
    }
  }

  count(): { open: number; idle: number; upgraded: number } {
    let open = 0
    let idle = 0
    let upgraded = 0
    for (const socket of this.sockets) {
      if (socket.destroyed) continue
      open++
      const state = socket[kSocketState] as SocketState
      if (isUpgraded(socket)) upgraded++
      else if (state.pending === 0 && state.lingerUntil === 0 && !awaitingRequest(socket, state)) idle++
    }
    return { open, idle, upgraded }
  }
}

/** D12: an upgraded socket is told to leave once, through the user's `closeUpgraded` (guarded, reported). */
function notifyUpgraded(site: DrainSite, socket: H1Socket, state: SocketState): void {
  if (state.upgradeNotified) return
  state.upgradeNotified = true
  const hook = site.host.options.closeUpgraded
  if (hook === null || hook === undefined) return
  try {
    const result = hook(socket as Duplex) as { then?: unknown } | undefined
    if (result && typeof result.then === 'function') {
      ;(result as Promise<unknown>).then(undefined, (err: unknown) => site.host.callbackFailed('closeUpgraded', err))
    }
  } catch (err) {
    site.host.callbackFailed('closeUpgraded', err)
  }
}

const retryAfterOf = (site: DrainSite): string => retryAfterHeader(site.host.options.retryAfter)

const clientClosed = (): Error => new ClientClosedError()
const responseDestroyed = (): Error => new ResponseDestroyedError()

/** Shared 'close' listener of every tracked socket: `this` is the socket. */
function onSocketClose(this: H1Socket): void {
  const state = this[kSocketState]
  state?.sockets.socketClosed(this, state)
}

/** Shared 'close' listener of every tracked response: `this` is the response. No closure per request. */
function onResponseClose(this: ServerResponse): void {
  const socket = this.req.socket as H1Socket | null
  const state = socket?.[kSocketState]
  if (socket == null || state === undefined) return
  state.sockets.responseClosed(this, socket, state)
}
