import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { expect } from 'vitest'
import type { ShutdownReport } from '@quiesce/core'
import { connectOutcome, listenerClosed, request, requestStarted } from '../helpers/http.js'
import { RawClient } from '../helpers/raw.js'
import type { Target } from './fixtures/app.js'

/**
 * The drain contract, written once (graphql-http's audits, http-terminator's createTests):
 * every case carries its own sub-id of the contract (D2.1, D2.2, …; ids.test.ts keeps them unique)
 * in its title and runs against every target.
 */
export interface Case {
  readonly id: `D${number}` | 'close'
  readonly title: string
  /** When a case cannot apply to a target, say why; it then runs an assertion of that instead. */
  readonly run: (target: Target) => Promise<void>
}

const OK = (r: { status: number }) => expect(r.status).toBe(200)

export const cases: Case[] = [
  {
    id: 'D1.1',
    title: 'an idle keep-alive socket is closed once quiet for idleGrace — not at the instant the drain starts — and the drain ends',
    async run(target) {
      await using app = await target.start({ idleGrace: 150 })
      const c = await RawClient.connect(app.port)
      c.get('/fast')
      const res = await c.response()
      OK(res)
      expect(res.headers.connection).toBe('keep-alive')
      const started = performance.now()
      const report = await app.g.shutdown()
      const fin = await c.ended()
      // closed only after the grace counted from its last activity (measured here, at the client,
      // the response arrives a little after the server finished it: a margin)…
      expect(fin - res.at).toBeGreaterThanOrEqual(130)
      // …and soon after it, not at keepAliveTimeout (60 s)
      expect(fin - started).toBeLessThan(1500)
      expect(report.socketsClosedIdle).toBeGreaterThanOrEqual(1)
      expect(report.ok).toBe(true)
      expect(report.socketsForced).toBe(0)
    },
  },
  {
    id: 'D1.2',
    title: 'a request sent on an idle socket within idleGrace after the drain started is served, with Connection: close',
    async run(target) {
      await using app = await target.start({ idleGrace: 400 })
      const c = await RawClient.connect(app.port)
      c.get('/fast?first')
      OK(await c.response())
      const done = app.g.shutdown()
      c.get('/fast?second')
      const second = await c.response(2)
      OK(second)
      expect(second.body).toBe('fast')
      expect(second.headers.connection).toBe('close')
      await c.ended()
      const report = await done
      expect(report.ok).toBe(true)
      expect(app.log.ran).toContain('GET /fast?second')
    },
  },
  {
    id: 'D1.3',
    title:
      'a busy client (it reused its socket 100 ms after an answer) is not taken for idle after idleGrace: its next request 120 ms into the drain is served',
    async run(target) {
      await using app = await target.start({ idleGrace: 50 })
      const c = await RawClient.connect(app.port)
      c.get('/fast?1')
      await c.response(1)
      // the client's think time: part of the scenario, not a synchronisation
      await new Promise((r) => setTimeout(r, 100))
      c.get('/fast?2')
      await c.response(2)
      const report = app.g.shutdown()
      await new Promise((r) => setTimeout(r, 120))
      c.get('/fast?3')
      const third = await c.response(3)
      OK(third)
      expect(third.headers.connection).toBe('close')
      await c.ended()
      expect((await report).ok).toBe(true)
    },
  },
  {
    id: 'D2.1',
    title: 'an in-flight request runs to completion; its response carries Connection: close and the socket gets FIN right after',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/slow?ms=300')
      await app.log.waitRan('GET /slow?ms=300')
      const report = app.g.shutdown()
      const res = await c.response()
      OK(res)
      expect(res.body).toBe('slow')
      expect(res.headers.connection).toBe('close')
      const fin = await c.ended()
      expect(fin - res.at).toBeLessThan(100)
      const r = await report
      expect(r.ok).toBe(true)
      expect(r.requestsCompleted).toBeGreaterThanOrEqual(1)
      expect(r.requestsAborted).toBe(0)
    },
  },
  {
    id: 'D2.2',
    title: 'pipelining: the Connection: close marker moves to the last dispatched request, and every dispatched request is answered',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/slow?ms=200')
      await app.log.waitRan('GET /slow?ms=200')
      const report = app.g.shutdown()
      c.write('GET /slow?ms=1&p=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow?ms=1&p=2 HTTP/1.1\r\nHost: x\r\n\r\n')
      const third = await c.response(3)
      const [first, second] = c.responses
      expect([first?.body, second?.body, third.body]).toEqual(['slow', 'slow', 'slow'])
      expect(first?.headers.connection).not.toBe('close')
      expect(second?.headers.connection).not.toBe('close')
      expect(third.headers.connection).toBe('close')
      await c.ended()
      expect((await report).ok).toBe(true)
      expect(app.log.ran).toEqual(expect.arrayContaining(['GET /slow?ms=1&p=1', 'GET /slow?ms=1&p=2']))
    },
  },
  {
    id: 'D2.3',
    title: 'pipelining with handlers that answer synchronously: every dispatched request is answered before the socket closes, the last with Connection: close',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/fast?warm')
      await c.response()
      const report = app.g.shutdown()
      c.write('GET /fast?p=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /fast?p=2 HTTP/1.1\r\nHost: x\r\n\r\nGET /fast?p=3 HTTP/1.1\r\nHost: x\r\n\r\n')
      const last = await c.response(4)
      expect(c.responses.map((r) => r.body)).toEqual(['fast', 'fast', 'fast', 'fast'])
      expect(last.headers.connection).toBe('close')
      await c.ended()
      expect(c.responses.length).toBe(4)
      expect(app.log.ran).toEqual(expect.arrayContaining(['GET /fast?p=1', 'GET /fast?p=2', 'GET /fast?p=3']))
      expect((await report).ok).toBe(true)
    },
  },
  {
    id: 'D2.4',
    title: 'a request sent after the FIN that follows the last response is never handled; the socket closes within the linger',
    async run(target) {
      await using app = await target.start({ linger: 300 })
      const c = await RawClient.connect(app.port, { allowHalfOpen: true })
      c.get('/slow?ms=100')
      await app.log.waitRan('GET /slow?ms=100')
      const report = app.g.shutdown()
      const r = await c.response()
      expect(r.headers.connection).toBe('close')
      await c.ended()
      // a client that ignores both the header and the FIN (and, half-open, never closes its side)
      c.get('/fast?after-fin')
      const rep = await report
      // the server's side closed within the linger, so the drain ended
      expect(performance.now() - r.at).toBeLessThan(1000)
      expect(rep.ok).toBe(true)
      expect(app.log.ran).not.toContain('GET /fast?after-fin')
      expect(c.responses.length).toBe(1)
      c.destroy()
    },
  },
  {
    id: 'D2.5',
    title: 'a streaming response that carries Connection: close arrives whole, and a request pipelined behind it is answered before the socket closes',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/fast?warm')
      await c.response()
      void app.g.shutdown()
      // headers go out at once (with the close marker); the body takes 200 ms
      c.get('/stream?n=3&every=70')
      await app.log.waitRan('GET /stream?n=3&every=70')
      c.get('/fast?late')
      const late = await c.response(3)
      const stream = c.responses[1]
      expect(stream?.body).toBe('chunk 0\nchunk 1\nchunk 2\n')
      expect(late.body).toBe('fast')
      expect(late.headers.connection).toBe('close')
      await c.ended()
    },
  },
  {
    id: 'D3.1',
    title: 'a request arriving on an existing connection during the drain is served with Connection: close',
    async run(target) {
      await using app = await target.start({ idleGrace: 2000 })
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      OK(await request(app.port, '/fast?warm', { agent }))
      const holder = await RawClient.connect(app.port)
      holder.get('/slow?ms=300')
      await app.log.waitRan('GET /slow?ms=300')
      const report = app.g.shutdown()
      const during = await request(app.port, '/fast?during', { agent })
      OK(during)
      expect(during.headers.connection).toBe('close')
      await holder.response()
      expect((await report).ok).toBe(true)
      agent.destroy()
    },
  },
  {
    id: 'D3.2',
    title: "with duringDrain: 'reject', a request during the drain is answered 503 with Retry-After and Connection: close, and its handler does not run",
    async run(target) {
      await using app = await target.start({ duringDrain: 'reject', idleGrace: 2000, retryAfter: 7 })
      const c = await RawClient.connect(app.port)
      c.get('/fast?warm')
      await c.response()
      const holder = await RawClient.connect(app.port)
      holder.get('/slow?ms=300')
      await app.log.waitRan('GET /slow?ms=300')
      const report = app.g.shutdown()
      c.get('/fast?during')
      const r = await c.response(2)
      expect(r.status).toBe(503)
      expect(r.headers['retry-after']).toBe('7')
      expect(r.headers.connection).toBe('close')
      await c.ended()
      expect(app.log.ran).not.toContain('GET /fast?during')
      const rep = await report
      expect(rep.requestsRejected).toBe(1)
    },
  },
  {
    id: 'D4.1',
    title: 'readinessDelay: during the announce phase new connections are served with Connection: close and readiness says 503; then the listener closes',
    async run(target) {
      await using app = await target.start({ readinessDelay: 400 })
      expect(app.g.ready).toBe(true)
      const ready = await request(app.port, '/ready')
      expect(ready.status).toBe(200)
      const closed = listenerClosed(app.server)
      const report = app.g.shutdown()
      expect(app.g.state).toBe('draining')
      expect(app.g.draining.aborted).toBe(true)
      expect(app.g.ready).toBe(false)
      const notReady = await request(app.port, '/ready')
      expect(notReady.status).toBe(503)
      // the listener is still open: a brand-new connection is served, and told to close
      const fresh = await request(app.port, '/fast?announce')
      OK(fresh)
      expect(fresh.headers.connection).toBe('close')
      await closed
      expect(await connectOutcome(app.port)).toBe('ECONNREFUSED')
      const r = await report
      expect(r.ok).toBe(true)
      expect(r.drainMs).toBeGreaterThanOrEqual(390)
    },
  },
  {
    id: 'D5.1',
    title: 'a socket with half-sent headers is closed after headerGrace and never holds the drain',
    async run(target) {
      await using app = await target.start({ headerGrace: 200 })
      const c = await RawClient.connect(app.port)
      c.write('GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow')
      const t0 = performance.now()
      const report = await app.g.shutdown()
      const closed = await c.closed()
      expect(closed - t0).toBeGreaterThanOrEqual(190)
      expect(closed - t0).toBeLessThan(1200)
      expect(report.timedOut).toBe(false)
      expect(app.log.ran).toEqual([])
    },
  },
  {
    id: 'D5.2',
    title: 'headers that complete within headerGrace are served, with Connection: close',
    async run(target) {
      await using app = await target.start({ headerGrace: 1000 })
      const c = await RawClient.connect(app.port)
      c.write('GET /fast?late-headers HTTP/1.1\r\nHost: 127.0.0.1\r\n')
      const report = app.g.shutdown()
      await listenerClosed(app.server).catch(() => {})
      c.write('\r\n')
      const r = await c.response()
      OK(r)
      expect(r.headers.connection).toBe('close')
      await c.ended()
      expect((await report).ok).toBe(true)
    },
  },
  {
    id: 'D5.3',
    title: 'a connected socket that never sends a byte is closed after headerGrace',
    async run(target) {
      await using app = await target.start({ headerGrace: 150 })
      const c = await RawClient.connect(app.port)
      const t0 = performance.now()
      const report = await app.g.shutdown()
      const closed = await c.closed()
      expect(closed - t0).toBeLessThan(1000)
      expect(report.timedOut).toBe(false)
    },
  },
  {
    id: 'D6.1',
    title:
      'abortGrace before the deadline a running request has its signal aborted with the "shutdown deadline" reason, and answering then is in time: nothing forced',
    async run(target) {
      await using app = await target.start({ abortGrace: 300 })
      const c = await RawClient.connect(app.port)
      c.get('/never')
      await app.log.waitRan('GET /never')
      const report = app.g.shutdown({ timeout: 600 })
      expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
      const r = await c.response()
      expect(r.body).toBe('aborted')
      const rep = await report
      expect(rep).toMatchObject({ ok: true, timedOut: false, forced: [] })
      expect(rep.drainMs).toBeLessThan(600)
    },
  },
  {
    id: 'D6.2',
    title: 'a handler that ignores the abort is destroyed after abortGrace, and the report names it (method, URL, age)',
    async run(target) {
      await using app = await target.start({ abortGrace: 50 })
      const c = await RawClient.connect(app.port)
      c.get('/never?react=0')
      await app.log.waitRan('GET /never?react=0')
      const t0 = performance.now()
      const report: ShutdownReport = await app.g.shutdown({ timeout: 300 })
      await c.closed()
      expect(performance.now() - t0).toBeLessThan(1500)
      expect(app.log.aborts).toEqual([{ url: '/never?react=0', code: 'ERR_QUIESCE_SHUTDOWN_DEADLINE' }])
      expect(report.timedOut).toBe(true)
      const forced = report.forced.find((f) => f.kind === 'request')
      expect(forced).toMatchObject({ kind: 'request', method: 'GET', url: '/never?react=0', protocol: 'http/1.1' })
      expect((forced as { ageMs: number }).ageMs).toBeGreaterThanOrEqual(250)
      expect(report.socketsForced).toBe(1)
    },
  },
  {
    id: 'D7.1',
    title: "shutdown resolves once the server emitted 'close', within milliseconds of the last response, never waiting on keepAliveTimeout",
    async run(target) {
      await using app = await target.start()
      const agent = new http.Agent({ keepAlive: true })
      OK(await request(app.port, '/fast', { agent }))
      let closeAt = 0
      app.server.once('close', () => {
        closeAt = performance.now()
      })
      const slow = request(app.port, '/slow?ms=200', { agent })
      await app.log.waitRan('GET /slow?ms=200')
      const report = app.g.shutdown()
      const res = await slow
      const lastByte = performance.now()
      OK(res)
      const r = await report
      expect(closeAt).toBeGreaterThan(0)
      expect(closeAt - lastByte).toBeLessThan(100)
      expect(r.drainMs).toBeLessThan(1000)
      expect(app.server.listening).toBe(false)
      agent.destroy()
    },
  },
  {
    id: 'D7.2',
    title: 'shutdown() is idempotent: every call returns the same promise',
    async run(target) {
      await using app = await target.start()
      const a = app.g.shutdown()
      const b = app.g.shutdown()
      expect(a).toBe(b)
      const r = await a
      expect(await app.g.shutdown()).toBe(r)
      expect(app.g.state).toBe('closed')
    },
  },
  {
    id: 'D10.1',
    title: 'a client that disconnects mid-request aborts the request signal with the "client closed" reason',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/never')
      await app.log.waitRan('GET /never')
      c.destroy()
      expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_CLIENT_CLOSED')
    },
  },
  {
    id: 'D10.2',
    title: "1,000 requests on one keep-alive socket leave the socket's listener count unchanged (D15)",
    async run(target) {
      await using app = await target.start()
      const accepted = once(app.server, 'connection')
      const c = await RawClient.connect(app.port)
      const [s] = (await accepted) as [net.Socket]
      c.get('/fast?0')
      await c.response(1)
      const count = (): number => s.eventNames().reduce((n, e) => n + s.listenerCount(e), 0)
      const before = count()
      for (let i = 1; i <= 1000; i++) {
        c.get(`/fast?${i}`)
        await c.response(i + 1)
      }
      expect(count()).toBe(before)
      c.destroy()
    },
  },
  {
    id: 'D11.1',
    title: 'a handler that throws or rejects answers 500, and a concurrent request is untouched',
    async run(target) {
      await using app = await target.start()
      const slow = request(app.port, '/slow?ms=150')
      const [thrown, rejected] = await Promise.all([request(app.port, '/throw'), request(app.port, '/reject')])
      expect(thrown.status).toBe(500)
      expect(rejected.status).toBe(500)
      const s = await slow
      OK(s)
      expect(s.body).toBe('slow')
      expect(app.g.state).toBe('running')
    },
  },
  {
    id: 'D10.3',
    title: 'requestSignal() for a request that finished normally never aborts',
    async run(target) {
      await using app = await target.start()
      OK(await request(app.port, '/fast'))
      expect(app.log.aborts).toEqual([])
    },
  },
  {
    id: 'close',
    title: "the framework's own close path drains an in-flight request with the same contract",
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/slow?ms=250')
      await app.log.waitRan('GET /slow?ms=250')
      const closing = app.frameworkClose()
      const r = await c.response()
      OK(r)
      expect(r.headers.connection).toBe('close')
      await c.ended()
      await closing
      expect(app.g.state).toBe('closed')
      expect(app.server.listening).toBe(false)
    },
  },
  {
    id: 'D2.6',
    title: 'a streaming response whose headers went out before the drain still ends its socket right after (idle grace, then FIN)',
    async run(target) {
      await using app = await target.start({ idleGrace: 100 })
      const c = await RawClient.connect(app.port)
      c.get('/stream?n=4&every=60')
      await app.log.waitRan('GET /stream?n=4&every=60')
      const report = app.g.shutdown()
      const r = await c.response()
      expect(r.body).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\n')
      const fin = await c.ended()
      expect(fin - r.at).toBeLessThan(600)
      expect((await report).ok).toBe(true)
    },
  },
  {
    id: 'D13.1',
    title: "pause({ mode: 'refuse' }): a new connection is refused while an open keep-alive connection keeps working; resume() listens on the same port again",
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/fast?before')
      OK(await c.response())
      await app.g.pause({ mode: 'refuse' })
      expect(app.g.state).toBe('paused')
      expect(app.g.ready).toBe(true)
      expect(await connectOutcome(app.port)).toBe('ECONNREFUSED')
      c.get('/fast?during-pause')
      const during = await c.response(2)
      OK(during)
      expect(during.headers.connection).toBe('keep-alive')
      await app.g.resume()
      expect(app.g.state).toBe('running')
      OK(await request(app.port, '/fast?after'))
      c.destroy()
    },
  },
  {
    id: 'D13.2',
    title: "pause({ mode: 'reject' }): new requests get 503 with Retry-After and Connection: close, and their handler does not run",
    async run(target) {
      await using app = await target.start({ retryAfter: 3 })
      await app.g.pause({ mode: 'reject' })
      const c = await RawClient.connect(app.port)
      c.get('/fast?paused')
      const r = await c.response()
      expect(r.status).toBe(503)
      expect(r.headers['retry-after']).toBe('3')
      expect(r.headers.connection).toBe('close')
      await c.ended()
      expect(app.log.ran).not.toContain('GET /fast?paused')
      await app.g.resume()
      OK(await request(app.port, '/fast?resumed'))
    },
  },
  {
    id: 'D13.3',
    title: "pause({ mode: 'hold' }): a request made during the pause is answered after resume(); one that waits past maxWait gets 503",
    async run(target) {
      await using app = await target.start()
      await app.g.pause({ mode: 'hold', maxWait: 5000 })
      const held = request(app.port, '/fast?held')
      const order: string[] = []
      void held.then(() => order.push('answered'))
      // the request is parked before its handler: wait until the server has parsed it
      await requestStarted('/fast?held')
      expect(app.log.ran).not.toContain('GET /fast?held')
      order.push('resume')
      await app.g.resume()
      const r = await held
      OK(r)
      expect(order).toEqual(['resume', 'answered'])
      expect(app.log.ran).toContain('GET /fast?held')

      await app.g.pause({ mode: 'hold', maxWait: 200 })
      const t0 = performance.now()
      const late = await request(app.port, '/fast?too-long')
      expect(late.status).toBe(503)
      expect(late.headers['retry-after']).toBeDefined()
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190)
      expect(app.log.ran).not.toContain('GET /fast?too-long')
      await app.g.resume()
    },
  },
  {
    id: 'D13.4',
    title: '100 pause/resume cycles add no listeners, and shutdown() works from the paused state',
    async run(target) {
      await using app = await target.start()
      const count = (e: NodeJS.EventEmitter): number => e.eventNames().reduce((n, name) => n + e.listenerCount(name), 0)
      const serverBefore = count(app.server)
      const processBefore = count(process)
      for (let i = 0; i < 100; i++) {
        await app.g.pause({ mode: i % 2 === 0 ? 'refuse' : 'reject' })
        await app.g.resume()
      }
      expect(count(app.server)).toBe(serverBefore)
      expect(count(process)).toBe(processBefore)
      OK(await request(app.port, '/fast'))
      await app.g.pause()
      const report = await app.g.shutdown()
      expect(report.ok).toBe(true)
      expect(app.g.state).toBe('closed')
      await expect(app.g.resume()).rejects.toMatchObject({ code: 'ERR_QUIESCE_CLOSED' })
    },
  },
  {
    id: 'D14.1',
    title: 'bad input throws a TypeError naming the option and what was expected',
    async run(target) {
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ timeout: -1 }, /`timeout` must be a number of milliseconds from 0 to 2147483647 .*; received -1/],
        [{ timeout: Number.NaN }, /`timeout` .* received NaN/],
        [{ timeout: '10s' }, /`timeout` .* received "10s"/],
        [{ idleGrace: Infinity }, /`idleGrace`/],
        [{ readinessDelay: -5 }, /`readinessDelay`/],
        [{ signals: ['SIGKILL'] }, /`signals` must be a catchable signal \(SIGKILL cannot be caught\)/],
        [{ signals: ['SIGSTOP'] }, /`signals`.*SIGSTOP/],
        [{ signals: ['SIGSEGV'] }, /`signals`.*SIGSEGV/],
        [{ signals: 'SIGTERM' }, /`signals` must be an array of signal names or false/],
        [{ duringDrain: 'drop' }, /`duringDrain`/],
        [{ logger: { info() {} } }, /`logger.warn` must be a function/],
        [{ timout: 1000 }, /`timout` must be one of the known options/],
      ]
      for (const [options, message] of bad) {
        let error: unknown
        try {
          await target.start(options)
        } catch (err) {
          error = err
        }
        expect(error, JSON.stringify(options)).toBeInstanceOf(TypeError)
        expect((error as Error).message).toMatch(message)
        expect((error as { code?: string }).code).toBe('ERR_QUIESCE_INVALID_OPTION')
      }
      await using app = await target.start()
      expect(() => app.g.onShutdown(42 as unknown as () => void)).toThrow(/`hook` must be a function; received 42/)
      expect(() => app.g.onShutdown(() => {}, { timeout: -1 })).toThrow(TypeError)
      expect(() => app.g.pause({ mode: 'sleep' as 'hold' })).toThrow(/`mode` must be "refuse", "reject" or "hold"/)
      expect(() => app.g.shutdown({ timeout: -3 })).toThrow(/`timeout`/)
    },
  },
  {
    id: 'D21.1',
    title: "an upload accepted through 'checkContinue' (100 Continue) is a request in flight: its body arrives whole after the drain starts and it is answered",
    async run(target) {
      await using app = await target.start({ headerGrace: 100 })
      // the app takes uploads itself, before its framework sees them
      app.server.on('checkContinue', (req, res) => {
        res.writeContinue()
        let body = ''
        req
          .setEncoding('utf8')
          .on('data', (d: string) => {
            body += d
          })
          .on('end', () => res.end(`echo:${body.length}`))
      })
      const c = await RawClient.connect(app.port)
      c.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n')
      expect((await c.response(1)).status).toBe(100)
      expect(app.g.stats().requestsInFlight).toBe(1)
      const done = app.g.shutdown()
      // the body comes well after headerGrace: a socket "with no request" would be cut by now
      await new Promise((resolve) => setTimeout(resolve, 300))
      c.write('0123456789')
      const r = await c.response(2)
      expect(r).toMatchObject({ status: 200, body: 'echo:10' })
      expect(r.headers.connection).toBe('close')
      const report = await done
      expect(report).toMatchObject({ ok: true, requestsCompleted: 1 })
    },
  },
  {
    id: 'D21.4',
    title: "a request with another Expect, accepted through 'checkExpectation', is a request in flight too",
    async run(target) {
      await using app = await target.start({ headerGrace: 100 })
      app.server.on('checkExpectation', (_req, res) => {
        setTimeout(() => res.end('expected'), 300)
      })
      const c = await RawClient.connect(app.port)
      c.get('/upload', 'Expect: x-custom\r\n')
      await new Promise<void>((resolve) => app.server.once('checkExpectation', () => resolve()))
      expect(app.g.stats().requestsInFlight).toBe(1)
      const report = await app.g.shutdown()
      const r = await c.response(1)
      expect(r).toMatchObject({ status: 200, body: 'expected' })
      expect(r.headers.connection).toBe('close')
      expect(report).toMatchObject({ ok: true, requestsCompleted: 1 })
    },
  },
  {
    id: 'D21.2',
    title:
      "the app's own Connection: keep-alive does not survive the drain: the response says close, and the client's next request on that socket is never cut",
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      c.get('/keepalive?ms=300')
      await app.log.waitRan('GET /keepalive?ms=300')
      const done = app.g.shutdown()
      const r = await c.response(1)
      expect(r.body).toBe('keepalive')
      expect(r.headers.connection).toBe('close')
      await c.ended()
      expect(c.error).toBeNull()
      expect((await done).ok).toBe(true)
    },
  },
  {
    id: 'D21.3',
    title: 'pipelined requests whose client leaves have their signals aborted and stop being counted',
    async run(target) {
      await using app = await target.start()
      const c = await RawClient.connect(app.port)
      const one = 'GET /never?react=0&n=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
      c.write(one + one.replace('n=1', 'n=2') + one.replace('n=1', 'n=3'))
      await app.log.waitRan('GET /never?react=0&n=1')
      // Node dispatches pipelined requests while the first response is pending (D2)
      await app.log.waitRan('GET /never?react=0&n=3')
      expect(app.g.stats().requestsInFlight).toBe(3)
      c.destroy()
      const codes = await Promise.all([1, 2, 3].map((n) => app.log.waitAbort(`/never?react=0&n=${n}`)))
      expect(codes).toEqual(['ERR_QUIESCE_CLIENT_CLOSED', 'ERR_QUIESCE_CLIENT_CLOSED', 'ERR_QUIESCE_CLIENT_CLOSED'])
      expect(app.g.stats()).toMatchObject({ requestsInFlight: 0, connections: 0 })
      expect(await app.g.shutdown()).toMatchObject({ ok: true, requestsAborted: 0 })
      expect(app.g.stats().requestsInFlight).toBe(0)
    },
  },
  {
    id: 'D6.3',
    title:
      '`timeout` is the hard bound: signals abort abortGrace before it, and a request that ignores them is cut and the server closed at the timeout, not abortGrace later',
    async run(target) {
      await using app = await target.start({ abortGrace: 300 })
      const c = await RawClient.connect(app.port)
      c.get('/never?react=0')
      await app.log.waitRan('GET /never?react=0')
      const t0 = performance.now()
      const done = app.g.shutdown({ timeout: 400 })
      await app.log.waitAbort('/never?react=0')
      const abortedAt = performance.now() - t0
      const report = await done
      const closedAt = performance.now() - t0
      await c.closed()
      // abort at 400 − 300 = 100 ms; cut at 400 ms (before: abort at 400, cut at 700)
      expect(abortedAt).toBeGreaterThanOrEqual(90)
      expect(abortedAt).toBeLessThan(380)
      expect(closedAt).toBeGreaterThanOrEqual(390)
      expect(closedAt).toBeLessThan(650)
      expect(report).toMatchObject({ ok: false, timedOut: true, socketsForced: 1 })
    },
  },
  {
    id: 'D1.4',
    title: 'idle keep-alive sockets still open at the deadline are closed without counting as forced: the report is ok',
    async run(target) {
      // idleGrace above timeout: the README's proxy advice (leave idle sockets to the proxy until the deadline)
      await using app = await target.start({ timeout: 300, idleGrace: 600 })
      const c = await RawClient.connect(app.port)
      c.get('/fast')
      OK(await c.response())
      const report = await app.g.shutdown()
      await c.closed()
      expect(report).toMatchObject({ ok: true, timedOut: true, socketsForced: 0, forced: [] })
    },
  },
  {
    id: 'D14.2',
    title: 'a duration a timer cannot hold (above 2^31−1 ms), a misspelled signal, and options meaningless together are refused at the call, naming the option',
    async run(target) {
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [
          { timeout: 2 ** 31 },
          /`timeout` must be a number of milliseconds from 0 to 2147483647 \(2\^31−1, the longest a timer can wait\); received 2147483648/,
        ],
        [{ idleGrace: 3e9 }, /`idleGrace` .*2147483647/],
        [{ hooksTimeout: 2 ** 40 }, /`hooksTimeout`/],
        [{ fatalTimeout: 2 ** 31 }, /`fatalTimeout`/],
        [{ budget: 2 ** 32 }, /`budget`/],
        [{ goawayTimeout: 3e9 }, /`goawayTimeout`/],
        [{ signals: ['SIGTRM'] }, /`signals` must be a signal name this platform has, such as "SIGTERM"; received "SIGTRM"/],
        [{ signals: ['SIGTERM', 'sigint'] }, /`signals` .*received "sigint"/],
        [{ timeout: 1000, readinessDelay: 2000 }, /`readinessDelay` must be at most `timeout` \(1000 ms\)/],
        [{ retryAfter: 1e21 }, /`retryAfter` must be a number of seconds from 0 to 2147483647/],
        [{ logger: { info() {}, warn() {}, error() {}, flush: 'yes' } }, /`logger.flush` must be a function/],
      ]
      for (const [options, message] of bad) {
        let error: unknown
        try {
          await target.start(options)
        } catch (err) {
          error = err
        }
        expect(error, JSON.stringify(options)).toBeInstanceOf(TypeError)
        expect((error as Error).message).toMatch(message)
      }
      // a default never conflicts: timeout 40 with the default idleGrace (50) and abortGrace (100) is fine
      await using app = await target.start({ timeout: 40 })
      expect(() => app.g.pause({ mode: 'hold', maxWait: 3e9 })).toThrow(/`maxWait` .*2147483647/)
      expect(() => app.g.shutdown({ timeout: 2 ** 31 })).toThrow(/`timeout` .*2147483647/)
      expect(() => app.g.onShutdown(() => {}, { timeout: 2 ** 31 })).toThrow(/`timeout`/)
      expect((await app.g.shutdown()).ok).toBe(true)
    },
  },
]
