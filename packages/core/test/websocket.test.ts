import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { graceful, type GracefulOptions, type GracefulServer } from '@quiesce/core'
import { Child } from '../../../test/helpers/child.js'
import { listenerClosed } from '../../../test/helpers/http.js'
import { StreamClient } from '../../../test/helpers/stream.js'
import { testCertificate } from '../../../test/helpers/tls.js'

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples')

const defaults: GracefulOptions = { signals: false, logger: false, timeout: 3000 }

interface WsApp extends AsyncDisposable {
  server: http.Server | https.Server
  g: GracefulServer
  port: number
  /** The socket `'upgrade'` handed over → its WebSocket: how a closeUpgraded hook finds what to close. */
  sockets: Map<Duplex, WebSocket>
  /** The sockets quiesce passed to the hook, in order, with when. */
  told: Array<{ socket: Duplex; at: number }>
  url: string
}

/**
 * A server with a WebSocket endpoint (`ws`, `noServer`: the application owns 'upgrade', quiesce
 * adds no listener of its own) and `/slow` for HTTP. `hook`: what closeUpgraded does — close with
 * 1001 (the default), nothing, or throw; `false` gives no hook at all.
 */
async function startWs(options: GracefulOptions = {}, hook: 'close' | 'throw' | false = 'close', secure = false): Promise<WsApp> {
  const sockets = new Map<Duplex, WebSocket>()
  const told: WsApp['told'] = []
  const wss = new WebSocketServer({ noServer: true })
  const handler: http.RequestListener = (_req, res) => {
    setTimeout(() => res.end('slow'), 200)
  }
  let server: http.Server | https.Server
  if (secure) {
    const { key, cert } = await testCertificate()
    server = https.createServer({ key, cert }, handler)
  } else {
    server = http.createServer(handler)
  }
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(socket, ws)
      ws.on('close', () => sockets.delete(socket))
      ws.on('message', (data) => ws.send(`echo:${String(data)}`))
    })
  })
  const closeUpgraded =
    hook === false
      ? undefined
      : (socket: Duplex): void => {
          told.push({ socket, at: performance.now() })
          if (hook === 'throw') throw new Error('hook failed on purpose')
          sockets.get(socket)?.close(1001, 'server shutting down')
        }
  const g = graceful(server, { ...defaults, ...options, ...(closeUpgraded ? { closeUpgraded } : {}) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    server,
    g,
    port,
    sockets,
    told,
    url: `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/chat`,
    [Symbol.asyncDispose]: async () => {
      if (g.state !== 'closed') await g.shutdown({ timeout: 200 })
      wss.close()
    },
  }
}

async function openClient(url: string, ca?: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string; at: number }> }> {
  const ws = new WebSocket(url, ca === undefined ? {} : { ca })
  ws.on('error', () => {})
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() }))
  })
  await once(ws, 'open')
  // one round trip: the server side has its WebSocket (and our sockets map) set up
  ws.send('hi')
  const [reply] = await once(ws, 'message')
  expect(String(reply)).toBe('echo:hi')
  return { ws, closed }
}

