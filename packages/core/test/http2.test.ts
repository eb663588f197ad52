import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { graceful, requestSignal, type GracefulOptions, type GracefulServer } from '@quiesce/core'
import { AppLog } from '../../../test/conformance/fixtures/app.js'
import { RawH2Client, type Goaway } from '../../../test/helpers/h2raw.js'
import { acceptedSocket, h2request, listenerClosed, type H2Answer } from '../../../test/helpers/http.js'
import { testCertificate } from '../../../test/helpers/tls.js'

const MAX_STREAM_ID = 2 ** 31 - 1
const { NGHTTP2_NO_ERROR } = http2.constants
const defaults: GracefulOptions = { signals: false, logger: false, timeout: 3000 }

type Http2Any = http2.Http2Server | http2.Http2SecureServer

interface H2App extends AsyncDisposable {
  server: Http2Any
  g: GracefulServer
  port: number
  log: AppLog
  /** `https://…` or `http://…`, for `http2.connect`. */
  origin: string
}

/**
 * An HTTP/2 server with the routes these tests need, behind `graceful()`.
 * `/slow?ms=N` answers after N ms, `/echo` answers the body length, `/never` answers only when its
 * request signal aborts (`?react=0`: not even then).
 */
async function startH2(options: GracefulOptions = {}, kind: 'h2c' | 'h2' | 'allowHTTP1' = 'h2c'): Promise<H2App> {
  const log = new AppLog()
  const handler = async (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> => {
    const url = new URL(req.url, 'http://x')
    const id = `${req.method} ${req.url}`
    log.push('ran', id)
    const done = (body: string): void => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body)
      log.push('finished', id)
    }
    switch (url.pathname) {
      case '/fast':
        return done('fast')
      case '/slow':
        await sleep(Number(url.searchParams.get('ms') ?? 200))
        return done('slow')
      case '/echo': {
        let n = 0
        for await (const chunk of req) n += (chunk as Buffer).length
        return done(`echo:${n}`)
      }
      case '/never': {
        const signal = requestSignal(req)
        signal.addEventListener(
          'abort',
          () => {
            log.abort(req.url, (signal.reason as { code?: string }).code ?? String(signal.reason))
            if (url.searchParams.get('react') !== '0' && !res.stream.destroyed) done('aborted')
          },
          { once: true },
        )
        return
      }
      default:
        res.writeHead(404).end()
    }
  }
  let server: Http2Any
  if (kind === 'h2c') server = http2.createServer(handler)
  else {
    const { key, cert } = await testCertificate()
    server = http2.createSecureServer({ key, cert, allowHTTP1: kind === 'allowHTTP1' }, handler)
  }
  const g = graceful(server, { ...defaults, ...options })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    server,
    g,
    port,
    log,
    origin: `${kind === 'h2c' ? 'http' : 'https'}://127.0.0.1:${port}`,
    [Symbol.asyncDispose]: async () => {
      if (g.state !== 'closed') await g.shutdown({ timeout: 200 })
    },
  }
}

/** The GOAWAY frames a Node client saw, in order: [code, lastStreamID]. */
function recordGoaways(client: http2.ClientHttp2Session): Array<[number, number]> {
  const seen: Array<[number, number]> = []
  client.on('goaway', (code: number, lastStreamID: number) => seen.push([code, lastStreamID]))
  return seen
}

