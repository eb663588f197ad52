import http2 from 'node:http2'
import type { Http2Session, ServerHttp2Stream } from 'node:http2'
import { ClientClosedError } from '../errors.js'
import { remoteOf } from './servers.js'
import { abortRequestSignal, streamCutShort } from './signal.js'
import { idleAt, now, type DrainSite } from './site.js'

const kSessionState = Symbol.for('quiesce.session')
const GOAWAY_ALL = 2 ** 31 - 1

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

interface StreamInfo {
  readonly at: number
  readonly method: string
  readonly path: string
}

type TrackedSession = Http2Session & { [kSessionState]?: SessionState }

const clientClosed = (): Error => new ClientClosedError()

/** One server's HTTP/2 sessions and streams, drained with RFC 9113's two-step GOAWAY (D12). */
export class Http2Sessions {
  readonly sessions = new Set<TrackedSession>()
  /** Streams in flight → when they started and what they asked for. */
  readonly streams = new Map<ServerHttp2Stream, StreamInfo>()
  readonly #site: DrainSite

  constructor(site: DrainSite) {
    this.#site = site
  }

  onSession = (session: TrackedSession): void => {
    const t = now()
    session[kSessionState] = { streams: 0, phase: 0, openedAt: t, quietSince: t, pingDeadline: 0, acked: false }
    this.sessions.add(session)
    session.once('close', () => this.sessions.delete(session))
    // A session opened during the drain belongs to a client that knows nothing yet and sends its
    // first requests right behind its preface. A GOAWAY written before they arrive would make
    // nghttp2 ignore them all (measured: 10 of 10 first requests refused during the announce
    // phase), so its first GOAWAY waits for its first stream (onStream), or, once the listener
    // has closed, for D5's headerGrace (sweep).
    const { host, listenerClosedAt } = this.#site
    if (host.isDraining && listenerClosedAt !== 0) this.#site.scheduleSweep(t + host.options.headerGrace)
  }

  onStream = (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const session = stream.session as TrackedSession | undefined
    const state = session?.[kSessionState]
    const host = this.#site.host
    if (state !== undefined) {
      state.streams++
      // a session opened during the drain: its first requests arrived, now it is told (see onSession)
      if (state.phase === 0 && host.isDraining) this.#goawayFirst(session as TrackedSession)
    }
    this.streams.set(stream, { at: now(), method: String(headers[':method'] ?? '?'), path: String(headers[':path'] ?? '?') })
    stream.once('close', () => {
      this.streams.delete(stream)
      if (state !== undefined) {
        state.streams--
        state.quietSince = now()
        // no stream left: nghttp2 stops reading after a GOAWAY, so no PING ACK can arrive any more
        if (state.streams === 0 && state.phase === 1) this.#site.scheduleSweep(now())
      }
      if (streamCutShort(stream)) {
        abortRequestSignal(stream, clientClosed)
        if (host.isDraining) host.count('aborted')
      } else if (host.isDraining) {
        host.count('completed')
      }
    })
  }

  /** Draining starts: busy sessions get the first GOAWAY now, idle ones once quiet for idleGrace (D1). */
  startDrain(): void {
    for (const session of this.sessions) {
      // a stream an idle session's client is sending right now would cross the GOAWAY and never be processed
      const state = session[kSessionState]
      if (state !== undefined && state.streams === 0) this.#site.scheduleSweep(this.#site.drainStartedAt + this.#site.host.options.idleGrace)
      else this.#goawayFirst(session)
    }
  }

  /**
   * The sweep's HTTP/2 rules: the final GOAWAY when the PING wait ran out (also during the
   * announce phase); the first one for a session idle since the drain started once quiet for
   * idleGrace; for a session opened after the listener closed, after headerGrace (D5).
   */
  sweep(t: number): number {
    const { host, listenerClosedAt, drainStartedAt } = this.#site
    const o = host.options
    let next = Infinity
    for (const session of this.sessions) {
      const state = session[kSessionState]
      if (state === undefined) continue
      let until = Infinity
      if (state.phase === 1) {
        if (state.acked || state.streams === 0 || t >= state.pingDeadline) this.#goawayFinal(session)
        else next = Math.min(next, state.pingDeadline)
        continue
      }
      if (state.phase !== 0 || !host.isDraining) continue
      if (state.openedAt < drainStartedAt) until = idleAt(state.quietSince, drainStartedAt, o.idleGrace)
      else if (listenerClosedAt !== 0) until = idleAt(state.openedAt, listenerClosedAt, o.headerGrace)
      if (t >= until) this.#goawayFirst(session)
      else next = Math.min(next, until)
    }
    return next
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
    state.pingDeadline = now() + this.#site.host.options.goawayTimeout
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
    this.#site.scheduleSweep(state.streams === 0 ? now() : state.pingDeadline)
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

  abortInFlight(reason: () => Error): void {
    for (const stream of this.streams.keys()) abortRequestSignal(stream, reason)
  }

  /** D6, at the deadline: every session destroyed, each unfinished stream and busy session named. */
  destroyAll(): void {
    const host = this.#site.host
    const t = now()
    for (const [stream, info] of this.streams) {
      if (stream.writableFinished) continue
      host.forced({ kind: 'request', method: info.method, url: info.path, ageMs: Math.round(t - info.at), protocol: 'h2' })
    }
    for (const session of this.sessions) {
      const streams = session[kSessionState]?.streams ?? 0
      if (streams > 0) host.forced({ kind: 'session', remote: remoteOf(session.socket ?? {}), streams })
      session.destroy()
    }
  }

  /** Open sessions (a destroyed one emits 'close' a tick after the server's own 'close': not open any more). */
  open(): number {
    for (const session of this.sessions) if (gone(session)) this.sessions.delete(session)
    return this.sessions.size
  }

  /** Streams in flight, not counting those of a session that is gone (see `gone`). */
  inflight(): number {
    let n = 0
    for (const stream of this.streams.keys()) if (!gone(stream.session)) n++
    return n
  }
}

/**
 * A session is gone once destroyed, or once its socket is: Node emits the server's 'close' (the
 * end of the drain, D7) before the socket's own, and only on that does it close the session and
 * its streams, a turn later. Until then the session is still there, though nothing can reach it.
 */
function gone(session: Http2Session | undefined): boolean {
  return session === undefined || session.destroyed || session.socket.destroyed
}
