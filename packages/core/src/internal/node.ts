import http from 'node:http'
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Every touch of a Node private shape lives here, each one pinned by `test/node-internals.test.ts`
 * on Node 20, 22, 24 and 26. Nothing else in quiesce reads or writes a private field.
 */

// ── the close marker (D2) ──────────────────────────────────────────────────

/**
 * Node's own switch for `maxRequestsPerSocket` (a public field since 16.10): it writes
 * `Connection: close` on this response WITHOUT Node closing the socket afterwards, so quiesce
 * closes it itself, gracefully (FIN + linger), once every dispatched request on it was answered.
 * `shouldKeepAlive = false` would make Node destroy the socket right after.
 */
type Markable = { maxRequestsOnConnectionReached?: boolean; [kOwnMarker]?: boolean }
/**
 * Node sets the same field itself on the last response `maxRequestsPerSocket` allows, and then
 * keeps the socket open to answer further requests 503: that socket is not quiesce's to close.
 */
const kOwnMarker = Symbol.for('quiesce.close-marker')
/** The response's own `writeHead` wrapper is installed (once per response, only while draining). */
const kHeaderGuard = Symbol.for('quiesce.header-guard')

type Guarded = ServerResponse & { [kHeaderGuard]?: string }

export function setCloseMarker(res: object, on: boolean): void {
  ;(res as Markable).maxRequestsOnConnectionReached = on
  ;(res as Markable)[kOwnMarker] = on
}

export function hasCloseMarker(res: object): boolean {
  // the public field first: an own property of every response, false unless marked, so the
  // symbol (missing on most responses: a walk up a framework's swapped prototypes) is read only when it is
  return (res as Markable).maxRequestsOnConnectionReached === true && (res as Markable)[kOwnMarker] === true
}

/**
 * While draining, the headers of an HTTP/1 response are quiesce's to settle (D2, D3, D21):
 * - a `Connection` header the app or its framework set is taken back: on the socket's last
 *   response the marker then writes `close` (an app's `keep-alive` must not tell the client to
 *   reuse a socket that is about to close); on one pipelined before it, Node's keep-alive stays,
 *   so that Node does not drop the requests queued behind it (a framework's blanket `close`);
 * - a 503 (the app's, or a framework's own while it closes) gets `Retry-After`.
 * Every way headers reach the wire (`writeHead(…, headers)`, `setHeader` then `end()`, which
 * calls `writeHead` itself) passes through `writeHead`, so one own wrapper per response, set
 * only on responses of a drain, does it in time.
 */
export function guardDrainingHeaders(res: ServerResponse, retryAfter: string): void {
  const guarded = res as Guarded
  if (guarded[kHeaderGuard] !== undefined || res.headersSent || typeof res.writeHead !== 'function') return
  guarded[kHeaderGuard] = retryAfter
  res.writeHead = writeHeadWhileDraining as ServerResponse['writeHead']
}

function writeHeadWhileDraining(this: Guarded, ...args: unknown[]): ServerResponse {
  const proto = Object.getPrototypeOf(this) as { writeHead: (...a: unknown[]) => ServerResponse }
  if (!this.headersSent) {
    if (this.hasHeader('connection')) {
      this.removeHeader('connection')
      // removeHeader('connection') also switches Node's own Connection header off for good
      ;(this as unknown as { _removedConnection: boolean })._removedConnection = false
    }
    const last = args.length - 1
    if (last >= 1 && typeof args[last] === 'object' && args[last] !== null) args[last] = withoutConnection(args[last] as OutgoingHttpHeaders | unknown[])
    const status = typeof args[0] === 'number' ? args[0] : this.statusCode
    if (status === 503 && !this.hasHeader('retry-after') && !hasHeaderIn(args[last], 'retry-after')) {
      this.setHeader('Retry-After', this[kHeaderGuard] as string)
    }
  }
  return proto.writeHead.apply(this, args)
}

function hasHeaderIn(headers: unknown, name: string): boolean {
  if (typeof headers !== 'object' || headers === null) return false
  if (Array.isArray(headers))
    return headers.some((h, i) => (Array.isArray(h) ? String(h[0]).toLowerCase() === name : i % 2 === 0 && String(h).toLowerCase() === name))
  return Object.keys(headers).some((k) => k.toLowerCase() === name)
}