function connect(app: H2App, ca?: string): http2.ClientHttp2Session {
  const client = http2.connect(app.origin, ca === undefined ? {} : { ca })
  client.on('error', () => {}) // asserted through the streams
  return client
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('HTTP/2 (h2c)', () => {
  it('D12.1 the client sees the two-step GOAWAY — first 2^31-1, then the last stream processed — and its in-flight stream completes', async () => {
    await using app = await startH2()
    const client = connect(app)
    const goaways = recordGoaways(client)
    const pending = h2request(client, '/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    expect(app.g.stats()).toMatchObject({ http2Sessions: 1, requestsInFlight: 1, connections: 1 })

    const report = await app.g.shutdown()
    const res = await pending
    expect(res.status).toBe(200)
    expect(res.body).toBe('slow')
    expect(res.headers.connection).toBeUndefined()
    expect(goaways[0]).toEqual([NGHTTP2_NO_ERROR, MAX_STREAM_ID])
    expect(goaways[1]).toEqual([NGHTTP2_NO_ERROR, 1])
    expect(report).toMatchObject({ ok: true, timedOut: false, requestsCompleted: 1, forced: [] })
    client.close()
  })

  it('D12.2 a stream that crosses the first GOAWAY is never processed, and the final GOAWAY — right after the PING ACK — tells its client so; so is one opened after the final GOAWAY', async () => {
    await using app = await startH2()
    const raw = await RawH2Client.connect(app.port, { autoPingAck: false })
    raw.get(1, '/slow?ms=400')
    await app.log.waitRan('GET /slow?ms=400')
    const done = app.g.shutdown()

    // step one: GOAWAY(2^31-1) and a PING. Stream 3 crosses it (sent after it was written).
    await raw.until(() => raw.goaways().length >= 1 && raw.pings().length >= 1, 'first GOAWAY and PING')
    expect(raw.goaways()[0]).toMatchObject({ lastStreamId: MAX_STREAM_ID, errorCode: NGHTTP2_NO_ERROR })
    raw.get(3, '/crossed-the-goaway')
    const ackAt = performance.now()
    raw.pingAck(raw.pings()[0]!)

    // step two follows the ACK (not the 1 s wait): stream 1 is the last processed, stream 3 was not,
    // so a client may retry it (RFC 9113 §8.7). nghttp2 takes no stream once a GOAWAY is out.
    await raw.until(() => raw.goaways().length >= 2, 'final GOAWAY')
    const final = raw.goaways()[1]!
    expect(final).toMatchObject({ lastStreamId: 1, errorCode: NGHTTP2_NO_ERROR })
    expect(final.at).toBeGreaterThanOrEqual(ackAt)
    expect(final.at - ackAt).toBeLessThan(500)

    // a client that ignores GOAWAY opens stream 5: not processed either; stream 1 still completes
    raw.get(5, '/after-final-goaway')
    await raw.until(() => raw.stream(1).ended, 'stream 1 answered')
    expect(raw.stream(1)).toMatchObject({ status: 200, body: 'slow', ended: true })
    const report = await done
    await raw.closed()
    expect(app.log.ran).toEqual(['GET /slow?ms=400'])
    // not processed: no answer and no RST; the final GOAWAY (last stream 1) is what tells the
    // client that streams 3 and 5 may be retried (Node's client fails them with REFUSED_STREAM)
    for (const id of [3, 5]) expect(raw.stream(id)).toEqual({ status: null, body: '', ended: false, rstCode: null })
    expect(report).toMatchObject({ ok: true, requestsCompleted: 1, forced: [] })
  })

  it('D12.3 without a PING ACK the final GOAWAY follows after a bounded wait (goawayTimeout)', async () => {
    await using app = await startH2({ goawayTimeout: 400 })
    const raw = await RawH2Client.connect(app.port, { autoPingAck: false })
    raw.get(1, '/slow?ms=900')
    await app.log.waitRan('GET /slow?ms=900')
    const done = app.g.shutdown()
    await raw.until(() => raw.goaways().length >= 2, 'final GOAWAY')
    const [first, final] = raw.goaways() as [Goaway, Goaway]
    expect(first.lastStreamId).toBe(MAX_STREAM_ID)
    expect(final.lastStreamId).toBe(1)
    expect(final.at - first.at).toBeGreaterThanOrEqual(250)
    expect(final.at - first.at).toBeLessThan(1500)
    await raw.until(() => raw.stream(1).ended, 'stream 1 answered')
    expect(raw.stream(1)).toMatchObject({ status: 200, body: 'slow' })
    expect((await done).ok).toBe(true)
  })

  it('D12.4 20 POSTs opened on one session while the drain starts all succeed — where a one-step GOAWAY refuses most of them', async () => {
    const race = async (startDrain: (server: Http2Any, session: http2.ServerHttp2Session) => void, app: H2App): Promise<Record<string, number>> => {
      app.server.once('session', (session: http2.ServerHttp2Session) => {
        app.server.once('stream', () => startDrain(app.server, session))
      })
      const client = connect(app)
      await once(client, 'connect')
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          h2request(client, `/echo?i=${i}`, 'POST', 'x'.repeat(1000)).then(
            (r) => (r.status === 200 && r.body === 'echo:1000' ? 'ok' : `status ${r.status}`),
            (err: Error) => /NGHTTP2_\w+/.exec(err.message)?.[0] ?? (err as NodeJS.ErrnoException).code ?? err.message,
          ),
        ),
      )
      client.close()
      const tally: Record<string, number> = {}
      for (const o of outcomes) tally[o] = (tally[o] ?? 0) + 1
      return tally
    }

    // control: Node's own session.close() — one GOAWAY with the last stream processed so far
    {
      await using app = await startH2()
      const tally = await race((_server, session) => session.close(), app)
      expect(tally.NGHTTP2_REFUSED_STREAM ?? 0).toBeGreaterThan(0)
    }
    // quiesce: the drain starts at the same moment
    {
      await using app = await startH2()
      let report: Promise<unknown> = Promise.resolve()
      const tally = await race(() => {
        report = app.g.shutdown()
      }, app)
      expect(tally).toEqual({ ok: 20 })
      expect(await report).toMatchObject({ ok: true, requestsCompleted: 20 })
    }
  })

  it('D12.5 a new stream after GOAWAY is refused cleanly by the client (never sent), and the in-flight stream still completes', async () => {
    await using app = await startH2()
    const client = connect(app)
    const pending = h2request(client, '/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    const sawGoaway = once(client, 'goaway')
    const done = app.g.shutdown()
    await sawGoaway
    const late = await h2request(client, '/late').then(
      () => 'served',
      (err: NodeJS.ErrnoException) => err.code,
    )
    expect(late).toBe('ERR_HTTP2_GOAWAY_SESSION')
    expect((await pending).body).toBe('slow')
    expect((await done).ok).toBe(true)
    expect(app.log.ran).not.toContain('GET /late')
  })

  it('D7.4 an idle session does not hold the drain: both GOAWAY frames go out at once, since nghttp2 reads no PING ACK once a GOAWAY is out and no stream is open', async () => {
    await using app = await startH2({ goawayTimeout: 2000 })
    const client = connect(app)
    const goaways = recordGoaways(client)
    expect((await h2request(client, '/fast')).body).toBe('fast')
    const t0 = performance.now()
    const report = await app.g.shutdown()
    expect(performance.now() - t0).toBeLessThan(500)
    expect(goaways[0]).toEqual([NGHTTP2_NO_ERROR, MAX_STREAM_ID])
    expect(report).toMatchObject({ ok: true, forced: [] })
    expect(app.g.stats()).toMatchObject({ http2Sessions: 0, connections: 0 })
  })

  it('D4.2 during the announce phase existing sessions have had the first GOAWAY (the final one follows the PING ACK); the listener stays open', async () => {
    await using app = await startH2({ readinessDelay: 500 })
    const raw = await RawH2Client.connect(app.port)
    raw.get(1, '/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    const closedAt = listenerClosed(app.server)
    const t0 = performance.now()
    const done = app.g.shutdown()
    await raw.until(() => raw.goaways().length >= 2, 'both GOAWAY frames')
    const [first, final] = raw.goaways() as [Goaway, Goaway]
    expect(first.lastStreamId).toBe(MAX_STREAM_ID)
    expect(first.at - t0).toBeLessThan(250)
    expect(final.lastStreamId).toBe(1)
    await raw.until(() => raw.stream(1).ended, 'stream 1 answered')
    expect(raw.stream(1)).toMatchObject({ status: 200, body: 'slow' })
    // all of it inside the announce phase: no request waits for the listener to close
    expect(final.at).toBeLessThan(await closedAt)
    expect((await done).ok).toBe(true)
  })

  it('D4.3 a session opened during the announce phase has its first requests served, then gets the two-step GOAWAY', async () => {
    await using app = await startH2({ readinessDelay: 400 })
    const done = app.g.shutdown()
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const client = connect(app)
        const goaways = recordGoaways(client)
        const results = await Promise.all([h2request(client, `/fast?c=${i}`), h2request(client, `/slow?ms=50&c=${i}`)])
        client.close()
        return { bodies: results.map((r) => r.body), goaways }
      }),
    )
    for (const o of outcomes) {
      expect(o.bodies).toEqual(['fast', 'slow'])
      expect(o.goaways[0]).toEqual([NGHTTP2_NO_ERROR, MAX_STREAM_ID])
    }
    expect(await done).toMatchObject({ ok: true, requestsCompleted: 20 })
  })

  it('D6.4 at the deadline a running stream has its request signal aborted with "shutdown deadline", then its session is destroyed; the report names both', async () => {
    await using app = await startH2({ timeout: 300, abortGrace: 50 })
    const client = connect(app)
    const goaways = recordGoaways(client)
    const pending = h2request(client, '/never?react=0').then(
      () => 'answered',
      () => 'failed',
    )
    await app.log.waitRan('GET /never?react=0')
    const report = await app.g.shutdown()
    expect(await app.log.waitAbort('/never?react=0')).toBe('ERR_QUIESCE_SHUTDOWN_DEADLINE')
    expect(await pending).toBe('failed')
    expect(goaways[0]).toEqual([NGHTTP2_NO_ERROR, MAX_STREAM_ID])
    expect(report.timedOut).toBe(true)
    expect(report.ok).toBe(false)
    expect(report.forced).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'request', protocol: 'h2', method: 'GET', url: '/never?react=0' }),
        expect.objectContaining({ kind: 'session', streams: 1 }),
      ]),
    )
    expect(report.socketsForced).toBe(1)
    expect(app.server.listening).toBe(false)
  })

  it('D6.5 a handler that reacts to the deadline abort still answers in the short moment before the session is destroyed', async () => {
    await using app = await startH2({ timeout: 300, abortGrace: 200 })
    const client = connect(app)
    const pending = h2request(client, '/never')
    await app.log.waitRan('GET /never')
    const report = await app.g.shutdown()
    expect(await pending).toMatchObject({ status: 200, body: 'aborted' })
    // the abort comes abortGrace before the deadline: answered then, nothing is left for it
    expect(report).toMatchObject({ ok: true, timedOut: false })
    expect(report.forced.filter((f) => f.kind === 'request' || f.kind === 'session')).toEqual([])
  })

  it('D10.5 a client that resets its stream aborts that stream\'s request signal with "client closed"; the session keeps serving', async () => {
    await using app = await startH2()
    const client = connect(app)
    const stream = client.request({ ':path': '/never?react=0' })
    stream.on('error', () => {})
    await app.log.waitRan('GET /never?react=0')
    stream.close(http2.constants.NGHTTP2_CANCEL)
    expect(await app.log.waitAbort('/never?react=0')).toBe('ERR_QUIESCE_CLIENT_CLOSED')
    expect((await h2request(client, '/fast')).body).toBe('fast')
    expect(await app.g.shutdown()).toMatchObject({ ok: true, requestsAborted: 0 })
  })

  for (const tracked of [true, false]) {
    it(`D10.6 on a server quiesce ${tracked ? 'tracks' : 'does not track'}, a client's reset aborts the stream's signal, asked for before or after it`, async () => {
      let before: AbortSignal | undefined
      let resolveAfter: (s: AbortSignal) => void = () => {}
      const after = new Promise<AbortSignal>((resolve) => {
        resolveAfter = resolve
      })
      const server = http2.createServer((req) => {
        if (req.url === '/before') before = requestSignal(req)
        else void once(req.stream, 'close').then(() => resolveAfter(requestSignal(req)))
      })
      const g = tracked ? graceful(server, defaults) : null
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
      client.on('error', () => {})
      for (const path of ['/before', '/after']) {
        const stream = client.request({ ':path': path })
        stream.on('error', () => {})
        await once(server, 'request')
        stream.close(http2.constants.NGHTTP2_CANCEL)
      }
      const late = await after
      expect(late.aborted).toBe(true)
      expect((late.reason as { code: string }).code).toBe('ERR_QUIESCE_CLIENT_CLOSED')
      if (!before!.aborted) await once(before!, 'abort')
      expect((before!.reason as { code: string }).code).toBe('ERR_QUIESCE_CLIENT_CLOSED')
      client.close()
      if (g !== null) await g.shutdown()
      else server.close()
    })
  }

  it('D6.6 the stream API: requestSignal(stream) aborts at the deadline and the stream can still answer', async () => {
    const server = http2.createServer()
    const reasons: string[] = []
    server.on('stream', (stream) => {
      const signal = requestSignal(stream)
      signal.addEventListener(
        'abort',
        () => {
          reasons.push((signal.reason as { code: string }).code)
          stream.respond({ ':status': 503, 'retry-after': '1' })
          stream.end('shutting down')
        },
        { once: true },
      )
    })
    const g = graceful(server, { ...defaults, timeout: 300, abortGrace: 200 })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    client.on('error', () => {})
    const pending = h2request(client, '/stream-api')
    await once(server, 'stream')
    const report = await g.shutdown()
    expect(await pending).toMatchObject({ status: 503, body: 'shutting down' })
    expect(reasons).toEqual(['ERR_QUIESCE_SHUTDOWN_DEADLINE'])
    expect(report.forced.filter((f) => f.kind === 'request' || f.kind === 'session')).toEqual([])
  })
})

