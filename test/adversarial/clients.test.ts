import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { targets } from '../conformance/targets.js'
import type { App } from '../conformance/fixtures/app.js'
import { RawClient } from '../helpers/raw.js'
import { fcOptions, get, within, failOnUnhandledRejections } from './helpers.js'

/**
 * Clients that behave oddly but legally, in random mixes, on every target: clients that leave
 * mid-request (D10), pipelined requests whose client leaves (D21), and a port taken by another
 * process while paused (D13's resume). Invariants: the request signals abort with "client
 * closed", nothing stays counted in flight, the drain after them ends clean, resume() fails with
 * an error naming the address and leaves a consistent state.
 */

failOnUnhandledRejections()

/** Resolves once the handler of `id` has finished writing (its own log line), now or later. */
function finished(app: App, id: string): Promise<void> {
  if (app.log.finished.includes(id)) return Promise.resolve()
  return new Promise((resolve) => {
    const on = (x: string): void => {
      if (x !== id) return
      app.log.off('finished', on)
      resolve()
    }
    app.log.on('finished', on)
  })
}

/** Resolves when every server-side socket open now has closed. */
function serverSockets(app: App): { closed(): Promise<void> } {
  const open = new Set<net.Socket>()
  app.server.on('connection', (s: net.Socket) => {
    open.add(s)
    s.once('close', () => open.delete(s))
  })
  return { closed: () => Promise.all([...open].map((s) => (s.destroyed && s.closed ? Promise.resolve() : once(s, 'close')))).then(() => {}) }
}

const leaver = fc.record({
  route: fc.constantFrom('never', 'slow', 'stream'),
  ms: fc.integer({ min: 20, max: 120 }),
  /** ms after the request is running before the client leaves */
  leaveAfter: fc.integer({ min: 0, max: 60 }),
  /** end (FIN) or destroy (RST-ish) */
  how: fc.constantFrom('destroy', 'end'),
})