function withoutConnection(headers: OutgoingHttpHeaders | unknown[]): OutgoingHttpHeaders | unknown[] {
  if (Array.isArray(headers)) {
    // [[name, value], …] or the flat [name, value, name, value, …]
    if (headers.length > 0 && Array.isArray(headers[0])) return headers.filter((pair) => String((pair as unknown[])[0]).toLowerCase() !== 'connection')
    const out: unknown[] = []
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() !== 'connection') out.push(headers[i], headers[i + 1])
    return out
  }
  let copy: OutgoingHttpHeaders | null = null
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== 'connection') continue
    copy ??= { ...headers }
    delete copy[key]
  }
  return copy ?? headers
}

// ── sockets ────────────────────────────────────────────────────────────────

/** Node sets `socket.parser = null` when a socket leaves HTTP (upgrade, CONNECT). */
export function isUpgraded(socket: Socket): boolean {
  return (socket as Socket & { parser?: unknown }).parser === null
}

/** The raw TCP (or pipe) socket a TLS socket was made from on a TLS server (`tlsSocket._parent`). */
export function rawSocketOf(tlsSocket: Socket): Socket | null {
  return (tlsSocket as Socket & { _parent?: Socket | null })._parent ?? null
}

/** The server a socket was accepted by (`socket.server`, set by net.Server). */
export function serverOfSocket(socket: Socket | null | undefined): object | null {
  return (socket as (Socket & { server?: object }) | null | undefined)?.server ?? null
}

/** The server of an HTTP/2 session (`session.server`). */
export function serverOfSession(session: object | null | undefined): object | null {
  return (session as { server?: object } | null | undefined)?.server ?? null
}

// ── rejected promises from 'request' listeners (D11) ───────────────────────

let kCapture: symbol | null | undefined

/**
 * Turns on EventEmitter's `captureRejections` for one server, so that a promise rejected by an
 * async 'request' listener reaches `server[Symbol.for('nodejs.rejection')]` instead of becoming an
 * unhandled rejection. Node offers the switch only at construction (`captureRejections` option,
 * which `http.createServer` does not pass on); the per-instance flag is a private symbol.
 * Returns the flag's previous value, for `restoreRejections`, or null when this Node has none.
 */
export function captureRejections(emitter: object): boolean | null {
  if (kCapture === undefined) kCapture = Object.getOwnPropertySymbols(emitter).find((s) => s.description === 'kCapture') ?? null
  if (kCapture === null || !(kCapture in emitter)) return null
  const previous = (emitter as Record<symbol, unknown>)[kCapture] === true
  ;(emitter as Record<symbol, unknown>)[kCapture] = true
  return previous
}

export function restoreRejections(emitter: object, previous: boolean | null): void {
  if (kCapture == null || previous === null) return
  ;(emitter as Record<symbol, unknown>)[kCapture] = previous
}

// ── Node's own idle close (D1) ─────────────────────────────────────────────

/**
 * While a drain runs, other code may close the server (a framework's close, NestJS's app.close(),
 * socket.io's io.close()): Node's `server.close()` calls `closeIdleConnections()`, which would
 * cut a socket at the very moment its client reuses it (D1). For the drain's length, that call
 * asks for a sweep instead. A user's own wrapper (an own property) is put back afterwards.
 * Returns the function that restores it.
 */
export function holdIdleClose(server: object, instead: () => void): () => void {
  const own = Object.getOwnPropertyDescriptor(server, 'closeIdleConnections')
  ;(server as { closeIdleConnections: () => void }).closeIdleConnections = instead
  return () => {
    if (own !== undefined) Object.defineProperty(server, 'closeIdleConnections', own)
    else delete (server as { closeIdleConnections?: unknown }).closeIdleConnections
  }
}

/** Node's own idle close and close-all (HTTP/1 servers), past any hold: for sockets accepted before quiesce attached (D17). */
export function nodeCloseIdle(server: object): void {
  ;(http.Server.prototype.closeIdleConnections as () => void).call(server)
}

export function nodeCloseAll(server: object): void {
  ;(http.Server.prototype.closeAllConnections as () => void).call(server)
}
