import diagnostics from 'node:diagnostics_channel'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { idOf, type Outcome } from './load.js'

/**
 * The server half of the ledger and the verdict: which requests each handler ran, whose response
 * finished, and every client outcome put in one class.
 */

export type OutcomeClass =
  /** the expected answer */
  | 'ok'
  /** ECONNREFUSED: nothing was sent; the client may retry anywhere (safe) */
  | 'refused-before-sending'
  /** failed after the connection was up, and no handler ran: safe to retry, but the client cannot know that */
  | 'failed-after-sending-without-execution'
  /** a handler ran, the client saw a failure: never safe to retry a POST (must be 0) */
  | 'executed-but-failed'
  /** neither an answer nor an error within the bound: the request vanished (must be 0) */
  | 'lost'

export interface Classified extends Outcome {
  readonly class: OutcomeClass
  /** How often a handler ran for this id. */
  readonly ran: number
  /** The server finished writing a response for this id. */
  readonly finished: boolean
  /**
   * On a reused socket: ms between the server finishing the previous response on it and this
   * request being written — how long the socket had been quiet when the client reused it.
   */
  readonly quietMs: number | null
  /** …and when the server read this request, if it ever did: how long the socket had been quiet for the server. */
  readonly arrivedAfterMs: number | null
  /** ms between the server's FIN on the request's socket and the server reading the request, when the FIN came first. */
  readonly arrivedAfterFinMs: number | null
}

export interface Tally {
  requests: number
  ok: number
  refusedBeforeSending: number
  /** failed-after-sending-without-execution on a fresh connection (the accept backlog of a listener that closed) */
  failedWithoutExecutionFresh: number
  /** …on a reused keep-alive socket */
  failedWithoutExecutionReused: number
  executedButFailed: number
  lost: number
  /**
   * Any failure (other than a refusal) on a keep-alive socket reused clearly within `idleGrace`
   * of its previous answer (`quietMs < idleGrace − BOUNDARY_MS`) whose request the server had
   * received within that time too, or never: the server closed a socket that was not idle —
   * what D1 rules out (must be 0).
   */
  failuresOnReusedWithinGrace: number
  /**
   * …written within `idleGrace`, but delivered to the server only after the socket had been
   * quiet for `idleGrace` and the server had closed it: read at least DELIVERY_MS after the FIN,
   * with the event loop turning in between. On an overloaded machine loopback delivery was
   * measured to lag 12–42 ms behind the write. For the server the socket was idle (D1: "no byte
   * of a next request has arrived"): the same race as below. Reported, not asserted.
   */
  failuresOnReusedDeliveredLate: number
  /**
   * …reused when it had been quiet for about `idleGrace` or longer: the race every server that
   * ever closes an idle connection has with its clients (RFC 9112 §9.5), which D1 narrows to
   * clients that wait that long. Reported, not asserted: the clients share the machine (and the
   * event loop) with the server, so a stalled loop or a starved CPU stretches their 0–20 ms.
   */
  failuresOnReusedAtOrAfterGrace: number
  /** Ids whose handler ran more than once (must be 0); POSTs among them. */
  executedTwice: number
  postsExecutedTwice: number
  /** Handler runs for ids no client sent (must be 0). */
  executedUnknown: number
  /** Answered with `Connection: close`: requests that met the drain on a keep-alive socket. */
  answeredConnectionClose: number
  /** Failures, for the assertion messages. */
  failures: Classified[]
}

export function emptyTally(): Tally {
  return {
    requests: 0,
    ok: 0,
    refusedBeforeSending: 0,
    failedWithoutExecutionFresh: 0,
    failedWithoutExecutionReused: 0,
    executedButFailed: 0,
    lost: 0,
    failuresOnReusedWithinGrace: 0,
    failuresOnReusedDeliveredLate: 0,
    failuresOnReusedAtOrAfterGrace: 0,
    executedTwice: 0,
    postsExecutedTwice: 0,
    executedUnknown: 0,
    answeredConnectionClose: 0,
    failures: [],
  }
}

