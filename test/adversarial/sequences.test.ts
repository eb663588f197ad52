import http from 'node:http'
import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ShutdownReport, State, Stats } from '@quiesce/core'
import { graceful } from '@quiesce/core'
import { targets } from '../conformance/targets.js'
import type { App } from '../conformance/fixtures/app.js'
import { fcOptions, get, within, type Reply } from './helpers.js'

/**
 * Random sequences of controller calls — pause/resume/shutdown/attach/onShutdown/beforeShutdown/
 * stats — with random small delays, while real requests (keep-alive and fresh connections, fast,
 * slow and streaming routes) are in flight, on every target. The invariants are the contract's:
 * nothing hangs, nothing rejects unhandled, every request is answered exactly once (or refused
 * only where the listener may be closed), `state` only moves along the table of "The drain at a
 * glance", `shutdown()` is idempotent, pause/resume after the drain began reject with
 * ClosedError, and stats() stays consistent and ends at zero.
 */

type Route = 'fast' | 'slow' | 'stream'
type Op =
  | { op: 'pause'; mode: 'refuse' | 'reject' | 'hold'; maxWait: number; wait: boolean }
  | { op: 'resume'; wait: boolean }
  | { op: 'shutdown'; timeout?: number }
  | { op: 'attach' }
  | { op: 'attachNew' }
  | { op: 'onShutdown'; ms: number; fail: boolean }
  | { op: 'beforeShutdown'; ms: number }
  | { op: 'stats' }
  | { op: 'request'; route: Route; ms: number; fresh: boolean }
  | { op: 'delay'; ms: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('pause' as const),
      mode: fc.constantFrom('refuse' as const, 'reject' as const, 'hold' as const),
      maxWait: fc.integer({ min: 10, max: 300 }),
      wait: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('resume' as const), wait: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record(
      { op: fc.constant('shutdown' as const), timeout: fc.option(fc.integer({ min: 0, max: 800 }), { nil: undefined }) },
      { requiredKeys: ['op'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'attach' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'attachNew' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('onShutdown' as const), ms: fc.integer({ min: 0, max: 60 }), fail: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('beforeShutdown' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'stats' as const }) },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('request' as const),
      route: fc.constantFrom<Route>('fast', 'slow', 'stream'),
      ms: fc.integer({ min: 1, max: 150 }),
      fresh: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('delay' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
)

const scenario = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 20 }),
  duringDrain: fc.constantFrom('close' as const, 'reject' as const),
  timeout: fc.constantFrom(150, 600, 1000),
})

