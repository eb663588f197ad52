import http from 'node:http'
import { once, setMaxListeners } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal, type GracefulOptions, type GracefulServer } from '@quiesce/core'
import { AppLog } from '../../../test/conformance/fixtures/app.js'
import { listenerClosed } from '../../../test/helpers/http.js'
import { StreamClient } from '../../../test/helpers/stream.js'

const defaults: GracefulOptions = { signals: false, logger: false, timeout: 3000 }

interface SseApp extends AsyncDisposable {
  server: http.Server
  g: GracefulServer
  port: number
  log: AppLog
  /** Open streams, for a beforeShutdown hook that says goodbye to each. */
  streams: Set<http.ServerResponse>
}

/**
 * `/events?mode=…` streams Server-Sent Events, one `tick` every 30 ms:
 * - `drain`: listens on `g.draining`; when the drain starts it sends `event: bye` and ends.
 * - `hook`: does nothing itself; a beforeShutdown hook says `bye` and ends it.
 * - `deadline`: ignores the drain; when its request signal aborts it sends `event: deadline`
 *   and then ends (`&end=1`) or keeps the stream open (`&end=0`).
 */
async function startSse(options: GracefulOptions = {}): Promise<SseApp> {
  const log = new AppLog()
  const streams = new Set<http.ServerResponse>()
  let g: GracefulServer | undefined
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const mode = url.searchParams.get('mode')
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' })
    res.flushHeaders()
    log.push('ran', `${req.method} ${req.url}`)
    let n = 0
    const ticker = setInterval(() => res.write(`data: tick ${n++}\n\n`), 30)
    streams.add(res)
    res.on('close', () => {
      clearInterval(ticker)
      streams.delete(res)
    })
    const finish = (event: string): void => {
      clearInterval(ticker)
      res.end(`event: ${event}\ndata: ${event}\n\n`)
    }
    if (mode === 'drain') {
      // one listener per stream on the controller's signal, removed when the stream ends
      const onDrain = (): void => finish('bye')
      g!.draining.addEventListener('abort', onDrain, { once: true })
      res.on('close', () => g!.draining.removeEventListener('abort', onDrain))
    } else if (mode === 'deadline') {
      const signal = requestSignal(req)
      signal.addEventListener(
        'abort',
        () => {
          log.abort(req.url ?? '', (signal.reason as { code: string }).code)
          res.write('event: deadline\ndata: deadline\n\n')
          if (url.searchParams.get('end') === '1') finish('end')
        },
        { once: true },
      )
    }
  })
  server.keepAliveTimeout = 60_000
  g = graceful(server, { ...defaults, ...options })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const app: SseApp = {
    server,
    g,
    log,
    streams,
    port: (server.address() as AddressInfo).port,
    [Symbol.asyncDispose]: async () => {
      if (g!.state !== 'closed') await g!.shutdown({ timeout: 200 })
    },
  }
  return app
}

async function subscribe(app: SseApp, path: string): Promise<StreamClient> {
  const c = await StreamClient.connect(app.port)
  c.get(path, 'Accept: text/event-stream\r\n')
  await c.event(2) // the stream is live: two ticks arrived
  return c
}

