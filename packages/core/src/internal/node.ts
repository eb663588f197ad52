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

export function setCloseMarker(res: object, on: boolean): void {
  ;(res as Markable).maxRequestsOnConnectionReached = on
  ;(res as Markable)[kOwnMarker] = on
  if (on && (res as { [kHeaderGuard]?: true })[kHeaderGuard] === undefined) guardConnectionHeader(res as ServerResponse)
}

export function hasCloseMarker(res: object): boolean {
  return (res as Markable)[kOwnMarker] === true && (res as Markable).maxRequestsOnConnectionReached === true
}

/**
 * D21: a `Connection` header the app or its framework set (keep-alive, or a framework's blanket
 * `close` that would make Node drop the requests pipelined behind it) must not override the
 * marker: the client would be told keep-alive and then cut. Every way headers reach the wire
 * (`writeHead(…, headers)`, `setHeader` then `end()`, which calls `writeHead` itself) passes
 * through `writeHead`, so one own wrapper on a marked response takes the header back in time.
 */
function guardConnectionHeader(res: ServerResponse): void {
  if (typeof res.writeHead !== 'function' || res.headersSent) return
  ;(res as unknown as { [kHeaderGuard]: true })[kHeaderGuard] = true
  res.writeHead = writeHeadWithMarker as ServerResponse['writeHead']
}

function writeHeadWithMarker(this: ServerResponse, ...args: unknown[]): ServerResponse {
  const proto = Object.getPrototypeOf(this) as { writeHead: (...a: unknown[]) => ServerResponse }
  if (hasCloseMarker(this) && !this.headersSent) {
    if (this.hasHeader('connection')) {
      this.removeHeader('connection')
      // removeHeader('connection') also switches Node's own Connection header off for good
      ;(this as unknown as { _removedConnection: boolean })._removedConnection = false
    }
    const last = args.length - 1
    if (last >= 1 && typeof args[last] === 'object' && args[last] !== null) args[last] = withoutConnection(args[last] as OutgoingHttpHeaders | unknown[])
  }
  return proto.writeHead.apply(this, args)
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
