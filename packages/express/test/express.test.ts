import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { graceful as gracefulServer } from '@quiesce/core'
import { graceful, requestSignal } from '@quiesce/express'
import { RawClient } from '../../../test/helpers/raw.js'

const quiet = { signals: false as const, logger: false as const }

describe('@quiesce/express', () => {
  it('the middleware is also the controller', async () => {
    const g = graceful(quiet)
    expect(typeof g).toBe('function')
    expect(g.state).toBe('running')
    expect(g.ready).toBe(true)
    expect(g.draining.aborted).toBe(false)
    for (const m of ['shutdown', 'pause', 'resume', 'onShutdown', 'beforeShutdown', 'stats', 'attach'] as const) expect(typeof g[m]).toBe('function')
    expect(g.stats()).toMatchObject({ state: 'running', connections: 0, requestsInFlight: 0 })
    await g.shutdown()
    expect(g.state).toBe('closed')
  })

  it('D4.7 readiness answers 200, then 503 with Retry-After from the moment draining starts (supertest)', async () => {
    const app = express()
    const g = graceful({ ...quiet, readinessDelay: 300 })
    app.use(g)
    app.get('/ready', g.readiness)
    app.get('/live', g.liveness)
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    g.attach(server)
    await request(server).get('/ready').expect(200, 'ok\n')
    const report = g.shutdown()
    await request(server).get('/ready').expect(503).expect('retry-after', '1')
    await request(server).get('/live').expect(200)
    expect((await report).ok).toBe(true)
  })

  it('D17.3 with { server }, a server that never served a request drains, including a socket connected before any request', async () => {
    const app = express()
    const server = http.createServer(app)
    const g = graceful({ ...quiet, server, headerGrace: 100 })
    app.use(g)
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const early = await RawClient.connect((server.address() as AddressInfo).port)
    const report = await g.shutdown()
    await early.closed()
    expect(report.timedOut).toBe(false)
    expect(server.listening).toBe(false)
  })

  it('attaches to the server of the first request when used as a plain app.use(g) (documented limit: not before)', async () => {
    const app = express()
    const g = graceful(quiet)
    app.use(g)
    app.get('/', (req, res) => {
      res.send(requestSignal(req).aborted ? 'aborted' : 'ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    expect(g.servers).toEqual([])
    await request(server).get('/').expect(200, 'ok')
    expect(g.servers).toEqual([server])
    await g.shutdown()
    expect(server.listening).toBe(false)
  })

  it('D14.6 bad options throw a TypeError naming the option', () => {
    expect(() => graceful({ server: {} as http.Server })).toThrow(/`server` must be an http, https or http2 server/)
    expect(() => graceful({ timeout: -1 })).toThrow(TypeError)
    expect(() => graceful({ nope: 1 } as never)).toThrow(/`nope` must be one of the known options/)
  })

  it('D20.9 the middleware on a server that a graceful(server) of its own drains: requests pass, one warning, and that controller drains it', async () => {
    const warnings: string[] = []
    const app = express()
    const g = graceful({ ...quiet, logger: { info() {}, warn: (m: string) => warnings.push(m), error() {} } })
    app.use(g)
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    const server = http.createServer(app)
    const owner = gracefulServer(server, quiet)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as AddressInfo).port
    for (let i = 0; i < 3; i++) expect((await request(`http://127.0.0.1:${port}`).get('/')).text).toBe('ok')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/drained by another quiesce controller/)
    expect(g.servers).toEqual([])
    expect((await owner.shutdown()).ok).toBe(true)
    await g.shutdown()
  })
})
