import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { targets } from '../conformance/targets.js'
import { requestStarted } from '../helpers/http.js'
import { RawClient } from '../helpers/raw.js'
import { fcOptions, get, within, failOnUnhandledRejections } from './helpers.js'

/**
 * The pause modes and the announce phase against odd timing, on every target: a client that
 * leaves while its request is held (D13), requests in the announce phase with either
 * `duringDrain` (D4), a server attached while paused (D13, D17).
 */

failOnUnhandledRejections()

function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

describe.each(targets)('$name', (target) => {
  it('D13.3 pause({ mode: "hold" }): clients that leave while their request is held, then resume(), maxWait or shutdown() — requestsInFlight and connections back to 0, the handler never runs for a client that left, the drain is clean', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom('resume', 'maxWait', 'shutdown'),
        fc.constantFrom('destroy', 'end'),
        async (leavers, stayers, release, how) => {
          await using app = await target.start({ timeout: 800 })
          const maxWait = release === 'maxWait' ? 150 : 5000
          await app.g.pause({ mode: 'hold', maxWait })
          const serverSide: Array<Promise<unknown>> = []
          const onConnection = (s: net.Socket): void => {
            serverSide.push(once(s, 'close'))
          }
          app.server.on('connection', onConnection)
          const left: RawClient[] = []
          for (let i = 0; i < leavers; i++) {
            const c = await RawClient.connect(app.port)
            c.get(`/fast?left=${i}`)
            left.push(c)
          }
          // (the leavers' sockets are the first `leavers` connections)
          while (serverSide.length < leavers) await new Promise((r) => setImmediate(r))
          app.server.off('connection', onConnection)
          const leaversClosed = serverSide.slice(0, leavers)
          const started = Array.from({ length: stayers }, (_, i) => requestStarted(`/fast?stay=${i}`))
          const stay = Array.from({ length: stayers }, (_, i) => get(app.port, `/fast?stay=${i}`, false))
          // every stayer's request reached the server and is held (not still in the accept queue)
          expect((await within(Promise.all(started), 2000)).hung, 'the held requests reached the server').toBe(false)
          // held: the stayers have not been answered; the leavers go now
          for (const c of left) how === 'destroy' ? c.destroy() : c.socket.end()
          await within(Promise.all(left.map((c) => c.closed(2000).catch(() => {}))), 2500)
          // destroy: the server has seen each leaver's socket close before resume() (end: a half-close, the client may still read)
          if (how === 'destroy') expect((await within(Promise.all(leaversClosed), 2000)).hung, 'server-side close of the leavers').toBe(false)
          if (release === 'resume') await app.g.resume()
          // shutdown: the drain releases the held requests (D3: served with Connection: close)
          const drain = release === 'shutdown' ? app.g.shutdown() : null
          const answered = await within(Promise.all(stay.map((s) => s.promise)), 3000)
          expect(answered.hung, `${release}: the held requests that stayed were answered`).toBe(false)
          for (const s of stay) {
            expect(s.reply.settled).toBe(1)
            expect(s.reply.status, `${release}: held request answered (got ${s.reply.error}; stats ${JSON.stringify(app.g.stats())})`).toBe(
              release === 'maxWait' ? 503 : 200,
            )
          }
          const ranLeft = app.log.ran.filter((x) => x.includes('?left='))
          const statsBefore = app.g.stats()
          const report = await within(drain ?? app.g.shutdown(), 3000)
          const after = app.g.stats()
          const context = `${leavers} left (${how}) while held, ${stayers} stayed, released by ${release}: handlers run for clients that left ${ranLeft.length}, requestsInFlight ${statsBefore.requestsInFlight} before the drain / ${after.requestsInFlight} after, connections ${statsBefore.connections}`
          expect(report.hung, `${context}: the drain ended`).toBe(false)
          if (!report.hung && 'value' in report) expect(report.value.timedOut, `${context}: the drain did not time out`).toBe(false)
          expect(after.requestsInFlight, context).toBe(0)
          expect(after.connections, context).toBe(0)
          if (release === 'resume' && how === 'destroy')
            expect(ranLeft, `${context}: a held request whose connection the server saw close is not run`).toEqual([])
        },
      ),
      fcOptions(15, 25_000),
    )
  })

  it('D4.2 during the announce phase (readinessDelay) requests are served normally — 200 with Connection: close — whatever `duringDrain` says; 503 only once the listener closed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('close' as const, 'reject' as const), fc.integer({ min: 0, max: 3 }), async (duringDrain, n) => {
        await using app = await target.start({ readinessDelay: 300, duringDrain, timeout: 2000 })
        const draining = app.g.shutdown()
        expect(app.g.state).toBe('draining')
        // fresh connections while the listener is still open: the announce phase
        const replies = await Promise.all(Array.from({ length: n + 1 }, (_, i) => get(app.port, `/fast?announce=${i}`, false).promise))
        for (const r of replies) {
          expect(
            r.status,
            `duringDrain: '${duringDrain}': a request in the announce phase (listener open, readiness 503) was answered ${r.status ?? r.error}`,
          ).toBe(200)
          expect(r.headers?.connection).toBe('close')
        }
        await draining
      }),
      {
        ...fcOptions(6, 15_000),
        examples: [
          ['reject', 0],
          ['close', 1],
        ],
      },
    )
  })

  it('D13.4 a server attached while paused with mode "refuse" does not take new connections either; resume() opens it again', async () => {
    await using app = await target.start({ timeout: 500 })
    await app.g.pause({ mode: 'refuse' })
    const second = http.createServer((_req, res) => res.end('second'))
    second.listen(0, '127.0.0.1')
    await once(second, 'listening')
    const port = (second.address() as net.AddressInfo).port
    try {
      ;(app.g as unknown as { attach(s: http.Server): unknown }).attach(second)
      expect(await connectResult(port), 'a server attached while paused (refuse) still takes new connections').toBe('ECONNREFUSED')
      await app.g.resume()
      expect(await connectResult(port)).toBe('connected')
    } finally {
      await within(app.g.shutdown({ timeout: 0 }), 2000)
      second.closeAllConnections()
      second.close()
    }
  })
})

