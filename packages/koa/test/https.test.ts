import http2 from 'node:http2'
import https from 'node:https'
import { once } from 'node:events'
import Koa from 'koa'
import { describe, expect, it } from 'vitest'
import { graceful, type GracefulMiddleware, type KoaGracefulOptions } from '@quiesce/koa'
import { AppLog } from '../../../test/conformance/fixtures/app.js'
import { acceptedSocket, h2request } from '../../../test/helpers/http.js'
import { StreamClient } from '../../../test/helpers/stream.js'
import { startSecureMiddleware, type SecureMiddlewareApp } from '../../../test/helpers/tls.js'

const MAX_STREAM_ID = 2 ** 31 - 1

/** Koa 3 behind `graceful()` over `https.createServer`, or `http2.createSecureServer({ allowHTTP1: true })`. */
async function start(
  options: KoaGracefulOptions = {},
  over: 'https' | 'h2+h1' = 'https',
): Promise<SecureMiddlewareApp<GracefulMiddleware, https.Server | http2.Http2SecureServer>> {
  const g = graceful({ signals: false, logger: false, timeout: 3000, ...options })
  const app = new Koa()
  const log = new AppLog()
  app.use(g)
  app.use(async (ctx) => {
    log.push('ran', ctx.url)
    if (ctx.path === '/fast') ctx.body = 'fast'
    else if (ctx.path === '/slow') {
      await new Promise((r) => setTimeout(r, 300))
      ctx.body = 'slow'
    } else if (ctx.path === '/never') {
      const signal = ctx.signal
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
      log.abort(ctx.url, (signal.reason as { code: string }).code)
      ctx.body = 'aborted'
    }
  })
  return startSecureMiddleware(g, log, ({ key, cert }) =>
    over === 'https' ? https.createServer({ key, cert }, app.callback()) : http2.createSecureServer({ key, cert, allowHTTP1: true }, app.callback()),
  )
}

describe('Koa 3 over HTTPS', () => {
  it('D12.20 an in-flight request completes with Connection: close and its TLS socket gets FIN right after; an idle keep-alive TLS socket closes after idleGrace', async () => {
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
    expect((await idle.ended()) - (idleRes.doneAt as number)).toBeGreaterThanOrEqual(400)
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1, socketsClosedIdle: 1, socketsForced: 0 })
  })

  it('D5.9 a TLS socket stuck in its handshake is closed after headerGrace', async () => {
    await using app = await start({ headerGrace: 200 })
    const stuck = await acceptedSocket(app.server, app.port)
    const closed = once(stuck, 'close')
    const started = performance.now()
    const report = await app.g.shutdown()
    await closed
    expect(performance.now() - started).toBeGreaterThanOrEqual(150)
    expect(report).toMatchObject({ ok: true, forced: [] })
  })

  it('D6.12 ctx.signal aborts with "shutdown deadline" at the deadline over HTTPS, and the handler still answers in the short moment', async () => {
    await using app = await start({ timeout: 250, abortGrace: 150 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/never')
    await app.log.waitRan('/never')
    const report = await app.g.shutdown()
    expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    expect(await c.response(1)).toMatchObject({ status: 200, body: 'aborted' })
    expect(report).toMatchObject({ ok: true, timedOut: false })
    expect(report.forced.filter((f) => f.kind === 'request')).toEqual([])
  })

  it('D12.21 Koa over http2.createSecureServer({ allowHTTP1 }): the h2 stream completes without a Connection header after the two-step GOAWAY; h1 gets Connection: close', async () => {
    await using app = await start({}, 'h2+h1')
    const client = http2.connect(`https://127.0.0.1:${app.port}`, { ca: app.ca })
    client.on('error', () => {})
    const goaways: Array<[number, number]> = []
    client.on('goaway', (code: number, last: number) => {
      goaways.push([code, last])
    })
    const h2 = h2request(client, '/slow?via=h2')
    const h1 = await StreamClient.connect(app.port, { ca: app.ca })
    h1.get('/slow?via=h1')
    await Promise.all([app.log.waitRan('/slow?via=h2'), app.log.waitRan('/slow?via=h1')])
    expect(app.g.stats()).toMatchObject({ http2Sessions: 1, requestsInFlight: 2 })
    const report = app.g.shutdown()
    const [r2, r1] = [await h2, await h1.response(1)]
    expect(r2).toMatchObject({ status: 200, body: 'slow' })
    expect(Object.keys(r2.headers)).not.toContain('connection')
    expect(goaways.slice(0, 2)).toEqual([
      [0, MAX_STREAM_ID],
      [0, 1],
    ])
    expect(r1).toMatchObject({ status: 200, body: 'slow' })
    expect(r1.headers.connection).toBe('close')
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 2, forced: [] })
    client.close()
  })
})