/** Counts, per id, the handler runs logged as `METHOD /path?id=…`. */
export function countRuns(labels: readonly string[]): Map<string, number> {
  const runs = new Map<string, number>()
  for (const label of labels) {
    const id = idOf(label.slice(label.indexOf(' ') + 1))
    if (id !== null) runs.set(id, (runs.get(id) ?? 0) + 1)
  }
  return runs
}

export function classify(o: Outcome, ran: number, server: ServerTimes): Classified {
  let c: OutcomeClass
  if (o.result === 'ok') c = 'ok'
  else if (o.code === 'LOST') c = 'lost'
  else if (ran > 0) c = 'executed-but-failed'
  else if (o.code === 'ECONNREFUSED') c = 'refused-before-sending'
  else c = 'failed-after-sending-without-execution'
  const previousEnd = o.previousId === null ? undefined : server.finishedAt.get(o.previousId)
  // unknown timings count as "quiet for 0 ms": never in an allowed class
  const quietMs = !o.reused ? null : o.writtenAt === null || previousEnd === undefined ? 0 : o.writtenAt - previousEnd
  const arrived = server.arrivedAt.get(o.id)
  const arrivedAfterMs = !o.reused || arrived === undefined || previousEnd === undefined ? null : arrived - previousEnd
  const arrivedAfterFinMs = server.arrivedAfterFin.get(o.id) ?? null
  return { ...o, class: c, ran, finished: server.finishedAt.has(o.id), quietMs, arrivedAfterMs, arrivedAfterFinMs }
}

/**
 * How the "within idleGrace" line is drawn: `idleGrace` minus this many ms. A request written
 * just before the socket turns idle can cross the server's FIN on the wire; the margin covers
 * that moment (timer granularity, the check phase the idle close runs in, loopback delivery).
 */
export const BOUNDARY_MS = 10

/**
 * A request the server reads this long after its FIN on the socket was not there when the FIN
 * went out: had it been in the kernel, the poll right after the idle close would have read it
 * (the idle close runs in the check phase, after a poll). Closer than this, it counts against D1.
 */
export const DELIVERY_MS = 5

/** A failure on a socket reused within idleGrace (D1 rules these out), unless the request arrived late. */
function withinGrace(f: Classified, idleGrace: number): boolean {
  const line = idleGrace - BOUNDARY_MS
  if (f.quietMs === null || f.quietMs >= line) return false
  const deliveredLate = f.arrivedAfterMs !== null && f.arrivedAfterMs >= line && f.arrivedAfterFinMs !== null && f.arrivedAfterFinMs >= DELIVERY_MS
  return !deliveredLate
}

/** Adds one run's outcomes and server ledger to `tally`. */
export function tallyRun(tally: Tally, outcomes: readonly Outcome[], ranLabels: readonly string[], server: ServerTimes, idleGrace: number): void {
  const runs = countRuns(ranLabels)
  const sent = new Set<string>()
  for (const o of outcomes) {
    sent.add(o.id)
    const k = classify(o, runs.get(o.id) ?? 0, server)
    tally.requests++
    if (o.connectionClose) tally.answeredConnectionClose++
    switch (k.class) {
      case 'ok':
        tally.ok++
        break
      case 'refused-before-sending':
        tally.refusedBeforeSending++
        break
      case 'failed-after-sending-without-execution':
        if (o.reused) tally.failedWithoutExecutionReused++
        else tally.failedWithoutExecutionFresh++
        break
      case 'executed-but-failed':
        tally.executedButFailed++
        break
      case 'lost':
        tally.lost++
        break
    }
    if (k.class !== 'ok' && k.class !== 'refused-before-sending') {
      tally.failures.push(k)
      if (k.quietMs !== null) {
        if (withinGrace(k, idleGrace)) tally.failuresOnReusedWithinGrace++
        else if (k.quietMs < idleGrace - BOUNDARY_MS) tally.failuresOnReusedDeliveredLate++
        else tally.failuresOnReusedAtOrAfterGrace++
      }
    }
    if (k.ran > 1) {
      tally.executedTwice++
      if (o.method === 'POST') tally.postsExecutedTwice++
    }
  }
  for (const id of runs.keys()) if (!sent.has(id)) tally.executedUnknown++
}