describe('HTTP/2 over TLS', () => {
  it('D12.6 createSecureServer: sessions tracked, two-step GOAWAY, in-flight stream completes, no Connection header', async () => {
    const { cert } = await testCertificate()
    await using app = await startH2({}, 'h2')
    const client = connect(app, cert)
    const goaways = recordGoaways(client)
    const pending = h2request(client, '/slow?ms=300')
    await app.log.waitRan('GET /slow?ms=300')
    expect(app.g.stats()).toMatchObject({ http2Sessions: 1, connections: 1, requestsInFlight: 1 })
    const report = await app.g.shutdown()
    const res = await pending
    expect(res).toMatchObject({ status: 200, body: 'slow' })
    expect(res.headers.connection).toBeUndefined()
    expect(goaways.slice(0, 2)).toEqual([
      [NGHTTP2_NO_ERROR, MAX_STREAM_ID],
      [NGHTTP2_NO_ERROR, 1],
    ])
    expect(report).toMatchObject({ ok: true, requestsCompleted: 1, forced: [] })
    client.close()
  })

  it('D5.4 a TLS socket stuck in its handshake (TCP connected, no ClientHello) is closed after headerGrace', async () => {
    await using app = await startH2({ headerGrace: 200 }, 'h2')
    const stuck = await acceptedSocket(app.server, app.port)
    const closed = once(stuck, 'close')
    expect(app.g.stats().connections).toBe(1)
    const t0 = performance.now()
    const report = await app.g.shutdown()
    await closed
    const took = performance.now() - t0
    expect(took).toBeGreaterThanOrEqual(150)
    expect(took).toBeLessThan(2000)
    expect(report).toMatchObject({ ok: true, forced: [] })
  })

  it('D5.5 a TLS connection whose handshake ends after the listener closed: its first request is served; an idle one gets its GOAWAY after headerGrace', async () => {
    const { cert } = await testCertificate()
    await using app = await startH2({ headerGrace: 300 }, 'h2')
    // two TCP connections accepted before the drain (not just queued in the backlog, which the
    // listener's close resets), their TLS handshakes started only after the listener closed
    const accepted = new Promise<void>((resolve) => {
      let n = 0
      app.server.on('connection', () => {
        if (++n === 2) resolve()
      })
    })
    const rawA = net.connect(app.port, '127.0.0.1')
    const rawB = net.connect(app.port, '127.0.0.1')
    await accepted
    const closedAt = listenerClosed(app.server)
    const done = app.g.shutdown()
    const listenerClosedAt = await closedAt
    const over = (raw: net.Socket): http2.ClientHttp2Session => {
      const client = http2.connect(app.origin, {
        createConnection: () => tls.connect({ socket: raw, ca: cert, servername: 'localhost', ALPNProtocols: ['h2'] }),
      })
      client.on('error', () => {})
      return client
    }
    const a = over(rawA)
    const b = over(rawB)
    const goawayB = once(b, 'goaway') as Promise<[number, number]>
    expect(await h2request(a, '/fast')).toMatchObject({ status: 200, body: 'fast' })
    const [, lastStreamID] = await goawayB
    expect(lastStreamID).toBe(MAX_STREAM_ID)
    expect(performance.now() - listenerClosedAt).toBeGreaterThanOrEqual(250)
    expect(await done).toMatchObject({ ok: true, forced: [] })
  })

  it('D12.22 a session whose client vanished with a stream open during the drain is not counted once shutdown() resolved (Node emits the server\'s close before it tears the session down); the stream\'s signal aborts with "client closed"', async () => {
    const { cert } = await testCertificate()
    await using app = await startH2({}, 'h2')
    const client = connect(app, cert)
    const stream = client.request({ ':path': '/never?react=0' })
    stream.on('error', () => {})
    await app.log.waitRan('GET /never?react=0')
    const done = app.g.shutdown()
    client.destroy()
    const report = await done
    // the server emitted 'close': its sockets are gone, and with them the session and its stream
    expect(app.g.stats()).toMatchObject({ state: 'closed', connections: 0, http2Sessions: 0, requestsInFlight: 0 })
    expect(report).toMatchObject({ timedOut: false, forced: [] })
    expect(await app.log.waitAbort('/never?react=0')).toBe('ERR_QUIESCE_CLIENT_CLOSED')
  })

  it('D12.7 allowHTTP1 under mixed h1/h2 requests during a drain: no Connection header on any h2 response, Connection: close on h1', async () => {
    const { cert } = await testCertificate()
    await using app = await startH2({ readinessDelay: 300 }, 'allowHTTP1')
    const agent = new https.Agent({ keepAlive: true, ca: cert })
    const h1 = (path: string): Promise<H2Answer> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: app.port, path, agent }, (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (d: string) => {
              body += d
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as http2.IncomingHttpHeaders, body }))
          })
          .on('error', reject)
      })
    const h2 = connect(app, cert)
    // in flight when the drain starts
    const before = [h1('/slow?ms=250&via=h1'), h2request(h2, '/slow?ms=250&via=h2')]
    await Promise.all([app.log.waitRan('GET /slow?ms=250&via=h1'), app.log.waitRan('GET /slow?ms=250&via=h2')])
    const done = app.g.shutdown()
    // during the announce phase: new h1 connections and a new h2 session
    const h2late = connect(app, cert)
    const during = [h1('/fast'), h1('/slow?ms=50'), h2request(h2late, '/fast'), h2request(h2late, '/slow?ms=50')]
    const h1results = [await before[0]!, await during[0]!, await during[1]!]
    const h2results = [await before[1]!, await during[2]!, await during[3]!]
    for (const r of [...h1results, ...h2results]) expect(r.status).toBe(200)
    for (const r of h2results) expect(Object.keys(r.headers)).not.toContain('connection')
    for (const r of h1results) expect(r.headers.connection).toBe('close')
    h2.close()
    h2late.close()
    agent.destroy()
    expect(await done).toMatchObject({ ok: true, requestsCompleted: 6 })
  })

  // (the announce phase serves normally, D4, and sessions take no new stream once the listener
  // closed: a reject answer on HTTP/2 is pause({ mode: 'reject' })'s)
  it("D12.8 allowHTTP1 with pause({ mode: 'reject' }): h2 requests get 503 without a Connection header, h1 ones 503 with Connection: close", async () => {
    const { cert } = await testCertificate()
    await using app = await startH2({}, 'allowHTTP1')
    const agent = new https.Agent({ keepAlive: false, ca: cert })
    const h1 = (path: string): Promise<H2Answer> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: app.port, path, agent }, (res) => {
            res.resume()
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as http2.IncomingHttpHeaders, body: '' }))
          })
          .on('error', reject)
      })
    await app.g.pause({ mode: 'reject' })
    const client = connect(app, cert)
    const [a, b] = await Promise.all([h1('/fast'), h2request(client, '/fast')])
    expect(a.status).toBe(503)
    expect(a.headers['retry-after']).toBe('1')
    expect(a.headers.connection).toBe('close')
    expect(b.status).toBe(503)
    expect(b.headers['retry-after']).toBe('1')
    expect(Object.keys(b.headers)).not.toContain('connection')
    expect(app.log.ran).toEqual([])
    client.close()
    await app.g.resume()
    expect((await app.g.shutdown()).ok).toBe(true)
  })
})

describe('D12 HTTP/2 through the stream API', () => {
  it("adds no 'request' listener (Node's compatibility layer stays off), and a 'stream' handler registered after graceful() drains as usual", async () => {
    const server = http2.createServer()
    const g = graceful(server, { ...defaults, duringDrain: 'reject' })
    server.on('stream', (stream) => {
      setTimeout(() => {
        stream.respond({ ':status': 200 })
        stream.end('streamed')
      }, 100)
    })
    expect(server.listenerCount('request')).toBe(0)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    try {
      const req = client.request({ ':path': '/' })
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders]
      const report = g.shutdown()
      let body = ''
      req.setEncoding('utf8').on('data', (d: string) => {
        body += d
      })
      await once(req, 'end')
      expect(headers[':status']).toBe(200)
      expect(body).toBe('streamed')
      const r = await report
      expect(r.ok).toBe(true)
    } finally {
      client.destroy()
    }
  })
})