describe('streaming responses and Server-Sent Events', () => {
  it('D2.8 an SSE stream that ends itself when `draining` aborts sends its last event, and its socket gets FIN right after (idle grace, then FIN)', async () => {
    await using app = await startSse({ idleGrace: 300 })
    const c = await subscribe(app, '/events?mode=drain')
    const head = await c.head(1)
    // headers went out before the drain: they cannot carry Connection: close
    expect(head.headers.connection).toBe('keep-alive')
    const report = app.g.shutdown()
    const res = await c.response(1)
    const events = c.events(1)
    expect(events.at(-1)).toEqual({ event: 'bye', data: 'bye' })
    expect(events.slice(0, -1).every((e) => e.event === 'message')).toBe(true)
    const fin = await c.ended()
    expect(fin - (res.doneAt as number)).toBeGreaterThanOrEqual(200)
    expect(fin - (res.doneAt as number)).toBeLessThan(1000)
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1, socketsClosedIdle: 1, forced: [] })
  })

  it('D4.4 a beforeShutdown hook finishes every open stream before the listener closes', async () => {
    await using app = await startSse()
    const clients = await Promise.all([1, 2, 3].map((i) => subscribe(app, `/events?mode=hook&i=${i}`)))
    let allEndedAt = Infinity
    app.g.beforeShutdown(
      async () => {
        const ending = [...app.streams].map((res) => new Promise((resolve) => res.on('finish', resolve)))
        for (const res of app.streams) res.end('event: bye\ndata: bye\n\n')
        await Promise.all(ending)
        allEndedAt = performance.now()
      },
      { name: 'sse-goodbye' },
    )
    const closedAt = listenerClosed(app.server)
    const report = await app.g.shutdown()
    const listenerClosedAt = await closedAt
    expect(allEndedAt).toBeLessThanOrEqual(listenerClosedAt)
    for (const c of clients) {
      await c.response(1)
      expect(c.events(1).at(-1)).toEqual({ event: 'bye', data: 'bye' })
    }
    expect(report).toMatchObject({ ok: true, requestsCompleted: 3, forced: [] })
    expect(report.hooks).toEqual([expect.objectContaining({ name: 'sse-goodbye', ok: true })])
  })

  it('D15.1 many streams listening on `draining` raise no MaxListenersExceededWarning (Node 20 warns at 11 on a plain AbortSignal)', async () => {
    await using app = await startSse({ idleGrace: 20 })
    const warnings: Error[] = []
    const onWarning = (w: Error): void => {
      warnings.push(w)
    }
    process.on('warning', onWarning)
    try {
      // control: the same pattern on a signal with a listener limit warns on every Node version
      const control = new AbortController()
      setMaxListeners(5, control.signal)
      for (let i = 0; i < 8; i++) control.signal.addEventListener('abort', () => {})
      const clients = await Promise.all(Array.from({ length: 25 }, (_, i) => subscribe(app, `/events?mode=drain&i=${i}`)))
      const report = await app.g.shutdown()
      for (const c of clients) expect(c.events(1).at(-1)?.event).toBe('bye')
      expect(report).toMatchObject({ ok: true, requestsCompleted: 25 })
      // warnings are emitted on a later tick: the drain above took many
      const leaks = warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)
      expect(leaks).toHaveLength(1)
      expect(leaks[0]).toMatch(/MaxListeners is 5/)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('D6.9 a stream that ignores the drain has its request signal aborted at the deadline, then its socket is destroyed; the report names it', async () => {
    await using app = await startSse({ timeout: 300, abortGrace: 100 })
    const c = await subscribe(app, '/events?mode=deadline&end=0')
    const report = await app.g.shutdown()
    expect(await app.log.waitAbort('/events?mode=deadline&end=0')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    await c.closed()
    // the handler's reaction arrived in the short moment; the stream itself never ended
    expect(c.events(1)).toContainEqual({ event: 'deadline', data: 'deadline' })
    expect(c.responses[0]!.complete).toBe(false)
    expect(report.timedOut).toBe(true)
    expect(report.forced).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'request', method: 'GET', url: '/events?mode=deadline&end=0', protocol: 'http/1.1' }),
        expect.objectContaining({ kind: 'socket', type: 'http1' }),
      ]),
    )
  })

  it('D6.10 a stream that ends when its request signal aborts finishes cleanly in the short moment before the deadline destroys anything', async () => {
    await using app = await startSse({ timeout: 300, abortGrace: 150 })
    const c = await subscribe(app, '/events?mode=deadline&end=1')
    const report = await app.g.shutdown()
    const res = await c.response(1)
    expect(res.complete).toBe(true)
    expect(c.events(1).slice(-2)).toEqual([
      { event: 'deadline', data: 'deadline' },
      { event: 'end', data: 'end' },
    ])
    expect(report).toMatchObject({ ok: true, timedOut: false })
    expect(report.forced.filter((f) => f.kind === 'request')).toEqual([])
  })
})