/** A WebSocket client that completes the handshake and then ignores every frame, the close frame included. */
async function deafClient(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(
    'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  )
  const [head] = (await once(socket, 'data')) as [Buffer]
  expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
  socket.resume()
  return socket
}

describe('upgraded sockets (WebSocket)', () => {
  it('D12.10 upgraded sockets are tracked, told to leave through closeUpgraded (1001 Going Away), and the drain ends without forcing', async () => {
    await using app = await startWs()
    const a = await openClient(app.url)
    const b = await openClient(app.url)
    expect(app.g.stats()).toMatchObject({ connections: 2, upgradedSockets: 2, idleConnections: 0 })
    const report = await app.g.shutdown()
    const [ca, cb] = await Promise.all([a.closed, b.closed])
    expect([ca.code, cb.code]).toEqual([1001, 1001])
    expect(ca.reason).toBe('server shutting down')
    // the hook got the very sockets 'upgrade' handed to the application, once each
    expect(app.told).toHaveLength(2)
    expect(new Set(app.told.map((t) => t.socket)).size).toBe(2)
    expect(report).toMatchObject({ ok: true, timedOut: false, socketsForced: 0, forced: [] })
    expect(app.g.stats().upgradedSockets).toBe(0)
  })

  it('D12.11 an upgraded socket whose peer ignores the close is destroyed at the deadline and named in the report', async () => {
    await using app = await startWs({ timeout: 400, abortGrace: 20 })
    const polite = await openClient(app.url)
    const deaf = await deafClient(app.port)
    const deafClosed = once(deaf, 'close')
    expect(app.g.stats().upgradedSockets).toBe(2)
    const started = performance.now()
    const report = await app.g.shutdown()
    expect((await polite.closed).code).toBe(1001)
    await deafClosed
    expect(performance.now() - started).toBeGreaterThanOrEqual(380)
    expect(app.told).toHaveLength(2)
    expect(report.timedOut).toBe(true)
    expect(report.forced).toEqual([expect.objectContaining({ kind: 'socket', type: 'upgraded' })])
    expect(report.socketsForced).toBe(1)
  })

  it('D12.12 without a closeUpgraded hook an upgraded socket stays open until the deadline, then is destroyed', async () => {
    await using app = await startWs({ timeout: 300, abortGrace: 20 }, false)
    const c = await openClient(app.url)
    const started = performance.now()
    const report = await app.g.shutdown()
    const closed = await c.closed
    expect(closed.code).toBe(1006) // abnormal closure: no close frame, the socket was destroyed
    expect(closed.at - started).toBeGreaterThanOrEqual(280)
    expect(report.forced).toEqual([expect.objectContaining({ kind: 'socket', type: 'upgraded' })])
  })

  it('D4.5 upgraded sockets are told to leave when the listener closes, after the announce phase', async () => {
    await using app = await startWs({ readinessDelay: 250 })
    const c = await openClient(app.url)
    const started = performance.now()
    const report = app.g.shutdown()
    expect((await c.closed).code).toBe(1001)
    expect(app.told[0]!.at - started).toBeGreaterThanOrEqual(240)
    expect((await report).ok).toBe(true)
  })

  it('D4.6 a WebSocket opened during the announce phase is told to leave when the listener closes', async () => {
    await using app = await startWs({ readinessDelay: 250 })
    const started = performance.now()
    const report = app.g.shutdown()
    const c = await openClient(app.url)
    expect((await c.closed).code).toBe(1001)
    expect(app.told[0]!.at - started).toBeGreaterThanOrEqual(240)
    expect((await report).ok).toBe(true)
  })

  it('D3.4 an upgrade on a keep-alive connection after the listener closed is served, and that socket is told to leave too', async () => {
    await using app = await startWs({ idleGrace: 300, timeout: 2000 })
    const socket = net.connect(app.port, '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    let received = Buffer.alloc(0)
    const until = async (what: RegExp | number): Promise<void> => {
      while (typeof what === 'number' ? !received.includes(what) : !what.test(received.toString('latin1'))) {
        const [chunk] = (await once(socket, 'data')) as [Buffer]
        received = Buffer.concat([received, chunk])
      }
    }
    socket.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(/\r\n\r\nslow$/)
    const closedAt = listenerClosed(app.server)
    const report = app.g.shutdown()
    const listenerClosedAt = await closedAt
    socket.write(
      'GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    await until(/HTTP\/1\.1 101 /)
    // the close frame the hook sent: opcode 8, status 1001 (0x03e9)
    await until(0x88)
    const frame = received.subarray(received.indexOf(0x88))
    expect(frame.readUInt16BE(2)).toBe(1001)
    expect(app.told[0]!.at).toBeGreaterThan(listenerClosedAt)
    socket.end()
    expect(await report).toMatchObject({ ok: true, forced: [] })
  })

  it('D12.13 a closeUpgraded hook that throws is reported by name, and its socket is still destroyed at the deadline', async () => {
    await using app = await startWs({ timeout: 300, abortGrace: 20 }, 'throw')
    const c = await openClient(app.url)
    const report = await app.g.shutdown()
    expect((await c.closed).code).toBe(1006)
    expect(report.ok).toBe(false)
    expect(report.forced).toEqual(
      expect.arrayContaining([{ kind: 'hook', name: 'closeUpgraded', timedOut: false }, expect.objectContaining({ kind: 'socket', type: 'upgraded' })]),
    )
  })

  it("D12.14 quiesce adds no upgrade listener of its own: the application's stays the only one", async () => {
    await using app = await startWs()
    expect(app.server.listenerCount('upgrade')).toBe(1)
    const plain = http.createServer()
    const g = graceful(plain, defaults)
    expect(plain.listenerCount('upgrade')).toBe(0)
    await g.shutdown()
  })

  it('D2.9 HTTP requests and WebSockets on one server: the in-flight request completes with Connection: close while the WebSocket gets 1001', async () => {
    await using app = await startWs()
    const c = await openClient(app.url)
    const response = new Promise<{ body: string; connection: string | undefined }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: app.port, path: '/slow', agent: false }, (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => {
            body += d
          })
          res.on('end', () => resolve({ body, connection: res.headers.connection }))
        })
        .on('error', reject)
    })
    await new Promise<void>((resolve) => app.server.once('request', () => resolve()))
    const report = app.g.shutdown()
    expect(await response).toEqual({ body: 'slow', connection: 'close' })
    expect((await c.closed).code).toBe(1001)
    expect(await report).toMatchObject({ ok: true, requestsCompleted: 1 })
  })

  it('D12.15 WebSockets over HTTPS (wss) are tracked and closed with 1001 the same way', async () => {
    await using app = await startWs({}, 'close', true)
    const { cert } = await testCertificate()
    const c = await openClient(app.url, cert)
    expect(app.g.stats().upgradedSockets).toBe(1)
    const report = await app.g.shutdown()
    expect((await c.closed).code).toBe(1001)
    expect(report).toMatchObject({ ok: true, forced: [] })
  })

  it('D12.16 examples/websocket-sse: Ctrl+C closes the WebSocket with 1001, ends the SSE stream with a last event, and exits 0', async () => {
    await using child = new Child(path.join(examples, 'websocket-sse', 'server.mjs'), { PORT: '0' })
    const port = Number((await child.says('listening on')).split(' ').at(-1))
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    ws.on('error', () => {})
    const wsClosed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
    const [welcome] = await once(ws, 'message')
    expect(String(welcome)).toBe('welcome')
    const sse = await StreamClient.connect(port)
    sse.get('/events', 'Accept: text/event-stream\r\n')
    expect((await sse.event(1))[0]).toEqual({ event: 'hello', data: 'connected' })

    child.kill('SIGINT')
    expect(await wsClosed).toBe(1001)
    await sse.response(1)
    expect(sse.events(1).at(-1)).toEqual({ event: 'bye', data: 'server restarting' })
    const exit = await child.exited
    expect(exit.code).toBe(0)
    expect(exit.stdout).toMatch(/quiesce: shutdown \(signal SIGINT\) drained/)
  })
})
