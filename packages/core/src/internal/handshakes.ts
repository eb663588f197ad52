import type { Socket } from 'node:net'
import { rawSocketOf } from './node.js'
import { remoteOf } from './servers.js'
import { now, type DrainSite } from './site.js'

/**
 * TLS servers: raw sockets whose handshake has not completed (D5: they get `headerGrace` once the
 * listener closed). Kept by socket, not by remote address: every client of a Unix socket is
 * 'unknown' (D21).
 */
export class TlsHandshakes {
  readonly #pending = new Set<Socket>()
  readonly #site: DrainSite

  constructor(site: DrainSite) {
    this.#site = site
  }

  get size(): number {
    return this.#pending.size
  }

  onRawConnection = (raw: Socket): void => {
    this.#pending.add(raw)
    raw.once('close', () => this.#pending.delete(raw))
    if (this.#site.listenerClosedAt !== 0) this.#site.scheduleSweep(now() + this.#site.host.options.headerGrace)
  }

  /** The handshake completed: the TLS socket is an HTTP/1 socket or an HTTP/2 session from now on. */
  secured(tlsSocket: Socket): void {
    const raw = rawSocketOf(tlsSocket)
    if (raw !== null) this.#pending.delete(raw)
  }

  /** The sweep's rule: once the listener closed, a handshake gets `headerGrace`. */
  sweep(t: number): number {
    const until = this.#site.listenerClosedAt + this.#site.host.options.headerGrace
    if (this.#site.listenerClosedAt === 0 || this.#pending.size === 0) return Infinity
    if (t < until) return until
    for (const raw of this.#pending) raw.destroy()
    return Infinity
  }

  /** D6, at the deadline: each one destroyed and named. */
  destroyAll(): void {
    for (const raw of this.#pending) {
      this.#site.host.forced({ kind: 'socket', type: 'tls-handshake', remote: remoteOf(raw) })
      raw.destroy()
    }
    this.#pending.clear()
  }
}
