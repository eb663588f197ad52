import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal } from '@quiesce/koa'
import { RawClient } from '../../../test/helpers/raw.js'

const quiet = { signals: false as const, logger: false as const }

describe('@quiesce/koa', () => {
  it("the middleware is also the controller, and ctx.signal is quiesce's request signal", async () => {
    const app = new Koa()
    const g = graceful(quiet)
    expect(typeof g).toBe('function')
    app.use(g)
    let same = false
    app.use((ctx) => {
      same = ctx.signal === requestSignal(ctx)
      ctx.body = ctx.signal.aborted ? 'aborted' : 'ok'
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    await request(server).get('/').expect(200, 'ok')
    expect(same).toBe(true)
    expect(g.servers).toEqual([server])
    expect((await g.shutdown()).ok).toBe(true)
  })

  it("D11.4 an error thrown further down still reaches Koa's error handling and app.on('error')", async () => {
    const app = new Koa()
    const g = graceful(quiet)
    app.use(g)
    app.use(() => {
      throw new Error('boom in a route')
    })
    const errors: string[] = []
    app.on('error', (err: Error) => errors.push(err.message))
    const server = http.createServer(app.callback()) // app.callback() servers too
    g.attach(server)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    await request(server).get('/').expect(500)
    expect(errors).toEqual(['boom in a route'])
    await g.shutdown()
  })

  it('D4.9 readiness answers 200, then 503 with Retry-After once draining (supertest)', async () => {
    const app = new Koa()
    const g = graceful({ ...quiet, readinessDelay: 300 })
    app.use(g)
    app.use((ctx, next) => (ctx.path === '/ready' ? g.readiness(ctx, next) : next()))
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    g.attach(server)
    await request(server).get('/ready').expect(200, 'ok\n')
    const report = g.shutdown()
    await request(server).get('/ready').expect(503).expect('retry-after', '1')
    expect((await report).ok).toBe(true)
  })

  it('D17.5 with { server }, a server that never served a request drains, including a socket connected before any request', async () => {
    const app = new Koa()
    const server = http.createServer(app.callback())
    const g = graceful({ ...quiet, server, headerGrace: 100 })
    app.use(g)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const early = await RawClient.connect((server.address() as AddressInfo).port)
    const report = await g.shutdown()
    await early.closed()
    expect(report.timedOut).toBe(false)
  })
})
