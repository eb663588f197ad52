import type http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal, type GracefulOptions, type GracefulServer } from '@quiesce/core'
import { AppLog } from '../../../test/conformance/fixtures/app.js'
import { acceptedSocket } from '../../../test/helpers/http.js'
import { StreamClient } from '../../../test/helpers/stream.js'
import { listenSecure } from '../../../test/helpers/tls.js'

const defaults: GracefulOptions = { signals: false, logger: false, timeout: 3000 }

interface HttpsApp extends AsyncDisposable {
  server: https.Server
  g: GracefulServer
  port: number
  log: AppLog
  ca: string
}

/** `https.createServer` behind `graceful()`: `/fast`, `/slow?ms=N`, `/never` (answers only when its signal aborts). */
async function startHttps(options: GracefulOptions = {}): Promise<HttpsApp> {
  const log = new AppLog()
  const handler = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://x')
    const id = `${req.method} ${req.url}`
    log.push('ran', id)
    const done = (body: string): void => {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(body)
      log.push('finished', id)
    }
    if (url.pathname === '/fast') return done('fast')
    if (url.pathname === '/slow') {
      await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 200)))
      return done('slow')
    }
    if (url.pathname === '/never') {
      const signal = requestSignal(req)
      signal.addEventListener('abort', () => log.abort(req.url ?? '', (signal.reason as { code: string }).code), { once: true })
      return
    }
    res.writeHead(404).end()
  }
  let g!: GracefulServer
  const { server, port, ca } = await listenSecure(
    ({ key, cert }) => https.createServer({ key, cert }, handler),
    (s) => {
      g = graceful(s, { ...defaults, ...options })
    },
  )
  return {
    server,
    g,
    log,
    ca,
    port,
    [Symbol.asyncDispose]: async () => {
      if (g.state !== 'closed') await g.shutdown({ timeout: 200 })
    },
  }
}

describe('HTTPS behaves as HTTP (D12)', () => {
  it('D2.7 an in-flight HTTPS request completes with Connection: close and its TLS socket gets FIN right after', async () => {
    await using app = await startHttps({ idleGrace: 1000 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    const report = app.g.shutdown()
    const res = await c.response(1)
    expect(res).toMatchObject({ status: 200, body: 'slow' })
    expect(res.headers.connection).toBe('close')
    const fin = await c.ended()
    expect(fin - (res.doneAt as number)).toBeLessThan(500)
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1, socketsForced: 0 })
  })

  it('D1.7 an idle keep-alive TLS socket is closed once quiet for idleGrace, not at the instant the drain starts', async () => {
    await using app = await startHttps({ idleGrace: 300 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/fast')
    const res = await c.response(1)
    expect(res.headers.connection).toBe('keep-alive')
    expect(app.g.stats()).toMatchObject({ connections: 1, idleConnections: 1 })
    const started = performance.now()
    const report = await app.g.shutdown()
    const fin = await c.ended()
    expect(fin - (res.doneAt as number)).toBeGreaterThanOrEqual(200)
    expect(fin - started).toBeLessThan(1500)
    expect(report).toMatchObject({ ok: true, socketsClosedIdle: 1, socketsForced: 0 })
  })

  it('D3.3 a request on an existing TLS connection during the drain is served with Connection: close', async () => {
    await using app = await startHttps({ idleGrace: 300 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/fast')
    await c.response(1)
    const report = app.g.shutdown()
    c.get('/fast?again')
    const res = await c.response(2)
    expect(res).toMatchObject({ status: 200, body: 'fast' })
    expect(res.headers.connection).toBe('close')
    await c.ended()
    expect((await report).ok).toBe(true)
  })

  it('D5.6 a TLS socket stuck in its handshake (TCP connected, no ClientHello) is closed after headerGrace and never holds the drain', async () => {
    await using app = await startHttps({ headerGrace: 200 })
    const stuck = await acceptedSocket(app.server, app.port)
    const closed = once(stuck, 'close')
    expect(app.g.stats().connections).toBe(1)
    const started = performance.now()
    const report = await app.g.shutdown()
    await closed
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(150)
    expect(took).toBeLessThan(2000)
    expect(report).toMatchObject({ ok: true, forced: [] })
  })

  it('D5.7 a TLS socket that finished its handshake but sends only half of its headers is closed after headerGrace', async () => {
    await using app = await startHttps({ headerGrace: 200 })
    const socket = tls.connect({ port: app.port, host: '127.0.0.1', ca: app.ca })
    socket.on('error', () => {})
    await once(socket, 'secureConnect')
    socket.write('GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow')
    const closed = once(socket, 'close')
    const started = performance.now()
    const report = await app.g.shutdown()
    await closed
    const took = performance.now() - started
    expect(took).toBeGreaterThanOrEqual(150)
    expect(took).toBeLessThan(2000)
    expect(app.log.ran).toEqual([])
    expect(report.ok).toBe(true)
  })

  it('D6.7 a handshake still stuck at the deadline is destroyed and named in the report', async () => {
    await using app = await startHttps({ headerGrace: 5000, timeout: 200, abortGrace: 20 })
    const stuck = await acceptedSocket(app.server, app.port)
    const closed = once(stuck, 'close')
    const report = await app.g.shutdown()
    await closed
    expect(report.timedOut).toBe(true)
    expect(report.forced).toEqual([expect.objectContaining({ kind: 'socket', type: 'tls-handshake' })])
  })

  it('D6.8 at the deadline a running HTTPS request has its signal aborted ("shutdown deadline"), then its socket is destroyed and named', async () => {
    await using app = await startHttps({ timeout: 250, abortGrace: 50 })
    const c = await StreamClient.connect(app.port, { ca: app.ca })
    c.get('/never')
    await app.log.waitRan('GET /never')
    const report = await app.g.shutdown()
    expect(await app.log.waitAbort('/never')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    await c.closed()
    expect(c.responses).toEqual([])
    expect(report.forced).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'request', method: 'GET', url: '/never', protocol: 'http/1.1' }),
        expect.objectContaining({ kind: 'socket', type: 'http1' }),
      ]),
    )
  })

  it('D12.9 a keep-alive https.Agent sees every response of a drain complete (the last ones with Connection: close)', async () => {
    await using app = await startHttps({ readinessDelay: 200 })
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: app.ca })
    const get = (path: string): Promise<{ status: number; connection: string | undefined; body: string }> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: app.port, path, agent }, (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (d: string) => {
              body += d
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }))
          })
          .on('error', reject)
      })
    const before = await Promise.all([0, 1, 2, 3].map((i) => get(`/fast?warm=${i}`)))
    for (const r of before) expect(r.connection).toBe('keep-alive')
    const inFlight = [0, 1, 2, 3].map((i) => get(`/slow?ms=100&i=${i}`))
    await app.log.waitRan('GET /slow?ms=100&i=3')
    const report = app.g.shutdown()
    const during = await Promise.all([...inFlight, get('/fast?during')])
    for (const r of during) {
      expect(r.status).toBe(200)
      expect(r.connection).toBe('close')
    }
    agent.destroy()
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 5 })
  })
})