/** The allowed moves of `state` (CONTRACT.md, "The drain at a glance"; Controller.state). */
const ALLOWED: Record<State, readonly State[]> = {
  running: ['running', 'paused', 'draining'],
  paused: ['paused', 'running', 'draining'],
  draining: ['draining', 'closed'],
  closed: ['closed'],
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

let rejections: unknown[] = []
const onRejection = (reason: unknown): void => {
  rejections.push(reason)
}
beforeEach(() => {
  rejections = []
  process.on('unhandledRejection', onRejection)
})
afterEach(() => {
  process.off('unhandledRejection', onRejection)
})

interface Sent {
  id: number
  route: Route
  url: string
  label: string
  fresh: boolean
  reply: Reply
  promise: Promise<Reply>
  /** State when the request was sent. */
  state: State
  /**
   * The server's end of the reused socket the request went out on was already closed (D1's idle
   * close) when the client wrote it: the client had not read the FIN yet, and its request could
   * only be reset — the keep-alive race every HTTP client meets after an idle close.
   */
  serverClosedFirst: boolean
}

function expectStats(s: Stats, context: string): void {
  for (const k of ['connections', 'idleConnections', 'requestsInFlight', 'upgradedSockets', 'http2Sessions'] as const) {
    expect(Number.isInteger(s[k]) && s[k] >= 0, `${context}: stats().${k} = ${s[k]}`).toBe(true)
  }
  expect(s.idleConnections, `${context}: idle ≤ connections`).toBeLessThanOrEqual(s.connections)
}

function expectedBody(route: Route): string {
  return route === 'fast' ? 'fast' : route === 'slow' ? 'slow' : 'chunk 0\nchunk 1\nchunk 2\n'
}

async function runScenario(app: App, s: { ops: Op[]; duringDrain: 'close' | 'reject'; timeout: number }): Promise<void> {
  const g = app.g
  const agent = new http.Agent({ keepAlive: true, maxSockets: 3 })
  const states: Array<{ state: State; at: string }> = [{ state: g.state, at: 'start' }]
  const see = (at: string): void => {
    const state = g.state
    states.push({ state, at })
    // `draining` aborts exactly when draining starts (D4), and never un-aborts
    expect(g.draining.aborted, `${at}: draining.aborted with state ${state}`).toBe(state === 'draining' || state === 'closed')
  }
  const sent: Sent[] = []
  const extras: Array<{ server: http.Server; state: State }> = []
  const calls: Array<{ what: string; state: State; promise: Promise<void> }> = []
  const shutdowns: Array<Promise<ShutdownReport>> = []
  let shutdownCalledAt: number | null = null
  let pausedEver = false
  const modes = new Set<string>()
  const hooks: Array<{ kind: 'onShutdown' | 'beforeShutdown'; name: string; runs: number; registeredBeforeDrain: boolean }> = []
  let nextId = 0
  // what the server parsed (Node's own channel, before any listener): a request it never saw may be
  // reset with the listener's accept queue; one it saw must be answered
  const parsed = new Set<string>()
  const onStart = (message: unknown): void => {
    parsed.add((message as { request: http.IncomingMessage }).request.url ?? '')
  }
  diagnostics.subscribe('http.server.request.start', onStart)
  // the server's end of each connection, by the client's port: told whether it was closed before a request went out on it
  const serverEnds = new Map<number, Socket>()
  const onConnection = (socket: Socket): void => {
    if (socket.remotePort !== undefined) serverEnds.set(socket.remotePort, socket)
  }
  app.server.prependListener('connection', onConnection)

  try {
    // a warm keep-alive socket
    expect((await get(app.port, '/fast?id=warm', agent).promise).status).toBe(200)
    for (const [i, o] of s.ops.entries()) {
      const at = `op ${i} ${JSON.stringify(o)}`
      const before = g.state
      switch (o.op) {
        case 'pause': {
          if (before === 'running' || before === 'paused') {
            pausedEver = true
            modes.add(o.mode)
          }
          const p = g.pause({ mode: o.mode, maxWait: o.maxWait })
          calls.push({ what: at, state: before, promise: p })
          if (o.wait) await p.catch(() => {})
          break
        }
        case 'resume': {
          const p = g.resume()
          calls.push({ what: at, state: before, promise: p })
          if (o.wait) await p.catch(() => {})
          break
        }
        case 'shutdown':
          shutdownCalledAt ??= performance.now()
          shutdowns.push(g.shutdown(o.timeout === undefined ? undefined : { timeout: o.timeout }))
          break
        case 'attach': {
          // the app's own server again: idempotent in every state, returns the controller
          const r = (g as unknown as { attach(server: http.Server): unknown }).attach(app.server)
          expect(r, `${at}: attach() returns the controller`).toBeTruthy()
          break
        }
        case 'attachNew': {
          // one more listening server: taken on while running, paused or draining; refused once closed
          const extra = http.createServer((_req, res) => res.end('extra'))
          extra.listen(0, '127.0.0.1')
          await once(extra, 'listening')
          const state = g.state
          let err: unknown = null
          try {
            ;(g as unknown as { attach(server: http.Server): unknown }).attach(extra)
          } catch (e) {
            err = e
          }
          if (state === 'closed') {
            expect((err as { code?: string } | null)?.code, `${at}: attach() of a new server once closed throws ClosedError`).toBe('ERR_QUIESCE_CLOSED')
            extra.close()
          } else {
            expect(err, `${at}: attach() of a new server while ${state}`).toBeNull()
            extras.push({ server: extra, state })
          }
          break
        }
        case 'onShutdown':
        case 'beforeShutdown': {
          const h = { kind: o.op, name: `${o.op}-${i}`, runs: 0, registeredBeforeDrain: before === 'running' || before === 'paused' }
          hooks.push(h)
          const register = o.op === 'onShutdown' ? g.onShutdown.bind(g) : g.beforeShutdown.bind(g)
          register(
            async () => {
              h.runs++
              await sleep(o.ms)
              if (o.op === 'onShutdown' && o.fail) throw new Error(`${h.name} fails`)
            },
            { name: h.name },
          )
          break
        }
        case 'stats':
          expectStats(g.stats(), at)
          break
        case 'request': {
          const id = nextId++
          const url = o.route === 'fast' ? `/fast?id=${id}` : o.route === 'slow' ? `/slow?ms=${o.ms}&id=${id}` : `/stream?every=${Math.ceil(o.ms / 3)}&id=${id}`
          // (the socket comes a tick later, just before the request is written)
          const r = get(app.port, url, o.fresh ? false : agent, (socket) => {
            entry.serverClosedFirst = socket.localPort !== undefined && serverEnds.get(socket.localPort)?.destroyed === true
          })
          const entry: Sent = {
            id,
            route: o.route,
            url,
            label: `GET ${url}`,
            fresh: o.fresh,
            reply: r.reply,
            promise: r.promise,
            state: before,
            serverClosedFirst: false,
          }
          sent.push(entry)
          break
        }
        case 'delay':
          await sleep(o.ms)
          break
      }
      see(at)
    }
    // the end of every sequence: shutdown() (the disposal), which must settle everything
    shutdownCalledAt ??= performance.now()
    shutdowns.push(g.shutdown())
    see('final shutdown() call')
    const bound = s.timeout + 500 /* hooksTimeout */ + 2000
    const done = await within(
      Promise.all([shutdowns[0] as Promise<ShutdownReport>, ...sent.map((r) => r.promise), ...calls.map((c) => c.promise.catch(() => {}))]),
      bound,
    )
    if (done.hung) {
      const pending = sent.filter((r) => r.reply.settled === 0).map((r) => r.url)
      expect.fail(
        `hang: not settled ${bound} ms after shutdown(): state ${g.state}, stats ${JSON.stringify(g.stats())}, requests pending: ${pending.join(', ') || 'none'}`,
      )
    }
    const report = await (shutdowns[0] as Promise<ShutdownReport>)
    see('drain over')
    expect(g.state).toBe('closed')

    // shutdown() is idempotent: the same promise every time (the contract's "Public entry points")
    for (const p of shutdowns) expect(p, 'every shutdown() call returns the same promise').toBe(shutdowns[0])
    expect(g.shutdown(), 'shutdown() after the drain: the same promise').toBe(shutdowns[0])

    // state moved only along the table
    for (let i = 1; i < states.length; i++) {
      const a = (states[i - 1] as { state: State }).state
      const b = states[i] as { state: State; at: string }
      expect(ALLOWED[a].includes(b.state), `state ${a} → ${b.state} at ${b.at} (sequence ${states.map((x) => x.state).join(' → ')})`).toBe(true)
      if (b.state === 'paused') expect(pausedEver, 'paused without a pause() call').toBe(true)
    }

    // pause/resume: resolved, or rejected with ClosedError (the drain began); called once draining → rejected
    for (const c of calls) {
      const r = await c.promise.then(
        () => null,
        (err: unknown) => err,
      )
      if (r !== null) expect((r as { code?: string }).code, `${c.what} rejected with ${(r as Error).message}`).toBe('ERR_QUIESCE_CLOSED')
      if (c.state === 'draining' || c.state === 'closed') expect(r, `${c.what} called while ${c.state} must reject with ClosedError`).not.toBeNull()
    }
    for (const m of ['pause', 'resume'] as const) {
      const r = await g[m]().then(
        () => null,
        (err: unknown) => err,
      )
      expect((r as { code?: string } | null)?.code, `${m}() once closed rejects with ClosedError`).toBe('ERR_QUIESCE_CLOSED')
    }

    // every request: exactly one complete answer, or an error the contract allows
    const rejectPossible = modes.has('reject') || modes.has('hold') || s.duringDrain === 'reject'
    const refusePossible = modes.has('refuse') || shutdownCalledAt !== null
    for (const r of sent) {
      const what = `${r.label} (sent while ${r.state}, ${r.fresh ? 'no agent' : 'keep-alive agent'}, ${r.reply.reused ? 'on a reused socket' : 'on a new connection'})`
      expect(r.reply.settled, `${what}: settled exactly once`).toBe(1)
      if (r.reply.status === 200) {
        expect(r.reply.body, `${what}: the whole body`).toBe(expectedBody(r.route))
      } else if (r.reply.status === 503) {
        expect(rejectPossible, `${what}: 503 although no reject/hold pause and duringDrain 'close'`).toBe(true)
        expect(r.reply.headers?.['retry-after'], `${what}: 503 with Retry-After`).toBeDefined()
      } else if (r.reply.status !== undefined) {
        expect.fail(`${what}: status ${r.reply.status}`)
      } else if (r.reply.error === 'ECONNREFUSED') {
        expect(refusePossible, `${what}: ECONNREFUSED while the listener was never closed`).toBe(true)
      } else if (!parsed.has(r.url) && r.reply.reused !== true && refusePossible && !report.timedOut) {
        // a new connection still in the listener's accept queue when the listener closed: reset by
        // the kernel (as with Node's own server.close()); the server never saw the request
      } else if (!parsed.has(r.url) && r.reply.reused === true && r.serverClosedFirst) {
        // a keep-alive socket the server had closed as idle (D1: quiet for idleGrace) before the
        // client wrote on it: the client had not read the FIN yet (the agent still held the socket
        // as free); no server can answer a request written after its close
      } else {
        // cut mid-way: only at the deadline
        expect(
          report.timedOut,
          `${what}: ${r.reply.error} although the drain did not time out (${parsed.has(r.url) ? 'the server had parsed the request' : 'the server never parsed it'}; report ${JSON.stringify({ ...report, forced: report.forced.length })})`,
        ).toBe(true)
      }
    }
    // server side: no handler ran twice, none finished twice; every 200 was finished by its handler
    const count = (list: readonly string[], x: string): number => list.filter((y) => y === x).length
    for (const r of sent) {
      expect(count(app.log.ran, r.label), `${r.label}: handler ran at most once`).toBeLessThanOrEqual(1)
      expect(count(app.log.finished, r.label), `${r.label}: finished at most once`).toBeLessThanOrEqual(1)
      if (r.reply.status === 200) expect(count(app.log.ran, r.label), `${r.label}: answered 200 by its handler`).toBe(1)
    }

    // hooks: each registered before the drain ran exactly once; none ran twice
    for (const h of hooks) {
      expect(h.runs, `${h.kind} ${h.name} ran ${h.runs} times`).toBeLessThanOrEqual(1)
      if (h.registeredBeforeDrain) expect(h.runs, `${h.kind} ${h.name}, registered before the drain, ran`).toBe(1)
      if (h.runs === 1)
        expect(
          report.hooks.some((x) => x.name === h.name),
          `${h.name} in the report`,
        ).toBe(true)
    }
    // revision 3 (D1, D9): reaching the deadline with only idle sockets left is ok
    expect(report.ok, 'report.ok ⇔ nothing forced, every hook ok').toBe(report.forced.length === 0 && report.hooks.every((h) => h.ok))

    // stats() consistent, and at zero once closed
    const end = g.stats()
    expectStats(end, 'after the drain')
    // (a drain that forced requests whose handlers still run: D6.3 in options.test.ts)
    if (!report.timedOut) expect(end.requestsInFlight, 'requestsInFlight after the drain').toBe(0)
    expect(end.connections, 'connections after the drain').toBe(0)
    expect(end.state).toBe('closed')
    expect(app.server.listening, 'the listener is closed').toBe(false)
    for (const x of extras) expect(x.server.listening, `a server attached while ${x.state} was closed by the drain`).toBe(false)
    expect(rejections, 'unhandled rejections').toEqual([])
    if (process.env.ADV_DEBUG)
      console.log(
        `${s.ops.map((o) => o.op).join(',')} | ${states.map((x) => x.state[0]).join('')} | ${sent.map((r) => r.reply.status ?? r.reply.error).join(',')} | timedOut ${report.timedOut} drain ${report.drainMs} ms`,
      )
  } finally {
    diagnostics.unsubscribe('http.server.request.start', onStart)
    app.server.removeListener('connection', onConnection)
    agent.destroy()
    for (const x of extras)
      if (x.server.listening) {
        x.server.closeAllConnections()
        x.server.close()
      }
    if (g.state !== 'closed') await within(g.shutdown({ timeout: 0 }), 2000)
  }
}

describe.each(targets)('$name', (target) => {
  it("D13.1 random pause/resume/shutdown/attach/onShutdown/beforeShutdown/stats sequences with requests in flight: no hang, no unhandled rejection, every request answered exactly once, state only along the contract's table, shutdown() idempotent, ClosedError after the drain, stats back to 0", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        await using app = await target.start({ timeout: s.timeout, idleGrace: 30, hooksTimeout: 500, duringDrain: s.duringDrain })
        await runScenario(app, s)
      }),
      fcOptions(50, 50_000),
    )
  }, 120_000)
})

