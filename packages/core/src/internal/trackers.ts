import type { AnyServer, Stats } from '../types.js'
import { dispatcherOf } from './dispatch.js'
import { deferred } from './site.js'
import type { Tracker } from './tracker.js'

/** A controller (of any copy of quiesce) drains `server` (D20: one per server). */
export function drainedByAnyController(server: object): boolean {
  return dispatcherOf(server) !== undefined
}

/**
 * A controller's servers, one `Tracker` each, and the drain's steps taken on all of them: the
 * controller decides when (its phases), this does it on every server alike.
 */
export class Trackers {
  readonly #byServer = new Map<AnyServer, Tracker>()
  /** The framework closes the servers itself (Fastify): only the listening handles are closed here. */
  readonly #external: boolean
  readonly #listenerClosed: (server: AnyServer) => void
  /** Resolves when the listeners close: after the announce phase and the before-shutdown hooks (D4). */
  readonly #listenersClosed = deferred()

  constructor(external: boolean, listenerClosed: (server: AnyServer) => void) {
    this.#external = external
    this.#listenerClosed = listenerClosed
  }

  has(server: AnyServer): boolean {
    return this.#byServer.has(server)
  }

  get(server: AnyServer): Tracker | undefined {
    return this.#byServer.get(server)
  }

  add(tracker: Tracker): void {
    this.#byServer.set(tracker.server, tracker)
  }

  servers(): IterableIterator<AnyServer> {
    return this.#byServer.keys()
  }

  /** The drain starts (D4 announce) on every server. */
  startDrain(): void {
    for (const t of this.#byServer.values()) t.startDrain()
  }

  /** Once per drain: the announce phase is over, or the deadline came first. */
  closeListeners(): void {
    for (const t of this.#byServer.values()) this.closeListener(t)
    this.#listenersClosed.resolve()
  }

  /** One server's listener (also a server attached once the listeners closed). */
  closeListener(t: Tracker): void {
    t.closeListener(this.#external)
    this.#listenerClosed(t.server)
  }

  /** Resolves once `closeListeners()` ran: the moment a framework may close its own listener (D4). */
  get listenersClosed(): Promise<void> {
    return this.#listenersClosed.promise
  }

  /** D6: every request still running has its signal aborted with `reason`. */
  abortInFlight(reason: () => Error): void {
    for (const t of this.#byServer.values()) t.abortInFlight(reason)
  }

  /** D6, at the deadline: what is left on every server is destroyed. */
  destroyAll(): void {
    for (const t of this.#byServer.values()) t.destroyAll()
  }

  allClosed(): boolean {
    for (const t of this.#byServer.values()) if (!t.closed) return false
    return true
  }

  /** Resolves when every server has emitted `close` (D7). */
  whenAllClosed(): Promise<unknown> {
    return Promise.all([...this.#byServer.values()].map((t) => t.whenClosed()))
  }

  detach(): void {
    for (const t of this.#byServer.values()) t.detach()
  }

  /** What every server holds now, summed; HTTP/2 sessions count as connections, their streams as requests. */
  stats(): Omit<Stats, 'state'> {
    let connections = 0
    let idleConnections = 0
    let requestsInFlight = 0
    let upgradedSockets = 0
    let http2Sessions = 0
    for (const t of this.#byServer.values()) {
      const h1 = t.http1.count()
      const sessions = t.http2.open()
      connections += h1.open + t.handshakes.size + sessions
      idleConnections += h1.idle
      upgradedSockets += h1.upgraded
      requestsInFlight += t.http1.inflight + t.http2.inflight()
      http2Sessions += sessions
    }
    return { connections, idleConnections, requestsInFlight, upgradedSockets, http2Sessions }
  }
}