describe.each(targets)('$name', (target) => {
  it('D10.1 clients that leave mid-request, in random mixes: every request signal aborts with "client closed", requestsInFlight and connections go back to 0, and the drain after them is clean', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(leaver, { minLength: 1, maxLength: 6 }), async (leavers) => {
        await using app = await target.start({ timeout: 1000 })
        const sockets = serverSockets(app)
        const clients: RawClient[] = []
        await Promise.all(
          leavers.map(async (l, i) => {
            const url =
              l.route === 'never' ? `/never?id=${i}` : l.route === 'slow' ? `/slow?ms=${l.ms}&id=${i}` : `/stream?n=4&every=${Math.ceil(l.ms / 4)}&id=${i}`
            const c = await RawClient.connect(app.port)
            clients.push(c)
            c.get(url)
            await app.log.waitRan(`GET ${url}`)
            await new Promise((r) => setTimeout(r, l.leaveAfter))
            if (l.how === 'destroy') c.destroy()
            else c.socket.end()
            if (l.route === 'never') {
              const code = await within(app.log.waitAbort(url), 1000)
              expect(code.hung, `${url}: the request signal aborted after the client left (${l.how})`).toBe(false)
              expect('value' in code ? code.value : '', `${url}: the abort reason says "client closed"`).toMatch(/CLIENT_CLOSED|client closed/i)
            }
          }),
        )
        // the server saw every client leave
        const all = await within(sockets.closed(), 3000)
        expect(all.hung, `server-side sockets still open 3 s after every client left: ${JSON.stringify(app.g.stats())}`).toBe(false)
        // handlers that write on (slow, stream) finish writing into the void; wait for them by their own log
        const urls = leavers.map((l, i) =>
          l.route === 'never' ? `/never?id=${i}` : l.route === 'slow' ? `/slow?ms=${l.ms}&id=${i}` : `/stream?n=4&every=${Math.ceil(l.ms / 4)}&id=${i}`,
        )
        const writers = await within(Promise.all(leavers.map((l, i) => (l.route === 'never' ? null : finished(app, `GET ${urls[i]}`)))), 3000)
        expect(writers.hung, 'the slow and streaming handlers finished writing (into the void)').toBe(false)
        const s = app.g.stats()
        expect(s.connections, 'connections after every client left').toBe(0)
        expect(s.requestsInFlight, `requestsInFlight after every client left (${leavers.map((l) => l.route).join(', ')})`).toBe(0)
        const report = await app.g.shutdown()
        expect(report.timedOut, 'the drain after the clients left did not time out').toBe(false)
        expect(report.ok).toBe(true)
        for (const c of clients) c.destroy()
      }),
      fcOptions(25, 30_000),
    )
  })

  it('D21.1 pipelined requests whose client leaves: every handler that ran has its signal aborted, requestsInFlight goes back to 0, also after shutdown()', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom('never', 'slow'), async (n, leaveAfter, route) => {
        await using app = await target.start({ timeout: 600, abortGrace: 100 })
        const sockets = serverSockets(app)
        const c = await RawClient.connect(app.port)
        const urls = Array.from({ length: n }, (_, i) => (route === 'never' ? `/never?p=${i}` : `/slow?ms=60&p=${i}`))
        c.write(urls.map((u) => `GET ${u} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`).join(''))
        await app.log.waitRan(`GET ${urls[0]}`)
        await new Promise((r) => setTimeout(r, leaveAfter))
        c.destroy()
        await within(sockets.closed(), 2000)
        if (route === 'slow') {
          const ranSlow = app.log.ran.filter((x) => x.includes('?ms=60&p='))
          const done = await within(Promise.all(ranSlow.map((id) => finished(app, id))), 3000)
          expect(done.hung, 'the pipelined slow handlers that ran finished writing').toBe(false)
        }
        const before = app.g.stats()
        const report = await within(app.g.shutdown(), 3000)
        expect(report.hung, 'the drain ended').toBe(false)
        const after = app.g.stats()
        const ran = app.log.ran.filter((x) => x.includes('?p='))
        const aborted = app.log.aborts.map((a) => a.url)
        const context = `${n} pipelined ${route}, client left after ${leaveAfter} ms: handlers ran ${ran.length}, signals aborted ${aborted.length}, requestsInFlight ${before.requestsInFlight} before the drain / ${after.requestsInFlight} after, connections ${before.connections}`
        if (route === 'never') {
          for (const r of ran) {
            const url = r.slice(4)
            expect(aborted.includes(url), `${context}: ${url} ran, its signal never aborted`).toBe(true)
          }
        }
        expect(before.requestsInFlight, `${context}: in flight once the client left`).toBe(0)
        expect(after.requestsInFlight, `${context}: in flight after shutdown()`).toBe(0)
        if (!report.hung && 'value' in report) expect(report.value.timedOut, `${context}: the drain had nothing left to wait for`).toBe(false)
      }),
      { ...fcOptions(12, 25_000), examples: [[2, 0, 'never']] },
    )
  })

  it('D13.2 resume() while another process holds the port: it rejects with ResumeError naming the address (after its retries), the controller stays paused and keeps serving open connections; once the port is free, resume() listens again on the same address', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3 }), fc.option(fc.integer({ min: 0, max: 200 }), { nil: null }), async (retries, releaseAfter) => {
        await using app = await target.start({ timeout: 500 })
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
        try {
          expect((await get(app.port, '/fast?k=0', agent).promise).status).toBe(200)
          await app.g.pause({ mode: 'refuse' })
          expect(app.g.state).toBe('paused')
          const thief = net.createServer()
          thief.listen(app.port, '127.0.0.1')
          await once(thief, 'listening')
          const thiefClosed = once(thief, 'close')
          let released = false
          if (releaseAfter !== null)
            setTimeout(() => {
              thief.close()
              released = true
            }, releaseAfter)
          const t0 = performance.now()
          const r = await within(app.g.resume({ retries }), 5000)
          const ms = Math.round(performance.now() - t0)
          expect(r.hung, `resume({ retries: ${retries} }) settled`).toBe(false)
          const context = `resume({ retries: ${retries} }) with the port ${releaseAfter === null ? 'held' : `released after ${releaseAfter} ms`}: ${'error' in r ? `rejected after ${ms} ms (${(r.error as Error).message})` : `resolved after ${ms} ms`}`
          if ('error' in r) {
            expect((r.error as { code?: string }).code, context).toBe('ERR_QUIESCE_RESUME_FAILED')
            expect((r.error as Error).message, `${context}: names the address`).toContain(String(app.port))
            expect(app.g.state, `${context}: still paused`).toBe('paused')
            // the keep-alive connection opened before the pause is still served
            const kept = await get(app.port, '/fast?k=1', agent).promise
            expect(kept.status, `${context}: an open connection is still served (${kept.error ?? ''})`).toBe(200)
            if (!released) thief.close()
            await thiefClosed
            const again = await within(app.g.resume(), 3000)
            expect(again.hung || 'error' in again, `${context}: resume() once the port is free`).toBe(false)
          } else {
            expect(released, `${context}: resolved while another socket still held the port`).toBe(true)
          }
          expect(app.g.state).toBe('running')
          expect(app.server.listening).toBe(true)
          const fresh = await get(app.port, '/fast?k=2', false).promise
          expect(fresh.status, `${context}: a new connection after resume()`).toBe(200)
          const report = await within(app.g.shutdown(), 3000)
          expect(report.hung).toBe(false)
        } finally {
          agent.destroy()
        }
      }),
      fcOptions(10, 25_000),
    )
  })
})
