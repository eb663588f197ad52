import https from 'node:https'
import { once } from 'node:events'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal, type ExpressGracefulOptions, type GracefulMiddleware } from '@quiesce/express'
import { AppLog } from '../../../test/conformance/fixtures/app.js'
import { acceptedSocket } from '../../../test/helpers/http.js'
import { StreamClient } from '../../../test/helpers/stream.js'
import { startSecureMiddleware, type SecureMiddlewareApp } from '../../../test/helpers/tls.js'

/** Express 5 over `https.createServer`, the middleware attached to the server before it listens (D17) unless `attach: false`. */
async function start(options: ExpressGracefulOptions = {}, attach = true): Promise<SecureMiddlewareApp<GracefulMiddleware, https.Server>> {
  const g = graceful({ signals: false, logger: false, timeout: 3000, ...options })
  const app = express()
  const log = new AppLog()
  app.use(g)
  app.use((req, _res, next) => {
    log.push('ran', req.url)
    next()
  })
  app.get('/fast', (_req, res) => {
    res.type('text').send('fast')
  })
  app.get('/slow', async (_req, res) => {
    await new Promise((r) => setTimeout(r, 300))
    res.type('text').send('slow')
  })
  app.get('/never', (req) => {
    const signal = requestSignal(req)
    signal.addEventListener('abort', () => log.abort(req.url, (signal.reason as { code: string }).code), { once: true })
  })
  return startSecureMiddleware(g, log, ({ key, cert }) => https.createServer({ key, cert }, app), attach)
}

describe('Express 5 over HTTPS', () => {
  it('D12.17 an in-flight request completes with Connection: close and its TLS socket gets FIN right after; an idle keep-alive TLS socket closes after idleGrace', async () => {
    await using app = await start({ idleGrace: 600 })
    const busy = await StreamClient.connect(app.port, { ca: app.ca })
    const idle = await StreamClient.connect(app.port, { ca: app.ca })
    idle.get('/fast')
    const idleRes = await idle.response(1)
    expect(idleRes.headers.connection).toBe('keep-alive')
    busy.get('/slow')
    await app.log.waitRan('/slow')
    const report = app.g.shutdown()
    const res = await busy.response(1)
    expect(res).toMatchObject({ status: 200, body: 'slow' })
    expect(res.headers.connection).toBe('close')
    expect((await busy.ended()) - (res.doneAt as number)).toBeLessThan(300)
    const idleFin = await idle.ended()
    expect(idleFin - (idleRes.doneAt as number)).toBeGreaterThanOrEqual(400)
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1, socketsClosedIdle: 1, socketsForced: 0 })
    expect(app.log.ran).toEqual(['/fast', '/slow'])
  })

  it('D5.8 a TLS socket stuck in its handshake is closed after headerGrace (attached before the first request, D17)', async () => {
    await using app = await start({ headerGrace: 200 })
    const stuck = await acceptedSocket(app.server, app.port)
    const closed = once(stuck, 'close')
    const started = performance.now()
    const report = await app.g.shutdown()
    await closed
    expect(performance.now() - started).toBeGreaterThanOrEqual(150)
    expect(report).toMatchObject({ ok: true, forced: [] })
  })

  it('D6.11 at the deadline an HTTPS request\'s signal aborts with "shutdown deadline" and the report names it', async () => {
    await using app = await start({ timeout: 250, abortGrace: 50 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/never')
    await app.log.waitRan('/never')
    const report = await app.g.shutdown()
    expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    await c.closed()
    expect(report.forced).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'request', method: 'GET', url: '/never', protocol: 'http/1.1' })]))
  })

  it('D17.4 with a plain app.use(g) the middleware attaches at the first HTTPS request and drains it', async () => {
    await using app = await start({}, false)
    expect(app.g.servers).toEqual([])
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/slow')
    await app.log.waitRan('/slow')
    expect(app.g.servers).toEqual([app.server])
    const report = app.g.shutdown()
    const res = await c.response(1)
    expect(res).toMatchObject({ status: 200, body: 'slow' })
    expect(res.headers.connection).toBe('close')
    await c.ended()
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1 })
  })
})
