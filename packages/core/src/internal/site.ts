import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { ResolvedOptions } from '../options.js'
import type { ForcedItem } from '../types.js'

export type AnyRequest = IncomingMessage | Http2ServerRequest
export type AnyResponse = ServerResponse | Http2ServerResponse

export const now = (): number => performance.now()

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
  admit(req: AnyRequest, res: AnyResponse): boolean | Promise<boolean>
  handlerFailed(error: unknown, req: AnyRequest, res: AnyResponse): void
  /** The server emitted 'close' / 'listening' (D20: a controller whose servers closed is released). */
  serverClosed(): void
  serverListening(): void
}

/** One server's drain, as its HTTP/1 sockets and HTTP/2 sessions see it. */
export interface DrainSite {
  readonly host: TrackerHost
  /** When the listener closed (0: it has not). */
  readonly listenerClosedAt: number
  /** When this server's drain started (0: not draining). */
  readonly drainStartedAt: number
  /** Asks for a sweep at `at` (performance.now() ms) at the latest. */
  scheduleSweep(at: number): void
  /**
   * How late this process's own event loop runs, in ms, measured only while draining (0 before):
   * its longest stall since the drain started, the drain's own first burst and a stall still
   * under way included. On a slow server (a loaded machine, a CPU hog next to it) its clients and
   * the loopback itself stall with it: a busy client's next request comes back that much later,
   * and must not be taken for idle meanwhile (D1).
   */
  lag(): number
  /**
   * How much slower than an idle machine everything on this machine runs, as far as the server can
   * tell (1: not loaded): clients on the same machine, or sharing its cores, answer that much later.
   */
  slowdown(): number
}

/**
 * D1's quiet time, the one formula: a socket or session counts as idle once nothing happened on it
 * for its grace, counted from its last activity and never from before `since` (the listener's
 * close, or the drain's start): after a stall (GC, a busy loop, a loaded machine) everything looks
 * long quiet just as its client wakes up.
 */
export function idleAt(quietSince: number, since: number, grace: number): number {
  return Math.max(since, quietSince) + grace
}

/** A promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