describe.each(targets)('$name: pause changes in progress when the drain starts', (target) => {
  it('D13.5 pause({ mode: "refuse" }), then 1–3 pause/resume calls not awaited (each may listen again), and shutdown() a few event-loop turns later: once shutdown() resolved the listener is closed, and state never left draining/closed', async () => {
    type Change = 'pause-reject' | 'pause-hold' | 'resume' | 'pause-refuse-other-maxWait'
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Change>('pause-reject', 'pause-hold', 'resume', 'pause-refuse-other-maxWait'), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        async (changes, ticks, attachNew) => {
          await using app = await target.start({ timeout: 300 })
          const extra = http.createServer((_req, res) => res.end('extra'))
          const first = app.g.pause({ mode: 'refuse', maxWait: 10 })
          const calls = [
            first,
            ...changes.map((change) =>
              change === 'resume'
                ? app.g.resume()
                : change === 'pause-reject'
                  ? app.g.pause({ mode: 'reject', maxWait: 10 })
                  : change === 'pause-hold'
                    ? app.g.pause({ mode: 'hold', maxWait: 10 })
                    : app.g.pause({ mode: 'refuse', maxWait: 11 }),
            ),
          ]
          for (let i = 0; i < ticks; i++) await new Promise((r) => setImmediate(r))
          if (attachNew) {
            // one more server attached meanwhile (what D13.1 did when it found this)
            extra.listen(0, '127.0.0.1')
            await once(extra, 'listening')
            ;(app.g as unknown as { attach(s: http.Server): unknown }).attach(extra)
          }
          const drain = app.g.shutdown()
          const states: string[] = [app.g.state]
          const settled = await within(Promise.allSettled(calls), 3000)
          states.push(app.g.state)
          const r = await within(drain, 3000)
          states.push(app.g.state)
          if (extra.listening) {
            extra.closeAllConnections()
            extra.close()
          }
          const listeningAfter = app.server.listening
          const context = `listener open after the drain: ${listeningAfter}; pause(refuse), ${changes.join(', ')}, ${attachNew ? 'a server attached, ' : ''}then shutdown() after ${ticks} turns: calls ${settled.hung ? 'hung' : 'value' in settled ? settled.value.map((x) => x.status).join('/') : '?'}; states ${states.join(' → ')}`
          expect(r.hung, `${context}: the drain ended`).toBe(false)
          expect(
            states.every((st) => st === 'draining' || st === 'closed'),
            `${context}: state after the drain began`,
          ).toBe(true)
          expect(app.server.listening, `${context}: the listener is open after shutdown() resolved`).toBe(false)
          expect(await connectResult(app.port), `${context}: a new connection after the drain`).toBe('ECONNREFUSED')
        },
      ),
      // the sequence D13.1 found (seed -518716819): refuse, refuse with another maxWait, reject, one turn
      {
        ...fcOptions(40, 20_000),
        examples: [
          [['pause-refuse-other-maxWait', 'pause-reject'], 0, true],
          [['pause-reject'], 0, false],
        ],
      },
    )
  })
})

describe.each(targets)('$name: the sequence D13.1 found', (target) => {
  it("D13.6 pause(refuse), pause(refuse, another maxWait), pause(reject) — none awaited — another server listening meanwhile, then shutdown(): the app's listener is closed once shutdown() resolved", async () => {
    await using app = await target.start({ timeout: 150 })
    const calls = [app.g.pause({ mode: 'refuse', maxWait: 10 }), app.g.pause({ mode: 'refuse', maxWait: 11 }), app.g.pause({ mode: 'reject', maxWait: 10 })]
    const extra = http.createServer((_req, res) => res.end('extra'))
    extra.listen(0, '127.0.0.1')
    await once(extra, 'listening')
    ;(app.g as unknown as { attach(s: http.Server): unknown }).attach(extra)
    const drain = app.g.shutdown()
    const states = [app.g.state]
    const settled = await Promise.allSettled(calls)
    states.push(app.g.state)
    const r = await within(drain, 3000)
    states.push(app.g.state)
    const listening = app.server.listening
    const connect = await connectResult(app.port)
    if (extra.listening) {
      extra.closeAllConnections()
      extra.close()
    }
    const context = `calls ${settled.map((x) => x.status).join('/')}, states ${states.join(' → ')}, listener open after the drain: ${listening}, a new connection: ${connect}`
    expect(r.hung, context).toBe(false)
    expect(listening, context).toBe(false)
    expect(connect, context).toBe('ECONNREFUSED')
    expect(
      states.every((st) => st === 'draining' || st === 'closed'),
      context,
    ).toBe(true)
  })
})