/** A short, readable line per failure for assertion messages: the ones D1 rules out first. */
export function describeFailures(t: Tally, idleGrace: number, max = 12): string {
  const rank = (f: Classified): number => (f.class === 'executed-but-failed' || f.class === 'lost' ? 0 : withinGrace(f, idleGrace) ? 1 : 2)
  return [...t.failures]
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, max)
    .map(
      (f) =>
        `${f.class}: ${f.method} ${f.id} via ${f.client} → ${f.code}; ` +
        `${f.quietMs === null ? 'fresh socket' : `socket reused after ${f.quietMs.toFixed(1)} ms quiet`}` +
        `${f.arrivedAfterMs === null ? '' : `, read by the server after ${f.arrivedAfterMs.toFixed(1)} ms`}` +
        `${f.arrivedAfterFinMs === null ? '' : ` (${f.arrivedAfterFinMs.toFixed(1)} ms after its FIN)`}; ran ${f.ran}×, response finished: ${f.finished}`,
    )
    .join('\n')
}

/** When the server read each id's request, and when it finished writing its response. */
export interface ServerTimes {
  readonly arrivedAt: ReadonlyMap<string, number>
  readonly finishedAt: ReadonlyMap<string, number>
  /** For requests read after the server's FIN on their socket: how long after. */
  readonly arrivedAfterFin: ReadonlyMap<string, number>
}

/**
 * The server's side of the timings, from Node's own `http.server.request.start` and
 * `http.server.response.finish` channels: the same for every framework, and also for requests
 * quiesce refused (read after the socket's FIN, never handed to a handler).
 */
export function watchServer(server: http.Server): ServerTimes & { stop(): void } {
  const arrivedAt = new Map<string, number>()
  const finishedAt = new Map<string, number>()
  const arrivedAfterFin = new Map<string, number>()
  // the server's FIN on each socket: the socket's writable side finishes (public events only)
  const finAt = new WeakMap<Socket, number>()
  const onConnection = (socket: Socket): void => {
    socket.once('finish', () => finAt.set(socket, performance.now()))
  }
  server.on('connection', onConnection)
  const record =
    (into: Map<string, number>) =>
    (message: unknown): void => {
      const m = message as { server: unknown; request: http.IncomingMessage; socket: Socket }
      if (m.server !== server) return
      const id = idOf(m.request.url)
      if (id === null || into.has(id)) return
      const t = performance.now()
      into.set(id, t)
      const fin = into === arrivedAt ? finAt.get(m.socket) : undefined
      if (fin !== undefined) arrivedAfterFin.set(id, t - fin)
    }
  const onStart = record(arrivedAt)
  const onFinish = record(finishedAt)
  diagnostics.subscribe('http.server.request.start', onStart)
  diagnostics.subscribe('http.server.response.finish', onFinish)
  return {
    arrivedAt,
    finishedAt,
    arrivedAfterFin,
    stop() {
      server.off('connection', onConnection)
      diagnostics.unsubscribe('http.server.request.start', onStart)
      diagnostics.unsubscribe('http.server.response.finish', onFinish)
    },
  }
}

/**
 * The baseline: the same two routes on bare `node:http`, shut down the way most apps do —
 * `server.close()`, which (Node ≥ 19) destroys every idle keep-alive socket at once.
 */
export interface BareApp {
  readonly url: string
  readonly server: http.Server
  readonly ran: string[]
}

export async function startBare(): Promise<BareApp> {
  const ran: string[] = []
  const server = http.createServer(async (req, res) => {
    ran.push(`${req.method} ${req.url}`)
    if (req.method === 'POST') {
      let body = ''
      for await (const chunk of req) body += chunk
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`echo:${body.length}`)
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('fast')
    }
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, server, ran }
}