describe('D20: a second graceful() on the same server', () => {
  it('D20.1 node: graceful(server) twice, then requests: every request is answered exactly once (or the second call throws a clear error)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('/a', '/b', '/c'), { minLength: 1, maxLength: 5 }), async (paths) => {
        const server = http.createServer((req, res) => res.end(`ok ${req.url}`))
        const g1 = graceful(server, { signals: false, logger: false, timeout: 300 })
        let g2: ReturnType<typeof graceful> | null = null
        try {
          g2 = graceful(server, { signals: false, logger: false, timeout: 300 })
        } catch (err) {
          expect(err, 'a second graceful() may throw: a clear Error').toBeInstanceOf(Error)
        }
        server.listen(0, '127.0.0.1')
        await new Promise((r) => server.once('listening', r))
        const port = (server.address() as { port: number }).port
        try {
          const replies = paths.map((p) => get(port, p, false))
          const r = await within(Promise.all(replies.map((x) => x.promise)), 2000)
          expect(r.hung, `requests to a server with two graceful() calls were never answered (${server.listenerCount('request')} 'request' listeners)`).toBe(
            false,
          )
          for (const [i, x] of replies.entries()) {
            expect(x.reply.settled).toBe(1)
            expect(x.reply.body).toBe(`ok ${paths[i]}`)
          }
        } finally {
          await within(Promise.all([g1.shutdown({ timeout: 0 }), g2?.shutdown({ timeout: 0 })]), 2000)
          server.closeAllConnections()
          server.close()
        }
      }),
      fcOptions(5, 15_000),
    )
  })
})
