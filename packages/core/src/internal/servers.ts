import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import { QuiesceOptionError } from '../errors.js'
import type { AnyServer } from '../types.js'

export type ServerKind = 'http' | 'https' | 'h2c' | 'h2'

let h2Proto: object | undefined
let h2SecureProto: object | undefined

/** The class of a server, found through its prototype chain (Node does not export the HTTP/2 server classes). */
export function serverKind(server: unknown): ServerKind | null {
  if (server instanceof http.Server) return 'http'
  if (server instanceof https.Server) return 'https'
  if (typeof server !== 'object' || server === null) return null
  // a throwaway server, never listening: the only public way to reach these prototypes
  h2Proto ??= Object.getPrototypeOf(http2.createServer()) as object
  h2SecureProto ??= Object.getPrototypeOf(http2.createSecureServer({})) as object
  if (Object.prototype.isPrototypeOf.call(h2SecureProto, server)) return 'h2'
  if (Object.prototype.isPrototypeOf.call(h2Proto, server)) return 'h2c'
  return null
}

export function assertServer(server: unknown, option = 'server'): asserts server is AnyServer {
  if (serverKind(server) === null) {
    throw new QuiesceOptionError(option, 'an http, https or http2 server (for Express or Koa, pass what app.listen() returns)', server)
  }
}

/** Closes only the listening handle: no `closeIdleConnections()`, no HTTP/2 `closeAllSessions()`. */
export function closeListenerOnly(server: AnyServer): void {
  net.Server.prototype.close.call(server)
}

/**
 * Closes the listener the way Node does for this kind of server, minus Node's immediate
 * `closeIdleConnections()` (which would race clients reusing an idle socket, D1) and minus
 * HTTP/2's one-step `closeAllSessions()` on Node ≥ 24 (D12 sends its own two-step GOAWAY).
 * For HTTP/1 servers Node's own `close()` still runs, so its connection-checking interval stops;
 * the idle close is shadowed only for the duration of that synchronous call.
 *
 * `external`: a framework closes the server itself (Fastify's close(), a few ticks later) and
 * still finds it closing; only the listening handle closes now, none of the framework's own steps.
 */
export function closeListener(server: AnyServer, kind: ServerKind, external: boolean): void {
  if (external || kind === 'h2' || kind === 'h2c') {
    closeListenerOnly(server)
    return
  }
  const target = server as http.Server & { closeIdleConnections: () => void }
  const own = Object.prototype.hasOwnProperty.call(target, 'closeIdleConnections')
  const previous = target.closeIdleConnections
  target.closeIdleConnections = noop
  try {
    target.close()
  } finally {
    if (own) target.closeIdleConnections = previous
    else delete (target as { closeIdleConnections?: unknown }).closeIdleConnections
  }
}

function noop(): void {}

/** `host:port`, `[v6]:port` or the pipe path: how resume errors and reports name an address. */
export function formatAddress(address: ReturnType<net.Server['address']>): string {
  if (address === null) return '(not listening)'
  if (typeof address === 'string') return address
  return address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`
}

export function remoteOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  const a = socket.remoteAddress
  if (!a) return 'unknown'
  return a.includes(':') ? `[${a}]:${socket.remotePort}` : `${a}:${socket.remotePort}`
}
